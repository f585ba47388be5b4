"""Look inside one packet: its layers and fields, a hexdump with the bytes a NAT changed marked,
and STUN's XOR-MAPPED-ADDRESS decoded step by step from the raw bytes.

Everything returns an object with an HTML form (Jupyter shows it) and a text form (``str(x)``,
for terminals, screen readers and nbval).
"""

from __future__ import annotations

import html
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import StunParseError, TraceError

MAGIC_COOKIE = 0x2112A442
XOR_MAPPED_ADDRESS = 0x0020
XOR_MAPPED_ADDRESS_OLD = 0x8020  # pre-RFC 5389 drafts
MAPPED_ADDRESS = 0x0001


# -- hexdumps and differences ------------------------------------------------------------------

def changed_bytes(before: bytes, after: bytes) -> list[int]:
    """Offsets of the bytes that differ between two packets (extra bytes of the longer one count)."""
    n = min(len(before), len(after))
    diff = [i for i in range(n) if before[i] != after[i]]
    return diff + list(range(n, max(len(before), len(after))))


def field_at(raw: bytes, offset: int) -> str:
    """The header field that byte ``offset`` of an IP packet belongs to (IPv4/IPv6, UDP/TCP)."""
    if not raw:
        return "?"
    if raw[0] >> 4 == 4:
        ihl = (raw[0] & 0x0F) * 4
        ip_fields = [(0, 1, "IP version/IHL"), (1, 2, "IP TOS"), (2, 4, "IP total length"), (4, 6, "IP id"),
                     (6, 8, "IP flags/fragment"), (8, 9, "IP TTL"), (9, 10, "IP protocol"),
                     (10, 12, "IP header checksum"), (12, 16, "IP source address"),
                     (16, 20, "IP destination address")]
        proto, l4 = raw[9], ihl
    else:
        ip_fields = [(0, 4, "IPv6 version/class/flow"), (4, 6, "IPv6 payload length"), (6, 7, "IPv6 next header"),
                     (7, 8, "IPv6 hop limit"), (8, 24, "IPv6 source address"), (24, 40, "IPv6 destination address")]
        proto, l4 = raw[6], 40
    for lo, hi, name in ip_fields:
        if lo <= offset < hi:
            return name
    if offset < l4:
        return "IP options"
    rel = offset - l4
    if proto == 17:
        for lo, hi, name in ((0, 2, "UDP source port"), (2, 4, "UDP destination port"), (4, 6, "UDP length"),
                             (6, 8, "UDP checksum")):
            if lo <= rel < hi:
                return name
        return "UDP payload"
    if proto == 6:
        for lo, hi, name in ((0, 2, "TCP source port"), (2, 4, "TCP destination port"), (4, 8, "TCP sequence"),
                             (8, 12, "TCP acknowledgment"), (12, 14, "TCP offset/flags"), (14, 16, "TCP window"),
                             (16, 18, "TCP checksum"), (18, 20, "TCP urgent pointer")):
            if lo <= rel < hi:
                return name
        return "TCP payload" if rel >= (raw[l4 + 12] >> 4) * 4 else "TCP options"
    return "payload"


def hexdump(raw: bytes, highlight: set[int] | list[int] | None = None, html_out: bool = False, width: int = 16) -> str:
    """A hexdump (offset, hex bytes, ASCII). ``highlight`` offsets are marked: ``<mark>`` in HTML,
    a ``^^`` line under them in text."""
    hl = set(highlight or ())
    lines = []
    for base in range(0, len(raw), width):
        chunk = raw[base:base + width]
        if html_out:
            cells = []
            for k, b in enumerate(chunk):
                cell = f"{b:02x}"
                if base + k in hl:
                    cell = f'<mark style="background:#F0E442;color:#000" title="{html.escape(field_at(raw, base + k))}">{cell}</mark>'
                cells.append(cell)
            asc = "".join(html.escape(chr(b)) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"{base:04x}  {' '.join(cells)}{'   ' * (width - len(chunk))}  {asc}")
        else:
            hexes = " ".join(f"{b:02x}" for b in chunk)
            asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            lines.append(f"{base:04x}  {hexes:<{width * 3 - 1}}  {asc}")
            marks = "".join("^^ " if base + k in hl else "   " for k in range(len(chunk))).rstrip()
            if marks:
                lines.append("      " + marks)
    text = "\n".join(lines)
    return f'<pre class="p2plab-hexdump">{text}</pre>' if html_out else text


