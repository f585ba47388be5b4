"""PCP, the Port Control Protocol (RFC 6887): encode and decode, nothing else.

PCP is the IETF successor of NAT-PMP and shares its port: a client sends a request to its
default router, UDP port 5351, and the server answers from that port (RFC 6887 section 8).
Every message starts with a 24-byte header (section 7):

request   version 2 (8 bits) | R=0 (1) opcode (7) | reserved (16) | requested lifetime (32) |
          PCP client's IP address (128, IPv4 as ``::ffff:a.b.c.d``)
response  version 2 | R=1 opcode | reserved (8) | result code (8) | lifetime (32) | epoch time (32) |
          reserved (96)

then opcode-specific data and options (code 8, reserved 8, length 16, data padded to 4 bytes).
The MAP opcode (1, section 11.1) carries a 96-bit *mapping nonce*, the protocol, 24 reserved bits,
the internal port, the suggested (request) or assigned (response) external port and external
address (128 bits) - 36 bytes. ANNOUNCE (0, section 14.1) carries nothing. A message is at most
1100 bytes and a multiple of 4 (section 7).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ..errors import P2PLabError

PORT = 5351  # RFC 6887 section 19.1 (the port NAT-PMP used)
CLIENT_PORT = 5350  # where clients listen for unsolicited ANNOUNCE responses (section 19.1)
VERSION = 2
MAX_SIZE = 1100
HEADER = 24
OP_ANNOUNCE, OP_MAP, OP_PEER = 0, 1, 2
OPCODES = {OP_ANNOUNCE: "ANNOUNCE", OP_MAP: "MAP", OP_PEER: "PEER"}
MAP_SIZE = 36
PEER_SIZE = 56

RESULTS = {  # RFC 6887 section 7.4
    0: ("SUCCESS", "success"),
    1: ("UNSUPP_VERSION", "the server does not speak this PCP version"),
    2: ("NOT_AUTHORIZED", "the server refuses: mapping is disabled for this client, against its security "
        "policy, or the mapping belongs to another client (a different nonce)"),
    3: ("MALFORMED_REQUEST", "the request could not be parsed"),
    4: ("UNSUPP_OPCODE", "the server does not support this opcode"),
    5: ("UNSUPP_OPTION", "a mandatory-to-process option is not supported"),
    6: ("MALFORMED_OPTION", "an option is malformed"),
    7: ("NETWORK_FAILURE", "the server or the device it controls has a network failure (e.g. no usable "
        "external address)"),
    8: ("NO_RESOURCES", "the server has no resources for this now; the same request may work later"),
    9: ("UNSUPP_PROTOCOL", "the server does not support mappings for this protocol"),
    10: ("USER_EX_QUOTA", "this client has used up its quota of mappings"),
    11: ("CANNOT_PROVIDE_EXTERNAL", "the suggested external address or port cannot be provided"),
    12: ("ADDRESS_MISMATCH", "the source address of the request differs from the client address inside it: "
         "there is a NAT between the client and the server"),
    13: ("EXCESSIVE_REMOTE_PEERS", "the server cannot create filters for this many remote peers"),
}
CODES = {name: code for code, (name, _) in RESULTS.items()}
SUCCESS = 0
UNSUPP_VERSION, NOT_AUTHORIZED, MALFORMED_REQUEST, UNSUPP_OPCODE, UNSUPP_OPTION = 1, 2, 3, 4, 5
NETWORK_FAILURE, NO_RESOURCES, UNSUPP_PROTOCOL, CANNOT_PROVIDE_EXTERNAL, ADDRESS_MISMATCH = 7, 8, 9, 11, 12
LONG_LIFETIME_ERRORS = {1, 2, 3, 4, 5, 6, 9, 12}  # section 7.4: "long lifetime error"


class PcpError(P2PLabError, ValueError):
    """Bytes that are not a well-formed PCP message. ``result`` is the result code a server answers."""

    def __init__(self, message: str, result: int = MALFORMED_REQUEST) -> None:
        super().__init__(message)
        self.result = result


def result_name(code: int) -> str:
    """``SUCCESS``, ``ADDRESS_MISMATCH``... for a PCP result code."""
    return RESULTS.get(code, (f"result {code}", ""))[0]


def result_text(code: int) -> str:
    """What a PCP result code means, in words."""
    return RESULTS.get(code, ("", f"unknown result code {code}"))[1]


def pack_ip(ip: str) -> bytes:
    """A 128-bit PCP address field: IPv6 as is, IPv4 as the IPv4-mapped ``::ffff:a.b.c.d``."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + addr.packed
    return addr.packed


def unpack_ip(raw: bytes) -> str:
    """The address in a 128-bit PCP address field (IPv4-mapped addresses come back as IPv4)."""
    addr = ipaddress.IPv6Address(bytes(raw))
    return str(addr.ipv4_mapped) if addr.ipv4_mapped is not None else str(addr)


ALL_ZEROS_V4 = "0.0.0.0"  # "no preference" for a suggested IPv4 external address (::ffff:0.0.0.0)


@dataclass(frozen=True)
class Option:
    """A PCP option: code 0-127 must be understood by the receiver, 128-255 may be ignored."""

    code: int
    data: bytes = b""

    def encode(self) -> bytes:
        pad = (4 - len(self.data) % 4) % 4
        return struct.pack("!BBH", self.code, 0, len(self.data)) + self.data + b"\x00" * pad


