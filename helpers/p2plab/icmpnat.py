"""ICMP and TCP through a NAT, byte by byte: dissect captured packets and compare them across a NAT.

Pure functions on raw IPv4 packets (``trace.raw(i)``), from the real lab (``p2plab.netns.icmplab``),
its recording, or the simulator:

* ``fields(raw)`` - every header field with its byte offset, as a DataFrame, including the IP and
  UDP/TCP header an ICMP error quotes;
* ``compare(before, after)`` - the fields a NAT changed;
* ``checksums_ok(raw)`` - are the IP, ICMP, UDP and TCP checksums right?
* ``incremental_checksum(old, old_bytes, new_bytes)`` - RFC 1624's shortcut: the new checksum from
  the old one and the words that changed, without re-adding the whole packet;
* ``echo_ids(trace)`` and ``traceroute(trace)`` - the ICMP query-identifier mapping and the hops.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING

from .errors import TraceError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .trace import Trace

ICMP_NAMES = {0: "echo reply", 3: "destination unreachable", 8: "echo request", 11: "time exceeded"}


def ones_complement_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of ``data`` (padded with a zero byte to an even length)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): the one's complement of the one's complement sum."""
    return ~ones_complement_sum(data) & 0xFFFF


def incremental_checksum(old: int, old_bytes: bytes, new_bytes: bytes) -> int:
    """RFC 1624 equation 3, ``HC' = ~(~HC + ~m + m')``: the checksum after the 16-bit words
    ``old_bytes`` were replaced by ``new_bytes`` (both of even length), from the old checksum alone."""
    if len(old_bytes) != len(new_bytes) or len(old_bytes) % 2:
        raise ValueError("old_bytes and new_bytes must be the same even length (whole 16-bit words), "
                         f"e.g. 4 bytes of an IPv4 address; got {len(old_bytes)} and {len(new_bytes)}")
    total = ~old & 0xFFFF
    for (m,), (m2,) in zip(struct.iter_unpack("!H", old_bytes), struct.iter_unpack("!H", new_bytes)):
        total += (~m & 0xFFFF) + m2
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip(b: bytes) -> str:
    return str(ipaddress.IPv4Address(b))


def _check_ipv4(raw: bytes) -> int:
    if len(raw) < 20 or raw[0] >> 4 != 4:
        raise TraceError(f"not an IPv4 packet ({len(raw)} bytes starting {raw[:1].hex() or 'nothing'}): "
                         "pass trace.raw(i) of an IPv4 row")
    return (raw[0] & 0x0F) * 4


def _ip_fields(raw: bytes, base: int, layer: str) -> list[tuple]:
    rows = [
        (layer, "version, header length", base, raw[base:base + 1], f"{raw[base] >> 4}, {(raw[base] & 15) * 4} bytes"),
        (layer, "total length", base + 2, raw[base + 2:base + 4], struct.unpack_from("!H", raw, base + 2)[0]),
        (layer, "identification", base + 4, raw[base + 4:base + 6], struct.unpack_from("!H", raw, base + 4)[0]),
        (layer, "time to live", base + 8, raw[base + 8:base + 9], raw[base + 8]),
        (layer, "protocol", base + 9, raw[base + 9:base + 10], {1: "ICMP", 6: "TCP", 17: "UDP"}.get(raw[base + 9], raw[base + 9])),
        (layer, "header checksum", base + 10, raw[base + 10:base + 12], f"0x{struct.unpack_from('!H', raw, base + 10)[0]:04x}"),
        (layer, "source address", base + 12, raw[base + 12:base + 16], _ip(raw[base + 12:base + 16])),
        (layer, "destination address", base + 16, raw[base + 16:base + 20], _ip(raw[base + 16:base + 20])),
    ]
    return rows