# -- layers -------------------------------------------------------------------------------------

def packet_layers(pkt) -> list[tuple[str, list[tuple[str, str]]]]:
    """``[(layer name, [(field, value), ...]), ...]`` of a scapy packet, outermost first."""
    out = []
    layer = pkt
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        fields = []
        for f in layer.fields_desc:
            raw_value = layer.getfieldval(f.name)
            try:
                value = f.i2repr(layer, raw_value)
            except Exception:  # pragma: no cover - exotic fields
                value = repr(raw_value)
            if isinstance(raw_value, int) and not isinstance(raw_value, bool) and value != str(raw_value) \
                    and not value.startswith("0x"):
                value = f"{raw_value} ({value})"  # e.g. port 7000 (afs3_fileserver), proto 17 (udp)
            if len(value) > 120:
                value = value[:117] + "..."
            fields.append((f.name, value))
        out.append((layer.name, fields))
        layer = layer.payload if layer.payload else None
    return out


@dataclass
class PacketView:
    """One packet laid out for reading: ``layers``, ``raw`` bytes, and what a NAT changed."""

    row: int
    summary: str
    layers: list[tuple[str, list[tuple[str, str]]]]
    raw: bytes
    other_row: int | None = None
    other_raw: bytes | None = None
    changed: list[int] = field(default_factory=list)
    node: str = ""
    note: str = ""
    stun: XorSteps | None = None

    @property
    def changed_fields(self) -> list[str]:
        """The names of the header fields whose bytes changed, in packet order."""
        return list(dict.fromkeys(field_at(self.raw, i) for i in self.changed))

    def text(self) -> str:
        lines = [f"Row {self.row}: {self.summary}" + (f" at {self.node}" if self.node else "")]
        for name, fields in self.layers:
            lines.append(f"[{name}]")
            lines += [f"  {k} = {v}" for k, v in fields]
        if self.other_row is not None:
            lines.append(f"Compared with row {self.other_row} ({self.note}): {len(self.changed)} bytes differ, in "
                         + (", ".join(self.changed_fields) or "no field") + ".")
        lines.append(hexdump(self.raw, self.changed))
        if self.stun is not None:
            lines.append(str(self.stun))
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        e = html.escape
        parts = [f'<div class="p2plab-inspector" role="region" aria-label="packet inspector, row {self.row}">',
                 f"<p><b>Row {self.row}</b>: {e(self.summary)}{' at ' + e(self.node) if self.node else ''}</p>"]
        for name, fields in self.layers:
            rows = "".join(f"<tr><td>{e(k)}</td><td><code>{e(v)}</code></td></tr>" for k, v in fields)
            parts.append(f"<details open><summary><b>{e(name)}</b></summary><table>{rows}</table></details>")
        if self.other_row is not None:
            parts.append(f"<p>Compared with row {self.other_row} ({e(self.note)}): <b>{len(self.changed)}</b> bytes "
                         f"differ (highlighted), in {e(', '.join(self.changed_fields) or 'no field')}.</p>")
        parts.append(hexdump(self.raw, self.changed, html_out=True))
        if self.stun is not None:
            parts.append(self.stun._repr_html_())
        parts.append("</div>")
        return "".join(parts)


def inspect_packet(trace, row: int, before_row: int | None = None) -> PacketView:
    """The packet of trace row ``row``: layers and fields, and a hexdump in which the bytes that
    differ from ``before_row`` (by default the other half of a NAT rewrite, the ``pair``) are marked."""
    trace._check_row(row)
    df = trace.df
    if row < 0:
        row += len(df)
    raw = trace.raw(row)
    pkt = trace.packet(row)
    note = ""
    other = before_row
    if other is None:
        pair = df["pair"].iat[row]
        if pair is not None and int(pair) >= 0:
            other = int(pair)
            note = "the same packet before the NAT" if df["direction"].iat[row] == "out" else \
                "the same packet after the NAT"
    else:
        trace._check_row(other)
        note = "the row you chose"
    other_raw = trace.raw(other) if other is not None else None
    changed = changed_bytes(other_raw, raw) if other_raw is not None else []
    stun = None
    payload = _udp_payload(raw)
    if payload is not None and len(payload) >= 20 and struct.unpack_from("!I", payload, 4)[0] == MAGIC_COOKIE:
        try:
            stun = xor_mapped_address_steps(payload)
        except StunParseError:
            stun = None
    return PacketView(row, str(df["summary"].iat[row]), packet_layers(pkt), raw, other, other_raw, changed,
                      str(df["node"].iat[row]), note, stun)