@dataclass(frozen=True)
class MapData:
    """The MAP opcode's fields (request: suggested external; response: assigned external)."""

    nonce: bytes
    proto: int
    internal_port: int
    external_port: int = 0
    external_ip: str = ALL_ZEROS_V4

    def encode(self) -> bytes:
        if len(self.nonce) != 12:
            raise PcpError(f"a mapping nonce is 96 bits (12 bytes); got {len(self.nonce)}")
        return (self.nonce + struct.pack("!B3xHH", self.proto, self.internal_port, self.external_port)
                + pack_ip(self.external_ip))

    @classmethod
    def decode(cls, raw: bytes) -> MapData:
        if len(raw) < MAP_SIZE:
            raise PcpError(f"MAP data is {MAP_SIZE} bytes; only {len(raw)} are left after the header")
        proto, iport, eport = struct.unpack_from("!B3xHH", raw, 12)
        return cls(bytes(raw[:12]), proto, iport, eport, unpack_ip(raw[20:36]))


@dataclass(frozen=True)
class Request:
    """A PCP request: opcode, requested lifetime, the client's own idea of its address, MAP data."""

    opcode: int
    lifetime: int
    client_ip: str
    map: MapData | None = None
    options: tuple[Option, ...] = ()
    opaque: bytes = b""  # opcode data of opcodes p2plab does not decode (PEER, unknown)
    version: int = VERSION

    def encode(self) -> bytes:
        body = self.map.encode() if self.map is not None else self.opaque
        out = (struct.pack("!BBHI", self.version, self.opcode & 0x7F, 0, self.lifetime) + pack_ip(self.client_ip)
               + body + b"".join(o.encode() for o in self.options))
        return out


@dataclass(frozen=True)
class Response:
    """A PCP response: result code, granted lifetime, the server's epoch, and (MAP) the assignment."""

    opcode: int
    result: int
    lifetime: int
    epoch: int
    map: MapData | None = None
    options: tuple[Option, ...] = ()
    opaque: bytes = b""
    version: int = VERSION

    @property
    def ok(self) -> bool:
        return self.result == SUCCESS

    def encode(self) -> bytes:
        body = self.map.encode() if self.map is not None else self.opaque
        return (struct.pack("!BBBBII", self.version, 0x80 | (self.opcode & 0x7F), 0, self.result, self.lifetime,
                            self.epoch) + b"\x00" * 12 + body + b"".join(o.encode() for o in self.options))


def _options(raw: bytes) -> tuple[Option, ...]:
    out = []
    i = 0
    while i < len(raw):
        if len(raw) - i < 4:
            raise PcpError(f"{len(raw) - i} stray bytes after the last option (an option header is 4 bytes)", 6)
        code, _, length = struct.unpack_from("!BBH", raw, i)
        if i + 4 + length > len(raw):
            raise PcpError(f"option {code} says it has {length} bytes of data but only {len(raw) - i - 4} follow", 6)
        out.append(Option(code, bytes(raw[i + 4:i + 4 + length])))
        i += 4 + length + (4 - length % 4) % 4
    return tuple(out)


def is_pcp(data: bytes) -> bool:
    """Does this datagram look like PCP (version 2) rather than NAT-PMP (version 0)?"""
    return len(data) >= 2 and data[0] == VERSION


def decode(data: bytes) -> Request | Response:
    """Parse one PCP message. Raises ``PcpError`` (with the result code a server would answer)."""
    data = bytes(data)
    if len(data) < 4:
        raise PcpError(f"a PCP message has a 24-byte header; got {len(data)} bytes")
    if data[0] != VERSION:
        raise PcpError(f"this is PCP version {data[0]}; p2plab speaks version 2 (RFC 6887)"
                       + (" - version 0 is NAT-PMP (RFC 6886)" if data[0] == 0 else ""), UNSUPP_VERSION)
    if len(data) > MAX_SIZE or len(data) % 4 or len(data) < HEADER:
        raise PcpError(f"a PCP message is 24 to {MAX_SIZE} bytes and a multiple of 4; got {len(data)} bytes")
    opcode, is_response = data[1] & 0x7F, bool(data[1] & 0x80)
    size = {OP_MAP: MAP_SIZE, OP_PEER: PEER_SIZE, OP_ANNOUNCE: 0}.get(opcode)
    body = data[HEADER:]
    if size is not None and len(body) < size and is_response and data[3] != SUCCESS:
        # an error response copies what it could of a short request: keep it as opaque bytes
        _, _, _, result, life, epoch = struct.unpack_from("!BBBBII", data)
        return Response(opcode, result, life, epoch, None, (), body)
    if size is not None and len(body) < size:
        raise PcpError(f"{OPCODES[opcode]} needs {size} bytes after the header; got {len(body)}")
    if size is None:  # unknown opcode: keep the rest as opaque data, options cannot be found
        mp, opaque, opts = None, body, ()
    else:
        mp = MapData.decode(body) if opcode == OP_MAP else None
        opaque = body[:size] if opcode == OP_PEER else b""
        opts = _options(body[size:])
    if is_response:
        _, _, _, result, life, epoch = struct.unpack_from("!BBBBII", data)
        return Response(opcode, result, life, epoch, mp, opts, opaque)
    _, _, _, life = struct.unpack_from("!BBHI", data)
    return Request(opcode, life, unpack_ip(data[8:24]), mp, opts, opaque)