def _l4_fields(raw: bytes, off: int, proto: int, layer: str, quoted: bool = False) -> list[tuple]:
    rows: list[tuple] = []
    if len(raw) < off + 8:
        return rows
    rows += [(layer, "source port", off, raw[off:off + 2], struct.unpack_from("!H", raw, off)[0]),
             (layer, "destination port", off + 2, raw[off + 2:off + 4], struct.unpack_from("!H", raw, off + 2)[0])]
    if proto == 17:
        rows += [(layer, "length", off + 4, raw[off + 4:off + 6], struct.unpack_from("!H", raw, off + 4)[0]),
                 (layer, "checksum", off + 6, raw[off + 6:off + 8], f"0x{struct.unpack_from('!H', raw, off + 6)[0]:04x}")]
    elif proto == 6:
        rows.append((layer, "sequence number", off + 4, raw[off + 4:off + 8], struct.unpack_from("!I", raw, off + 4)[0]))
        if not quoted and len(raw) >= off + 20:
            rows += [(layer, "acknowledgment number", off + 8, raw[off + 8:off + 12],
                      struct.unpack_from("!I", raw, off + 8)[0]),
                     (layer, "checksum", off + 16, raw[off + 16:off + 18],
                      f"0x{struct.unpack_from('!H', raw, off + 16)[0]:04x}")]
    return rows


def fields(raw: bytes) -> pd.DataFrame:
    """Every header field of an IPv4 packet: layer, field, byte offset, the bytes in hex and the value.

    For an ICMP error the quoted IP header and the first 8 bytes of its UDP/TCP header follow,
    as layers ``quoted IP`` and ``quoted UDP``/``quoted TCP``.
    """
    import pandas as pd

    ihl = _check_ipv4(raw)
    proto = raw[9]
    rows = _ip_fields(raw, 0, "IP")
    if proto == 1 and len(raw) >= ihl + 8:
        typ, code = raw[ihl], raw[ihl + 1]
        rows += [("ICMP", "type", ihl, raw[ihl:ihl + 1], f"{typ} ({ICMP_NAMES.get(typ, '?')})"),
                 ("ICMP", "code", ihl + 1, raw[ihl + 1:ihl + 2], code),
                 ("ICMP", "checksum", ihl + 2, raw[ihl + 2:ihl + 4], f"0x{struct.unpack_from('!H', raw, ihl + 2)[0]:04x}")]
        if typ in (0, 8):
            rows += [("ICMP", "identifier", ihl + 4, raw[ihl + 4:ihl + 6], struct.unpack_from("!H", raw, ihl + 4)[0]),
                     ("ICMP", "sequence number", ihl + 6, raw[ihl + 6:ihl + 8], struct.unpack_from("!H", raw, ihl + 6)[0])]
        elif typ in (3, 11) and len(raw) >= ihl + 8 + 20:
            q = ihl + 8
            rows += _ip_fields(raw, q, "quoted IP")
            qproto = raw[q + 9]
            name = {6: "quoted TCP", 17: "quoted UDP"}.get(qproto)
            if name:
                rows += _l4_fields(raw, q + (raw[q] & 0x0F) * 4, qproto, name, quoted=True)
    elif proto in (6, 17):
        rows += _l4_fields(raw, ihl, proto, {6: "TCP", 17: "UDP"}[proto])
    df = pd.DataFrame(rows, columns=["layer", "field", "offset", "bytes", "value"])
    df["bytes"] = df["bytes"].map(lambda b: b.hex(" "))
    df["value"] = df["value"].astype(str)
    return df


def compare(before: bytes, after: bytes, changed_only: bool = True) -> pd.DataFrame:
    """The header fields of the same packet before and after a NAT (or router), side by side."""
    a, b = fields(before), fields(after)
    if list(a["field"]) != list(b["field"]):
        raise TraceError("these two packets do not have the same headers: compare a packet with its own "
                         "translation (the 'pair' column of a trace links the two rows)")
    df = a[["layer", "field", "offset"]].copy()
    df["before"], df["after"] = a["value"].values, b["value"].values
    df["changed"] = a["bytes"].values != b["bytes"].values
    return df[df["changed"]].drop(columns="changed").reset_index(drop=True) if changed_only else df