def _udp_payload(raw: bytes) -> bytes | None:
    if not raw:
        return None
    if raw[0] >> 4 == 4:
        if raw[9] != 17:
            return None
        return raw[(raw[0] & 0x0F) * 4 + 8:]
    if len(raw) > 48 and raw[6] == 17:
        return raw[48:]
    return None


# -- STUN XOR-MAPPED-ADDRESS ----------------------------------------------------------------------

@dataclass
class XorSteps:
    """XOR-MAPPED-ADDRESS decoded step by step: ``steps`` (dicts), ``address``, ``port``."""

    family: int
    port: int
    address: str
    steps: list[dict[str, str]]
    transaction_id: bytes | None = None

    @property
    def endpoint(self) -> tuple[str, int]:
        return (self.address, self.port)

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.steps)

    def __str__(self) -> str:
        lines = ["XOR-MAPPED-ADDRESS, step by step:"]
        for k, s in enumerate(self.steps, 1):
            lines.append(f"{k}. {s['step']}: {s['bytes']}" + (f" XOR {s['xor_with']}" if s["xor_with"] else "")
                         + f" = {s['result']}  ({s['explanation']})")
        host = f"[{self.address}]" if self.family == 2 else self.address
        lines.append(f"Mapped address: {host}:{self.port}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td>{k}</td><td>{e(s['step'])}</td><td><code>{e(s['bytes'])}</code></td>"
            f"<td><code>{e(s['xor_with'])}</code></td><td><code>{e(s['result'])}</code></td><td>{e(s['explanation'])}</td></tr>"
            for k, s in enumerate(self.steps, 1))
        host = f"[{self.address}]" if self.family == 2 else self.address
        return (f'<table class="p2plab-xor" aria-label="XOR-MAPPED-ADDRESS decoding"><caption>XOR-MAPPED-ADDRESS '
                f"decodes to <b>{e(host)}:{self.port}</b></caption><thead><tr><th>#</th><th>step</th><th>bytes</th>"
                f"<th>XOR with</th><th>result</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>")


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02x}" for x in b)


def _find_attribute(msg: bytes) -> tuple[bytes, bytes]:
    """(XOR-MAPPED-ADDRESS value, transaction id) from a whole STUN message."""
    if len(msg) < 20:
        raise StunParseError(f"a STUN message has a 20-byte header; these are only {len(msg)} bytes")
    cookie = struct.unpack_from("!I", msg, 4)[0]
    if cookie != MAGIC_COOKIE:
        raise StunParseError(f"bad magic cookie 0x{cookie:08x} at offset 4 (STUN uses 0x2112A442)")
    length = struct.unpack_from("!H", msg, 2)[0]
    if 20 + length > len(msg):
        raise StunParseError(f"the header says {length} bytes of attributes at offset 2 but only "
                             f"{len(msg) - 20} follow")
    txid = msg[8:20]
    off = 20
    while off + 4 <= 20 + length:
        atype, alen = struct.unpack_from("!HH", msg, off)
        value = msg[off + 4:off + 4 + alen]
        if len(value) < alen:
            raise StunParseError(f"attribute 0x{atype:04x} at offset {off} claims {alen} bytes; only {len(value)} left")
        if atype in (XOR_MAPPED_ADDRESS, XOR_MAPPED_ADDRESS_OLD):
            return value, txid
        off += 4 + alen + (-alen % 4)
    raise StunParseError("this STUN message has no XOR-MAPPED-ADDRESS attribute (type 0x0020); a Binding success "
                         "response carries one")


