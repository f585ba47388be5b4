"""Lab 03 - STUN by hand: a Binding request and XOR-MAPPED-ADDRESS with nothing but ``struct``.

``check_binding_request(binding_request)``: ``binding_request(transaction_id) -> bytes`` must give
exactly the bytes of p2plab's codec (``p2plab.stun.message``) for a Binding request.

``check_parse(parse_xor_mapped_address)``: ``parse_xor_mapped_address(response) -> (ip, port)``
must decode XOR-MAPPED-ADDRESS (RFC 8489 section 14.2) from real responses: attributes in any order,
padding, a plain MAPPED-ADDRESS next to it.

``check_live(binding_request, parse_xor_mapped_address)``: Alice, behind a NAT in the simulator,
asks a live p2plab STUN server with your request and decodes its answer with your parser; the
result must be her NAT's mapping.
"""

from __future__ import annotations

import random
import struct
from typing import Any

from ..addresses import fmt
from ..errors import StunParseError
from ..stun.message import (
    BINDING,
    FINGERPRINT,
    MAGIC_COOKIE,
    MAPPED_ADDRESS,
    REQUEST,
    SOFTWARE,
    SUCCESS,
    XOR_MAPPED_ADDRESS,
    StunMessage,
)
from .common import check, endpoint, fail

LAB = "stun_by_hand"
TIDS = [bytes.fromhex("b7e7a701bc34d686fa87dfae"), bytes(range(1, 13)), b"p2plab-lab03"]


def reference_request(transaction_id: bytes) -> bytes:
    return StunMessage(BINDING, REQUEST, transaction_id).encode()


@check(LAB, "the cell 'Exercise 1: a Binding request', function binding_request")
def check_binding_request(binding_request: Any) -> str:
    for tid in TIDS:
        want = reference_request(tid)
        got = binding_request(tid)
        if isinstance(got, bytearray):
            got = bytes(got)
        if not isinstance(got, bytes):
            fail(f"binding_request returned {type(got).__name__}; return the message as bytes (struct.pack "
                 "gives bytes).")
        if got == want:
            continue
        if len(got) != 20:
            fail(f"your request is {len(got)} bytes; a Binding request with no attributes is exactly the 20-byte "
                 "header: message type (2 bytes), message length (2), magic cookie (4), transaction ID (12).")
        mtype, length, cookie = struct.unpack("!HHI", got[:8])
        if got[:2] == b"\x01\x00" or cookie == 0x42A41221:
            fail("some fields came out in the wrong byte order: the network's byte order is big-endian - start "
                 "your struct format with '!'.")
        if mtype != 0x0001:
            what = {0x0101: "a Binding success response", 0x0111: "a Binding error response",
                    0x0011: "a Binding indication"}.get(mtype, "not a Binding request")
            fail(f"message type 0x{mtype:04x} is {what}: a request has method Binding (0x001) and class bits 00, "
                 "which makes the type 0x0001.")
        if length != 0:
            fail(f"the length field says {length}; it counts only the bytes AFTER the 20-byte header (the "
                 "attributes), and this request has none.")
        if cookie != MAGIC_COOKIE:
            fail(f"bytes 4-7 hold 0x{cookie:08x}; they must be the magic cookie 0x2112A442 (that is how a STUN "
                 "message is told apart from other traffic).")
        if got[8:] != tid:
            fail(f"the last 12 bytes are {got[8:].hex()}, not the transaction ID you were given ({tid.hex()}): "
                 "the server copies it into its response, which is how you match the answer to the question.")
        fail(f"your request {got.hex()} differs from a correct one; compare field by field.")  # pragma: no cover
    try:
        StunMessage.decode(binding_request(TIDS[0]))
    except StunParseError as exc:  # pragma: no cover - equal bytes always decode
        fail(f"p2plab's decoder rejects your request: {exc}")
    return (f"byte for byte what p2plab's codec makes ({len(want)} bytes: 0001 0000 2112a442 + transaction ID), "
            "for 3 transaction IDs.")


def _response(tid: bytes, attrs: list) -> bytes:
    return StunMessage(BINDING, SUCCESS, tid, attrs).encode()


CASES = [
    ("a response with only XOR-MAPPED-ADDRESS", TIDS[0], [(XOR_MAPPED_ADDRESS, ("203.0.113.10", 40000))]),
    ("a response with SOFTWARE (6 bytes + 2 bytes padding) first", TIDS[1],
     [(SOFTWARE, "p2plab"), (XOR_MAPPED_ADDRESS, ("198.51.100.20", 61000))]),
    ("a response with a plain MAPPED-ADDRESS first", TIDS[2],
     [(MAPPED_ADDRESS, ("192.0.2.77", 3479)), (XOR_MAPPED_ADDRESS, ("192.0.2.77", 3479)), (SOFTWARE, "srv")]),
]


def _plain(value: bytes) -> tuple[str, int]:
    port = struct.unpack("!H", value[2:4])[0]
    return ".".join(str(b) for b in value[4:8]), port


