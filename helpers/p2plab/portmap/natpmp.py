"""NAT-PMP (RFC 6886) messages: encode and decode, nothing else.

NAT-PMP is Apple's port mapping protocol (2005), superseded by PCP but still spoken by many
home routers and by ``natpmpc``. A client on the LAN sends a UDP request to its default gateway,
port 5351 (RFC 6886 section 3); the gateway answers from that port. Every field is big-endian:

* external address request (section 3.2): version 0, opcode 0 - two bytes;
  response: version 0, opcode 128, result code (16 bits), seconds since start of epoch (32),
  external IPv4 address (32) - 12 bytes.
* mapping request (section 3.3): version 0, opcode 1 (UDP) or 2 (TCP), reserved (16, zero),
  internal port (16), suggested external port (16), requested lifetime in seconds (32) - 12 bytes;
  response: version 0, opcode 128 + op, result code (16), epoch (32), internal port (16),
  mapped external port (16), lifetime (32) - 16 bytes.

A lifetime of 0 deletes a mapping (section 3.4). Result codes are in ``RESULTS`` (section 3.5).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ..errors import P2PLabError

PORT = 5351  # the server (gateway) port, RFC 6886 section 3
CLIENT_PORT = 5350  # where clients hear the gateway's address-change announcements (section 3.2.1)
VERSION = 0
OP_EXTERNAL_ADDRESS, OP_MAP_UDP, OP_MAP_TCP = 0, 1, 2
RESPONSE = 128  # a response's opcode is 128 + the request's
OPCODES = {OP_EXTERNAL_ADDRESS: "external address", OP_MAP_UDP: "map UDP", OP_MAP_TCP: "map TCP"}
PROTO_OF_OP = {OP_MAP_UDP: 17, OP_MAP_TCP: 6}
OP_OF_PROTO = {17: OP_MAP_UDP, 6: OP_MAP_TCP}
RECOMMENDED_LIFETIME = 7200  # seconds, RFC 6886 section 3.3

SUCCESS, UNSUPP_VERSION, NOT_AUTHORIZED, NETWORK_FAILURE, OUT_OF_RESOURCES, UNSUPP_OPCODE = range(6)
RESULTS = {
    SUCCESS: ("SUCCESS", "success"),
    UNSUPP_VERSION: ("UNSUPP_VERSION", "unsupported version"),
    NOT_AUTHORIZED: ("NOT_AUTHORIZED", "not authorized/refused: the gateway supports NAT-PMP but "
                     "refuses to map (e.g. the user turned it off)"),
    NETWORK_FAILURE: ("NETWORK_FAILURE", "network failure: the gateway has no usable external address "
                      "(e.g. it has not got one from DHCP yet, or it will not forward to it)"),
    OUT_OF_RESOURCES: ("OUT_OF_RESOURCES", "out of resources: the gateway cannot create any more mappings"),
    UNSUPP_OPCODE: ("UNSUPP_OPCODE", "unsupported opcode"),
}


class NatPmpError(P2PLabError, ValueError):
    """Bytes that are not a NAT-PMP message of the kind expected."""


@dataclass(frozen=True)
class ExternalAddressRequest:
    """Client to gateway: what is your external address?"""

    def encode(self) -> bytes:
        return bytes([VERSION, OP_EXTERNAL_ADDRESS])


@dataclass(frozen=True)
class MapRequest:
    """Client to gateway: map ``internal_port`` (of the sender's address) for ``lifetime`` seconds."""

    proto: int  # 17 UDP or 6 TCP
    internal_port: int
    suggested_external_port: int = 0
    lifetime: int = RECOMMENDED_LIFETIME

    def encode(self) -> bytes:
        if self.proto not in OP_OF_PROTO:
            raise NatPmpError(f"NAT-PMP maps UDP (17) or TCP (6) only; got protocol {self.proto}")
        return struct.pack("!BBHHHI", VERSION, OP_OF_PROTO[self.proto], 0, self.internal_port,
                           self.suggested_external_port, self.lifetime)


@dataclass(frozen=True)
class ExternalAddressResponse:
    result: int
    epoch: int
    external_ip: str

    def encode(self) -> bytes:
        return struct.pack("!BBHI4s", VERSION, RESPONSE + OP_EXTERNAL_ADDRESS, self.result, self.epoch,
                           ipaddress.IPv4Address(self.external_ip).packed)


@dataclass(frozen=True)
class MapResponse:
    proto: int
    result: int
    epoch: int
    internal_port: int
    external_port: int
    lifetime: int

    def encode(self) -> bytes:
        return struct.pack("!BBHIHHI", VERSION, RESPONSE + OP_OF_PROTO[self.proto], self.result, self.epoch,
                           self.internal_port, self.external_port, self.lifetime)


@dataclass(frozen=True)
class ErrorResponse:
    """A response that carries only the header: version, opcode, result code and epoch (8 bytes).
    Used for unsupported versions and opcodes (RFC 6886 section 3.5 and its erratum 3618)."""

    opcode: int
    result: int
    epoch: int

    def encode(self) -> bytes:
        return struct.pack("!BBHI", VERSION, self.opcode, self.result, self.epoch)


Message = ExternalAddressRequest | MapRequest | ExternalAddressResponse | MapResponse | ErrorResponse


def result_name(code: int) -> str:
    """``SUCCESS``, ``NOT_AUTHORIZED``... for a NAT-PMP result code."""
    return RESULTS.get(code, (f"result {code}", ""))[0]


def result_text(code: int) -> str:
    """What a NAT-PMP result code means, in words."""
    return RESULTS.get(code, ("", f"unknown result code {code}"))[1]


def decode(data: bytes) -> Message:
    """Parse one NAT-PMP message. Raises ``NatPmpError`` saying what is wrong."""
    data = bytes(data)
    if len(data) < 2:
        raise NatPmpError(f"a NAT-PMP message has at least 2 bytes (version, opcode); got {len(data)}")
    version, op = data[0], data[1]
    if version != VERSION:
        raise NatPmpError(f"NAT-PMP is version 0; this message says version {version}"
                          + (" (that is PCP, RFC 6887: use p2plab.portmap.pcp)" if version == 2 else ""))
    if op < RESPONSE:
        if op == OP_EXTERNAL_ADDRESS:
            return ExternalAddressRequest()
        if op in PROTO_OF_OP:
            if len(data) < 12:
                raise NatPmpError(f"a NAT-PMP mapping request has 12 bytes; got {len(data)}")
            _, _, _, iport, eport, life = struct.unpack_from("!BBHHHI", data)
            return MapRequest(PROTO_OF_OP[op], iport, eport, life)
        raise NatPmpError(f"unknown NAT-PMP request opcode {op} (known: 0 external address, 1 map UDP, 2 map TCP)")
    if len(data) < 8:
        raise NatPmpError(f"a NAT-PMP response has at least 8 bytes; got {len(data)}")
    _, _, result, epoch = struct.unpack_from("!BBHI", data)
    req = op - RESPONSE
    if result != SUCCESS and len(data) < {0: 12, 1: 16, 2: 16}.get(req, 8):
        return ErrorResponse(op, result, epoch)
    if req == OP_EXTERNAL_ADDRESS:
        if len(data) < 12:
            raise NatPmpError(f"a NAT-PMP external address response has 12 bytes; got {len(data)}")
        return ExternalAddressResponse(result, epoch, str(ipaddress.IPv4Address(data[8:12])))
    if req in PROTO_OF_OP:
        if len(data) < 16:
            raise NatPmpError(f"a NAT-PMP mapping response has 16 bytes; got {len(data)}")
        iport, eport, life = struct.unpack_from("!HHI", data, 8)
        return MapResponse(PROTO_OF_OP[req], result, epoch, iport, eport, life)
    return ErrorResponse(op, result, epoch)