def checksums_ok(raw: bytes) -> dict[str, bool]:
    """Does every checksum of this IPv4 packet verify? ``{"IP": True, "TCP": True, ...}``."""
    ihl = _check_ipv4(raw)
    total = struct.unpack_from("!H", raw, 2)[0]
    raw = raw[:total]
    out = {"IP": ones_complement_sum(raw[:ihl]) == 0xFFFF}
    proto, l4 = raw[9], raw[ihl:]
    if proto == 1:
        out["ICMP"] = ones_complement_sum(l4) == 0xFFFF
    elif proto in (6, 17):
        pseudo = raw[12:20] + struct.pack("!BBH", 0, proto, len(l4))
        ok = ones_complement_sum(pseudo + l4) == 0xFFFF
        if proto == 17 and l4[6:8] == b"\0\0":
            ok = True  # UDP over IPv4 may leave the checksum out (zero)
        out[{6: "TCP", 17: "UDP"}[proto]] = ok
    return out


def pairs(trace: Trace, node: str = "nat-a", summary: str = "") -> list[tuple[int, int]]:
    """``(before_row, after_row)`` of every packet ``node`` translated whose summary starts with ``summary``."""
    df = trace.df
    rows = df[(df["node"] == node) & (df["action"] == "translated") & (df["direction"] == "in")
              & df["summary"].str.startswith(summary)]
    return [(int(i), int(p)) for i, p in zip(rows.index, rows["pair"]) if p is not None and int(p) >= 0]


def echo_ids(trace: Trace, node: str = "nat-a") -> pd.DataFrame:
    """The ICMP query mapping: for each echo request ``node`` translated, the inside host and
    identifier and the outside address and identifier."""
    import pandas as pd

    rows = []
    for i, j in pairs(trace, node, "ICMP echo request"):
        a, b = trace.raw(i), trace.raw(j)
        ia, ib = (a[0] & 15) * 4, (b[0] & 15) * 4
        rows.append({"inside": _ip(a[12:16]), "inside id": struct.unpack_from("!H", a, ia + 4)[0],
                     "outside": _ip(b[12:16]), "outside id": struct.unpack_from("!H", b, ib + 4)[0],
                     "to": _ip(b[16:20])})
    return pd.DataFrame(rows, columns=["inside", "inside id", "outside", "outside id", "to"])


def traceroute(trace: Trace, host: str = "alice") -> pd.DataFrame:
    """What traceroute prints, from the packets alone: for each ICMP error ``host`` received, the TTL
    its probe left with (found by the IP identification the error quotes), who answered, and the
    source address and port the quoted header shows on arrival."""
    import pandas as pd

    df = trace.df
    sent_ttl = {}
    for i in df.index[(df["node"] == host) & (df["direction"] == "out") & (df["protocol"] != "ICMP")]:
        raw = trace.raw(int(i))
        sent_ttl[struct.unpack_from("!H", raw, 4)[0]] = raw[8]
    rows = []
    for i in df.index[(df["node"] == host) & (df["direction"] == "in") & (df["protocol"] == "ICMP")]:
        raw = trace.raw(int(i))
        ihl = (raw[0] & 15) * 4
        typ, code = raw[ihl], raw[ihl + 1]
        if typ not in (3, 11) or len(raw) < ihl + 8 + 28:
            continue
        q = ihl + 8
        qihl = (raw[q] & 15) * 4
        ident = struct.unpack_from("!H", raw, q + 4)[0]
        sport = struct.unpack_from("!H", raw, q + qihl)[0]
        msg = "time exceeded" if typ == 11 else ("port unreachable" if code == 3 else f"unreachable (code {code})")
        rows.append({"probe TTL": sent_ttl.get(ident), "answered by": _ip(raw[12:16]), "message": msg,
                     "quoted source": f"{_ip(raw[q + 12:q + 16])}:{sport}"})
    return pd.DataFrame(rows, columns=["probe TTL", "answered by", "message", "quoted source"])