@check(LAB, "the cell 'Exercise 2: decode XOR-MAPPED-ADDRESS', function parse_xor_mapped_address")
def check_parse(parse_xor_mapped_address: Any) -> str:
    for i, (what, tid, attrs) in enumerate(CASES):
        data = _response(tid, attrs)
        want = dict(attrs)[XOR_MAPPED_ADDRESS]
        try:
            raw = parse_xor_mapped_address(data)
        except NotImplementedError:
            raise
        except Exception as exc:
            if i == 1:
                fail(f"on {what} your parser raised {type(exc).__name__}: {exc}. Attributes are padded to a "
                     "multiple of 4 bytes: after a 6-byte value come 2 bytes of padding, then the next "
                     "attribute.")
            fail(f"on {what} your parser raised {type(exc).__name__}: {exc}. Walk the attributes: each is "
                 "type (2 bytes), length (2), value, padding to 4 bytes.")
        if isinstance(raw, (list, tuple)) and len(raw) == 2 and not isinstance(raw[0], str):
            fail(f"you returned the address as {type(raw[0]).__name__} ({raw[0]!r}); return it as text like "
                 "'203.0.113.10' (ipaddress.IPv4Address(four_bytes) makes that).")
        got = endpoint(raw)
        if raw is None:
            if i == 1:
                fail(f"on {what} your parser found nothing: attributes are padded to a multiple of 4 bytes, so "
                     "after a 6-byte value come 2 bytes of padding before the next attribute's type.")
            fail(f"on {what} your parser found nothing: look for the attribute whose type is 0x0020 "
                 "(XOR-MAPPED-ADDRESS), starting right after the 20-byte header.")
        if got is None:
            fail(f"on {what} you returned {raw!r}; return a tuple (ip, port), e.g. ('203.0.113.10', 40000).")
        if got == tuple(want):
            continue
        if i == 1:
            fail(f"on {what} you returned {fmt(got)}, not {fmt(want)}... did you skip the padding? Values are "
                 "padded to a multiple of 4 bytes, and the length field does not count the padding.")
        if i == 2:
            fail(f"on {what} you returned {fmt(got)}: not every address attribute is XOR-MAPPED-ADDRESS. Check "
                 "each attribute's type and decode the one whose type is 0x0020.")
        # what the usual mistakes would give
        off = data.index(struct.pack("!H", XOR_MAPPED_ADDRESS), 20)
        value = data[off + 4:off + 12]
        raw_ip, raw_port = _plain(value)
        if got == (raw_ip, raw_port):
            fail(f"you returned {fmt(got)}: that is the attribute's bytes as they are. XOR-MAPPED-ADDRESS is "
                 "XORed: the port with the top 16 bits of the magic cookie (0x2112), the IPv4 address with the "
                 "whole cookie (0x2112A442).")
        if got[0] == want[0] and got[1] == raw_port:
            fail(f"the address is right but the port {got[1]} is not: the port is XORed too, with the most "
                 "significant 16 bits of the magic cookie (0x2112).")
        if got[1] == want[1] and got[0] == raw_ip:
            fail(f"the port is right but the address {got[0]} is not: XOR the 4 address bytes with the magic "
                 "cookie 0x2112A442 (in network byte order).")
        if got[0] == want[0] and got[1] == struct.unpack("<H", struct.pack("!H", want[1]))[0]:
            fail("the port's bytes are swapped: read it big-endian ('!H').")
        fail(f"on {what} you returned {fmt(got)}, which is not the mapped address: decode step by step "
             "(20-byte header, then attributes), and compare with p2plab.stun.message.StunMessage.decode.")
    return "decodes XOR-MAPPED-ADDRESS in all 3 responses (padding, attribute order, MAPPED-ADDRESS beside it)."


def live(binding_request: Any, parse_xor_mapped_address: Any, seed: int = 3) -> dict:
    """Ask a live p2plab STUN server in the simulator with your request; decode with your parser."""
    from .. import sim, topology
    from ..nat import preset
    from ..stun.server import StunServer

    net = sim.Network.build(topology.one_nat(preset("port-restricted-cone", port_allocation="random")), seed=seed)
    server = net.run_protocol("server", StunServer(), 3478)
    sock = net.host("alice").udp_socket(5000)
    tid = random.Random(seed).getrandbits(96).to_bytes(12, "big")
    request = binding_request(tid)
    sock.sendto(request, (topology.SERVER_IP, 3478))
    net.run(until=1.0)
    mapping = [m.outside for m in net.nat("nat-a").table.mappings() if m.inside == ("192.168.1.10", 5000)]
    out = {"net": net, "request": request, "server": server.protocol, "responses": [d for _, d, _ in sock.received],
           "mapping": mapping[0] if mapping else None, "parsed": None}
    if out["responses"]:
        out["parsed"] = parse_xor_mapped_address(out["responses"][0])
    return out


@check(LAB, "the cells of Exercises 1 and 2 (binding_request and parse_xor_mapped_address)")
def check_live(binding_request: Any, parse_xor_mapped_address: Any) -> str:
    r = live(binding_request, parse_xor_mapped_address)
    if not r["responses"]:
        try:
            StunMessage.decode(r["request"])
            why = "(check the transaction ID and the message type)"
        except StunParseError as exc:
            why = f"p2plab's decoder says: {exc}"
        fail(f"the STUN server did not answer your request {bytes(r['request']).hex()}: it ignores anything that "
             f"is not a valid Binding request {why}. Make check_binding_request pass first.")
    resp = StunMessage.decode(r["responses"][0])
    got = endpoint(r["parsed"])
    if got != r["mapping"]:
        fail(f"the server answered (XOR-MAPPED-ADDRESS {fmt(resp.get(XOR_MAPPED_ADDRESS))}) but your parser "
             f"returned {r['parsed']!r}. Make check_parse pass first.")
    extra = " + FINGERPRINT" if FINGERPRINT in resp else ""
    return (f"the live p2plab STUN server answered ({len(r['responses'][0])} bytes{extra}); your parser read "
            f"{fmt(got)} - exactly the mapping Alice's NAT made for 192.168.1.10:5000.")
