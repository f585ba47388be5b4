"""Traces: what happened to every packet, as a pandas DataFrame plus the real packets.

A ``Trace`` is the one thing the figures (``p2plab.viz``) and widgets read. The simulator, the
real Linux lab and recorded pcaps all produce one. Each row is one packet seen at one place::

    time  node  interface  direction  src  sport  dst  dport  protocol  length  summary
    action (sent / forwarded / translated / dropped / delivered)  reason  packet_id  pair

A NAT rewrite appears as two rows: the packet before (action ``translated``, direction ``in``)
and after (``translated``, ``out``); each row's ``pair`` column holds the other's row number.
``trace.packet(i)`` gives the scapy packet of row ``i``; ``trace.to_pcap(path)`` writes a pcap
that Wireshark and tshark open.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import TraceError
from .packet import PROTO_NAMES, TCP, UDP, Datagram

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

COLUMNS = [
    "time", "node", "interface", "direction", "src", "sport", "dst", "dport", "protocol",
    "length", "summary", "action", "reason", "packet_id", "pair",
]
ACTIONS = ("sent", "forwarded", "translated", "dropped", "delivered", "captured")

STUN_COOKIE = 0x2112A442
STUN_METHODS = {
    0x001: "Binding", 0x003: "Allocate", 0x004: "Refresh", 0x006: "Send", 0x007: "Data",
    0x008: "CreatePermission", 0x009: "ChannelBind",
}
STUN_CLASSES = {0: "request", 1: "indication", 2: "success response", 3: "error response"}

LINKTYPE_RAW = 101


DTLS_CONTENT = {20: "ChangeCipherSpec", 21: "Alert", 22: "Handshake", 23: "ApplicationData", 24: "Heartbeat",
                25: "CID", 26: "ACK"}
ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 8: "echo request", 11: "time exceeded"}
ICMP_UNREACH = {0: "net unreachable", 1: "host unreachable", 3: "port unreachable", 13: "administratively prohibited"}


def describe_icmp(icmp: bytes) -> str:
    """A few words for an ICMP message (from its type byte on), the same in every world, e.g.
    'ICMP port unreachable (for UDP 1.2.3.4:5 > 6.7.8.9:10)': an error names the packet it quotes."""
    if len(icmp) < 2:
        return "ICMP"
    typ, code = icmp[0], icmp[1]
    if typ == 3:
        text = f"ICMP {ICMP_UNREACH.get(code, f'destination unreachable (code {code})')}"
    else:
        text = f"ICMP {ICMP_TYPES.get(typ, f'type {typ}')}"
    quoted = icmp[8:]
    if typ in (3, 11) and len(quoted) >= 28 and quoted[9] in (6, 17):
        ihl = (quoted[0] & 0x0F) * 4
        src = ".".join(map(str, quoted[12:16]))
        dst = ".".join(map(str, quoted[16:20]))
        sport, dport = struct.unpack_from("!HH", quoted, ihl)
        text += f" (for {'UDP' if quoted[9] == 17 else 'TCP'} {src}:{sport} > {dst}:{dport})"
    return text


def describe_ssdp(payload: bytes) -> str:
    """SSDP (UPnP discovery, HTTP over UDP): a search, an answer or an announcement, with its target."""
    lines = payload.decode("latin-1").split("\r\n")
    headers = {k.strip().upper(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:]) if k}
    if lines[0].startswith("M-SEARCH"):
        return f"SSDP M-SEARCH {headers.get('ST', '')}".strip()
    if lines[0].startswith("NOTIFY"):
        return f"SSDP NOTIFY {headers.get('NTS', '')} {headers.get('NT', '')}".strip()
    return f"SSDP answer {headers.get('ST', '')}".strip()


def describe_payload(payload: bytes, proto: int = UDP, flags: int = 0) -> tuple[str, str]:
    """Name the application protocol of a payload and summarise it in a few words."""
    if proto == 1:
        return "ICMP", describe_icmp(payload)
    if proto not in (UDP, TCP):
        return str(proto), f"IP protocol {proto}, {len(payload)} bytes"
    if proto == TCP:
        names = [n for bit, n in ((0x02, "SYN"), (0x10, "ACK"), (0x01, "FIN"), (0x04, "RST")) if flags & bit]
        text = "TCP " + "/".join(names or ["-"])
        return "TCP", text + (f" {payload[:40].decode('latin-1')!r}" if payload else "")
    if len(payload) >= 20 and payload[0] < 0x40 and struct.unpack_from("!I", payload, 4)[0] == STUN_COOKIE:
        mtype = struct.unpack_from("!H", payload)[0]
        method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
        cls = ((mtype & 0x0100) >> 7) | ((mtype & 0x0010) >> 4)
        name = STUN_METHODS.get(method, f"method 0x{method:03x}")
        proto_name = "STUN" if method == 1 else "TURN"
        return proto_name, f"{proto_name} {name} {STUN_CLASSES[cls]}"
    if len(payload) >= 4 and 0x40 <= payload[0] <= 0x4F:
        channel, length = struct.unpack_from("!HH", payload)
        if 4 + length <= len(payload) <= 4 + length + 3:  # its length field must fit (padding allowed)
            return "TURN", f"TURN ChannelData 0x{channel:04x}"
    if len(payload) >= 13 and 20 <= payload[0] <= 26 and payload[1] == 0xFE:  # RFC 7983: 20-63 is DTLS
        return "DTLS", f"DTLS {DTLS_CONTENT.get(payload[0], payload[0])}"
    if proto == UDP and payload.startswith((b"M-SEARCH * HTTP/1.1\r\n", b"NOTIFY * HTTP/1.1\r\n", b"HTTP/1.1 200")):
        return "SSDP", describe_ssdp(payload)
    if payload.startswith(b"P2P1 "):
        words = payload[5:].split(b" ")
        return "P2P", "P2P " + b" ".join(words[:3]).decode("latin-1", "replace")[:60]
    try:
        text = payload[:40].decode("utf-8")
        if text.isprintable():
            return "UDP", f"UDP {text!r}"
    except UnicodeDecodeError:
        pass
    if proto == UDP and len(payload) >= 20 and payload[0] & 0xE0 == 0x20:  # not text: DTLS 1.3 unified
        return "DTLS", "DTLS encrypted record"  # header 001CSLEE (RFC 9147), after the handshake
    return PROTO_NAMES.get(proto, str(proto)), f"{PROTO_NAMES.get(proto, proto)} {len(payload)} bytes"


class Trace:
    """A record of packets: ``trace.df`` is the DataFrame, ``trace.packet(i)`` the scapy packet.

    ``world`` says where it came from: ``"sim"``, ``"netns"`` or ``"recorded"``.
    """

    def __init__(self, rows: list[tuple], packets: list[Datagram | bytes], world: str = "sim",
                 meta: dict[str, Any] | None = None) -> None:
        if len(rows) != len(packets):
            raise TraceError("a trace needs one packet per row")
        self._rows = rows
        self._packets = packets
        self.world = world
        self.meta = dict(meta or {})
        self._df: pd.DataFrame | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_pcap(cls, path: str | Path, node: str = "capture", interface: str = "-",
                  world: str = "recorded") -> Trace:
        """Read any pcap/pcapng (Ethernet, raw IP or Linux cooked) into a trace of ``captured`` rows."""
        path = Path(path)
        if not path.exists():
            raise TraceError(f"no such capture file: {path}")
        head = path.read_bytes()[:4]
        if head not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                        b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"):
            raise TraceError(
                f"{path} is not a pcap or pcapng file (it starts with {head!r}). Save captures from "
                "Wireshark/tcpdump as .pcap or .pcapng, e.g. tcpdump -w capture.pcap"
            )
        from ._scapy import rdpcap_ip

        rows, packets = [], []
        for ts, raw in rdpcap_ip(path):
            rows.append(_row_from_raw(ts, node, interface, "in", "captured", raw, ""))
            packets.append(raw)
        if rows:
            t0 = rows[0][0]
            rows = [(r[0] - t0,) + r[1:] for r in rows]
        return cls(rows, packets, world=world, meta={"source": str(path)})

    @classmethod
    def concat(cls, traces: Iterable[Trace], world: str | None = None) -> Trace:
        """Merge traces (e.g. one capture per interface) into one, ordered by time."""
        traces = list(traces)
        items = []
        for t in traces:
            items.extend(zip(t._rows, t._packets))
        items.sort(key=lambda rp: rp[0][0])
        return cls([r for r, _ in items], [p for _, p in items],
                   world=world or (traces[0].world if traces else "recorded"))

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rows)

    @property
    def df(self) -> pd.DataFrame:
        """The trace as a pandas DataFrame (one row per packet seen somewhere)."""
        if self._df is None:
            import pandas as pd

            full = []
            for row, pkt in zip(self._rows, self._packets):
                if row[9] is None:  # protocol/summary computed lazily for simulator rows
                    if isinstance(pkt, Datagram):
                        proto, summary = describe_payload(pkt.payload, pkt.proto, pkt.flags)
                        length = 28 + len(pkt.payload) if pkt.proto == UDP else 40 + len(pkt.payload)
                    else:
                        parsed = _row_from_raw(0.0, "", "", "", "", pkt, "")
                        proto, length, summary = parsed[8], parsed[9], parsed[10]
                    row = row[:8] + (proto, length, summary) + row[11:]
                full.append(row)
            df = pd.DataFrame(full, columns=COLUMNS)
            df["time"] = df["time"].astype(float).round(9)  # 0.054 rather than 0.054000000000000006
            self._df = df
        return self._df

    def raw(self, i: int) -> bytes:
        """The bytes of row ``i``'s packet, from the IP header on."""
        self._check_row(i)
        pkt = self._packets[i]
        return pkt.to_bytes() if isinstance(pkt, Datagram) else pkt

    def payload(self, i: int) -> tuple[int, int, bytes]:
        """``(ip_protocol, tcp_flags, payload)`` of row ``i``: what the figures decode to name a packet."""
        self._check_row(i)
        pkt = self._packets[i]
        if isinstance(pkt, Datagram):
            return pkt.proto, pkt.flags, pkt.payload
        return _l4_of_raw(pkt)

    def packet(self, i: int):
        """The scapy packet of row ``i`` (IP or IPv6 layer and everything above it)."""
        from ._scapy import ip_packet

        return ip_packet(self.raw(i))

    def _check_row(self, i: int) -> None:
        if not self._rows:
            raise TraceError("this trace has no packets: run the scenario (or capture) before asking for one")
        if not isinstance(i, int) or not -len(self._rows) <= i < len(self._rows):
            raise TraceError(f"row {i!r} does not exist: this trace has rows 0 to {len(self._rows) - 1}")

    def require_packets(self) -> None:
        """Raise a clear TraceError if the trace is empty."""
        if not self._rows:
            raise TraceError("this trace has no packets: run the scenario (or capture) first, then draw it, "
                             "e.g. trace = p2plab.punch.run_punch('full-cone', 'symmetric').trace")

    def to_pcap(self, path: str | Path, rows: Iterable[int] | None = None) -> Path:
        """Write the packets (all rows, or the given rows) to a pcap file (raw IP link type)."""
        path = Path(path)
        idx = range(len(self._rows)) if rows is None else rows
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW)]
        for i in idx:
            t = self._rows[i][0]
            raw = self.raw(i)
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            out.append(struct.pack("<IIII", sec, usec, len(raw), len(raw)) + raw)
        path.write_bytes(b"".join(out))
        return path

    def where(self, **equals) -> Trace:
        """A new trace with only the rows whose columns equal the given values."""
        df = self.df
        mask = None
        for col, val in equals.items():
            m = df[col] == val
            mask = m if mask is None else mask & m
        idx = list(df.index[mask]) if mask is not None else list(df.index)
        return Trace([self._rows[i] for i in idx], [self._packets[i] for i in idx], self.world, self.meta)

    def text_summary(self) -> str:
        """A few lines in words: how many packets, delivered, dropped and why."""
        if not self._rows:
            return "An empty trace: no packets."
        df = self.df
        counts = df["action"].value_counts()
        parts = [f"{counts.get(a, 0)} {a}" for a in ACTIONS if counts.get(a, 0)]
        lines = [f"{len(df)} packet events over {df['time'].max():.3f} s ({self.world} world): " + ", ".join(parts)]
        for reason in df.loc[df["action"] == "dropped", "reason"].drop_duplicates().head(5):
            lines.append(f"dropped: {reason}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Trace {len(self)} rows, world={self.world}>\n" + self.text_summary()

    def _repr_html_(self) -> str:
        cols = ["time", "node", "direction", "src", "sport", "dst", "dport", "summary", "action", "reason"]
        return (f"<p>{self.text_summary()}</p>".replace("\n", "<br>")
                + self.df[cols].head(60).to_html(index=True, float_format=lambda x: f"{x:.4f}"))


def _row_from_raw(ts: float, node: str, interface: str, direction: str, action: str, raw: bytes,
                  reason: str) -> tuple:
    """A trace row from raw IP bytes (used for captures)."""
    version = raw[0] >> 4
    if version == 4:
        ihl = (raw[0] & 0x0F) * 4
        proto = raw[9]
        src = ".".join(str(b) for b in raw[12:16])
        dst = ".".join(str(b) for b in raw[16:20])
        ident = struct.unpack_from("!H", raw, 4)[0]
        l4 = raw[ihl:]
    else:
        import ipaddress

        proto = raw[6]
        src = str(ipaddress.IPv6Address(raw[8:24]))
        dst = str(ipaddress.IPv6Address(raw[24:40]))
        ident = 0
        l4 = raw[40:]
    sport = dport = 0
    flags = 0
    payload = b""
    if proto == UDP and len(l4) >= 8:
        sport, dport = struct.unpack_from("!HH", l4)
        payload = l4[8:]
    elif proto == 1:
        payload = l4
    elif proto == TCP and len(l4) >= 20:
        sport, dport = struct.unpack_from("!HH", l4)
        flags = l4[13]
        payload = l4[(l4[12] >> 4) * 4:]
    pname, summary = describe_payload(payload, proto, flags)
    return (ts, node, interface, direction, src, sport, dst, dport, pname, len(raw), summary, action,
            reason, ident, -1)


def _l4_of_raw(raw: bytes) -> tuple[int, int, bytes]:
    """``(ip_protocol, tcp_flags, payload)`` of raw IPv4/IPv6 bytes (ICMP: the whole ICMP message)."""
    if raw[0] >> 4 == 4:
        proto, l4 = raw[9], raw[(raw[0] & 0x0F) * 4:]
    else:
        proto, l4 = raw[6], raw[40:]
    if proto == UDP and len(l4) >= 8:
        return proto, 0, l4[8:]
    if proto == TCP and len(l4) >= 20:
        return proto, l4[13], l4[(l4[12] >> 4) * 4:]
    return proto, 0, l4