def xor_mapped_address_steps(data: bytes, transaction_id: bytes | None = None) -> XorSteps:
    """Decode XOR-MAPPED-ADDRESS (RFC 8489 section 14.2) from raw bytes, showing every XOR.

    ``data`` is a whole STUN message (the attribute is found in it), or the attribute with its
    4-byte type/length header, or just its value (then give ``transaction_id`` for IPv6). The port
    is XORed with 0x2112 (the top half of the magic cookie); an IPv4 address with the cookie
    0x2112A442; an IPv6 address with the cookie followed by the 12-byte transaction id.
    """
    data = bytes(data)
    steps: list[dict[str, str]] = []
    if len(data) >= 20 and struct.unpack_from("!I", data, 4)[0] == MAGIC_COOKIE and data[0] < 0x40:
        value, txid = _find_attribute(data)
        steps.append({"step": "find the attribute", "bytes": f"type 0x{XOR_MAPPED_ADDRESS:04x}, {len(value)} bytes",
                      "xor_with": "", "result": _hex(value),
                      "explanation": "walk the attributes after the 20-byte header; transaction id "
                                     f"{txid.hex()} is bytes 8-19"})
        transaction_id = transaction_id or txid
    elif len(data) >= 4 and struct.unpack_from("!H", data)[0] in (XOR_MAPPED_ADDRESS, XOR_MAPPED_ADDRESS_OLD) \
            and struct.unpack_from("!H", data, 2)[0] == len(data) - 4:
        value = data[4:]
    else:
        value = data
    if len(value) < 8:
        raise StunParseError(f"XOR-MAPPED-ADDRESS needs at least 8 bytes (0, family, port, address); got {len(value)}")
    family = value[1]
    if family not in (1, 2):
        raise StunParseError(f"unknown address family 0x{family:02x} at offset 1 of the attribute (0x01 IPv4, 0x02 IPv6)")
    steps.append({"step": "family", "bytes": f"{value[1]:02x}", "xor_with": "",
                  "result": "IPv4" if family == 1 else "IPv6",
                  "explanation": "byte 1: 0x01 is IPv4, 0x02 IPv6 (byte 0 is reserved, zero)"})
    xport = struct.unpack_from("!H", value, 2)[0]
    port = xport ^ (MAGIC_COOKIE >> 16)
    steps.append({"step": "X-Port", "bytes": _hex(value[2:4]), "xor_with": "21 12",
                  "result": f"{port >> 8:02x} {port & 0xFF:02x} = port {port}",
                  "explanation": f"0x{xport:04x} XOR 0x2112 (the top 16 bits of the magic cookie) = {port}"})
    if family == 1:
        xaddr = value[4:8]
        key = struct.pack("!I", MAGIC_COOKIE)
        addr = bytes(a ^ k for a, k in zip(xaddr, key))
        address = str(ipaddress.IPv4Address(addr))
        why = "each byte XOR the magic cookie 21 12 a4 42: " + ", ".join(
            f"{a:02x}^{k:02x}={r:02x}={r}" for a, k, r in zip(xaddr, key, addr))
    else:
        if len(value) < 20:
            raise StunParseError(f"an IPv6 XOR-MAPPED-ADDRESS has 20 bytes; got {len(value)}")
        if transaction_id is None or len(transaction_id) != 12:
            raise StunParseError("an IPv6 address is XORed with the cookie and the 12-byte transaction id: pass the "
                                 "whole STUN message, or transaction_id=bytes(12 bytes)")
        xaddr = value[4:20]
        key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        addr = bytes(a ^ k for a, k in zip(xaddr, key))
        address = str(ipaddress.IPv6Address(addr))
        why = "XOR with the magic cookie (4 bytes) followed by the transaction id (12 bytes)"
    steps.append({"step": "X-Address", "bytes": _hex(xaddr), "xor_with": _hex(key), "result": f"{_hex(addr)} = {address}",
                  "explanation": why})
    return XorSteps(family, port, address, steps, transaction_id)


def encode_xor_mapped_address(ip: str, port: int, transaction_id: bytes = bytes(12)) -> bytes:
    """The XOR-MAPPED-ADDRESS value for ``ip:port`` (the inverse of the decoder; handy for exercises)."""
    addr = ipaddress.ip_address(ip)
    key = struct.pack("!I", MAGIC_COOKIE) + (transaction_id if addr.version == 6 else b"")
    xaddr = bytes(a ^ k for a, k in zip(addr.packed, key))
    return struct.pack("!BBH", 0, 1 if addr.version == 4 else 2, port ^ (MAGIC_COOKIE >> 16)) + xaddr


def _check_trace(trace: Any) -> None:  # pragma: no cover - tiny guard used by widgets
    if trace is None or not len(trace):
        raise TraceError("no trace to inspect: run a scenario first")
