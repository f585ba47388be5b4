"""A light packet for the simulator's hot path, turned into real IP bytes only when needed.

Building a scapy object per hop would cap the simulator at a few thousand packets a second, so
the simulator moves ``Datagram`` objects and builds the exact IPv4/IPv6 + UDP/TCP bytes (with
correct checksums) when a trace is shown, dissected or written to a pcap.
"""

from __future__ import annotations

import ipaddress
import struct

UDP = 17
TCP = 6
PROTO_NAMES = {UDP: "UDP", TCP: "TCP"}

# TCP flag bits
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class Datagram:
    """One IP packet in flight in the simulator (immutable once sent: a NAT makes a new one)."""

    __slots__ = ("src", "sport", "dst", "dport", "proto", "payload", "ident", "ttl", "flags", "seq", "ack")

    def __init__(
        self,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        payload: bytes = b"",
        proto: int = UDP,
        ident: int = 0,
        ttl: int = 64,
        flags: int = 0,
        seq: int = 0,
        ack: int = 0,
    ) -> None:
        self.src = src
        self.sport = sport
        self.dst = dst
        self.dport = dport
        self.payload = payload
        self.proto = proto
        self.ident = ident
        self.ttl = ttl
        self.flags = flags
        self.seq = seq
        self.ack = ack

    def rewrite(self, **changes) -> Datagram:
        """A copy with some header fields changed (what a NAT or router does)."""
        new = Datagram(
            self.src, self.sport, self.dst, self.dport, self.payload, self.proto,
            self.ident, self.ttl, self.flags, self.seq, self.ack,
        )
        for k, v in changes.items():
            setattr(new, k, v)
        return new

    def __repr__(self) -> str:
        return (
            f"<{PROTO_NAMES.get(self.proto, self.proto)} {self.src}:{self.sport} > {self.dst}:{self.dport} "
            f"{len(self.payload)} bytes>"
        )

    def __len__(self) -> int:
        return len(self.to_bytes())

    def to_bytes(self) -> bytes:
        """The packet as it would be on the wire: IP header + UDP/TCP header + payload."""
        return build_ip_packet(
            self.src, self.sport, self.dst, self.dport, self.payload, self.proto,
            self.ident, self.ttl, self.flags, self.seq, self.ack,
        )


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_ip_packet(
    src: str, sport: int, dst: str, dport: int, payload: bytes, proto: int = UDP,
    ident: int = 0, ttl: int = 64, flags: int = 0, seq: int = 0, ack: int = 0,
) -> bytes:
    """Build IPv4 or IPv6 + UDP/TCP bytes with valid checksums."""
    s = ipaddress.ip_address(src)
    d = ipaddress.ip_address(dst)
    if proto == UDP:
        l4_len = 8 + len(payload)
        l4 = struct.pack("!HHHH", sport, dport, l4_len, 0) + payload
    else:
        l4_len = 20 + len(payload)
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, proto, l4_len)
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", l4_len, proto)
    csum = _checksum(pseudo + l4)
    if proto == UDP:
        csum = csum or 0xFFFF
        l4 = l4[:6] + struct.pack("!H", csum) + l4[8:]
    else:
        l4 = l4[:16] + struct.pack("!H", csum) + l4[18:]
    if s.version == 4:
        hdr = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + l4_len, ident & 0xFFFF, 0x4000, ttl, proto, 0, s.packed, d.packed
        )
        hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
        return hdr + l4
    hdr = struct.pack("!IHBB16s16s", 6 << 28, l4_len, proto, ttl, s.packed, d.packed)
    return hdr + l4
