"""The STUN/TURN codec: RFC 5769 test vectors, round trips, and precise parse errors."""

from __future__ import annotations

import random
import struct

import pytest

from p2plab.errors import StunParseError
from p2plab.stun import message as m
from p2plab.stun.message import ChannelData, StunMessage, is_channel_data, is_stun, parse


def hx(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 5769 sections 2.1-2.3 (the SOFTWARE/USERNAME padding is 0x20 in the RFC, on purpose)
RFC5769_REQUEST = hx("""
00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
80 28 00 04 e5 7a 3b cf""")
RFC5769_IPV4 = hx("""
01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
00 20 00 08 00 01 a1 47 e1 12 a6 43
00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
80 28 00 04 c0 7d 4c 96""")
RFC5769_IPV6 = hx("""
01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
80 28 00 04 c8 fb 0b 4c""")
PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"


def test_rfc5769_request() -> None:
    msg = StunMessage.decode(RFC5769_REQUEST)
    assert (msg.method_name, msg.class_name) == ("Binding", "request")
    assert msg.get("SOFTWARE") == "STUN test client"
    assert msg.get("USERNAME") == "evtj:h6vY"
    assert msg.get("PRIORITY") == 0x6E0001FF
    assert msg.get("ICE-CONTROLLED") == 0x932FF9B151263B36
    assert msg.check_integrity(m.short_term_key(PASSWORD))
    assert not msg.check_integrity(b"wrong")
    assert msg.check_fingerprint()


@pytest.mark.parametrize("raw,addr", [
    (RFC5769_IPV4, ("192.0.2.1", 32853)),
    (RFC5769_IPV6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
])
def test_rfc5769_responses(raw: bytes, addr: tuple) -> None:
    msg = StunMessage.decode(raw)
    assert msg.cls == m.SUCCESS
    assert msg.get("XOR-MAPPED-ADDRESS") == addr
    assert msg.check_integrity(m.short_term_key(PASSWORD)) and msg.check_fingerprint()
    # rebuilt from its parts it is the same message (padding aside: the RFC pads with spaces)
    again = StunMessage(msg.method, msg.cls, msg.transaction_id,
                        [(t, v) for t, v in msg.attributes if t not in (m.MESSAGE_INTEGRITY, m.FINGERPRINT)])
    rebuilt = StunMessage.decode(again.encode(m.short_term_key(PASSWORD), fingerprint=True))
    assert rebuilt.get("XOR-MAPPED-ADDRESS") == addr and rebuilt.check_integrity(m.short_term_key(PASSWORD))


def test_long_term_key() -> None:
    assert m.long_term_key("user", "realm", "pass") == __import__("hashlib").md5(b"user:realm:pass").digest()


EVERY_ATTRIBUTE = [
    ("MAPPED-ADDRESS", ("192.0.2.1", 1)), ("XOR-MAPPED-ADDRESS", ("2001:db8::5", 65535)),
    ("USERNAME", "alice"), ("ERROR-CODE", (438, "Stale Nonce")), ("UNKNOWN-ATTRIBUTES", (0x1234, 0x0018)),
    ("REALM", "p2plab"), ("NONCE", "abc"), ("SOFTWARE", "p2plab ünïcode"), ("ALTERNATE-SERVER", ("198.51.100.2", 3478)),
    ("CHANNEL-NUMBER", 0x4001), ("LIFETIME", 600), ("XOR-PEER-ADDRESS", ("203.0.113.9", 7000)),
    ("DATA", b"\x00\x01payload"), ("XOR-RELAYED-ADDRESS", ("192.0.2.50", 50000)), ("REQUESTED-TRANSPORT", 17),
    ("DONT-FRAGMENT", None), ("OTHER-ADDRESS", ("127.0.0.2", 3479)), ("RESPONSE-ORIGIN", ("127.0.0.1", 3478)),
    ("CHANGE-REQUEST", 0x06), ("PRIORITY", 12345), ("USE-CANDIDATE", None), ("ICE-CONTROLLED", 2**63 + 5),
    ("ICE-CONTROLLING", 7), ("REQUESTED-ADDRESS-FAMILY", 1), ("EVEN-PORT", 0x80),
]


@pytest.mark.parametrize("method", list(m.METHODS))
@pytest.mark.parametrize("cls", list(m.CLASSES))
def test_type_packing(method: int, cls: int) -> None:
    assert m.unpack_type(m.pack_type(method, cls)) == (method, cls)


def test_round_trip_every_attribute() -> None:
    msg = StunMessage(m.ALLOCATE, m.SUCCESS, rng=random.Random(7), attributes=EVERY_ATTRIBUTE + [(0x7FFF, b"xyz")])
    raw = msg.encode(key=m.long_term_key("alice", "p2plab", "secret"), fingerprint=True)
    assert is_stun(raw) and len(raw) % 4 == 0
    back = StunMessage.decode(raw)
    for name, value in EVERY_ATTRIBUTE:
        assert back.get(name) == value, name
    assert back.get(0x7FFF) == b"xyz" and back.unknown_required() == [0x7FFF]
    assert back.check_integrity(m.long_term_key("alice", "p2plab", "secret"))
    assert back.check_fingerprint()
    assert back.transaction_id == msg.transaction_id


def test_transaction_ids() -> None:
    a = StunMessage(rng=random.Random(1)).transaction_id
    assert a == StunMessage(rng=random.Random(1)).transaction_id and len(a) == 12
    assert StunMessage().transaction_id != StunMessage().transaction_id


def test_attributes_after_integrity_are_ignored() -> None:
    raw = StunMessage(attributes=[("USERNAME", "a")]).encode(key=b"k")
    # append a SOFTWARE after MESSAGE-INTEGRITY: ignored by the parser, integrity still checks
    extra = struct.pack("!HH", m.SOFTWARE, 4) + b"evil"
    tampered = raw[:2] + struct.pack("!H", len(raw) - 20 + 8) + raw[4:] + extra
    msg = StunMessage.decode(tampered)
    assert msg.get("SOFTWARE") is None and msg.check_integrity(b"k")


def test_flipped_bit_breaks_integrity_and_fingerprint() -> None:
    raw = bytearray(StunMessage(attributes=[("USERNAME", "alice")]).encode(key=b"k", fingerprint=True))
    raw[24] ^= 1
    msg = StunMessage.decode(bytes(raw))
    assert not msg.check_integrity(b"k") and not msg.check_fingerprint()


@pytest.mark.parametrize("data,needle", [
    (b"", "truncated header"),
    (b"\x00\x01\x00\x00\x21\x12", "truncated header"),
    (b"\xc0\x01\x00\x00" + struct.pack("!I", m.MAGIC_COOKIE) + bytes(12), "first two bits"),
    (b"\x00\x01\x00\x00\xde\xad\xbe\xef" + bytes(12), "bad magic cookie 0xdeadbeef at offset 4"),
    (b"\x00\x01\x00\x03" + struct.pack("!I", m.MAGIC_COOKIE) + bytes(15), "not a multiple of 4"),
    (b"\x00\x01\x00\x08" + struct.pack("!I", m.MAGIC_COOKIE) + bytes(12), "does not match"),
    (b"\x00\x01\x00\x04" + struct.pack("!I", m.MAGIC_COOKIE) + bytes(12) + b"\x00\x06\x00\x10",
     "overruns the message"),
    (b"\x00\x01\x00\x0c" + struct.pack("!I", m.MAGIC_COOKIE) + bytes(12) + b"\x00\x20\x00\x08\x00\x07\x00\x01" + bytes(4),
     "bad address family 0x07 in XOR-MAPPED-ADDRESS at offset 25"),
    (b"\x00\x01\x00\x08" + struct.pack("!I", m.MAGIC_COOKIE) + bytes(12) + b"\x00\x0d\x00\x02\x00\x01\x00\x00",
     "LIFETIME at offset 24"),
    (b"\x00\x01\x00\x08" + struct.pack("!I", m.MAGIC_COOKIE) + bytes(12) + b"\x00\x06\x00\x02\xff\xfe\x00\x00",
     "not valid UTF-8"),
])
def test_parse_errors_say_what_and_where(data: bytes, needle: str) -> None:
    with pytest.raises(StunParseError, match=needle):
        StunMessage.decode(data)


def test_fingerprint_must_be_last() -> None:
    raw = StunMessage().encode(fingerprint=True)
    extra = struct.pack("!HH", m.SOFTWARE, 4) + b"late"
    bad = raw[:2] + struct.pack("!H", len(raw) - 20 + 8) + raw[4:] + extra
    with pytest.raises(StunParseError, match="follows FINGERPRINT"):
        StunMessage.decode(bad)


def test_channel_data() -> None:
    frame = ChannelData(0x4000, b"hello")
    assert frame.encode() == b"\x40\x00\x00\x05hello"
    assert frame.encode(pad=True) == b"\x40\x00\x00\x05hello\0\0\0"
    assert ChannelData.decode(frame.encode(pad=True)) == frame
    assert parse(frame.encode()) == frame and is_channel_data(frame.encode())
    for bad, needle in [(b"\x40", "truncated"), (b"\x50\x00\x00\x00", "outside 0x4000-0x4FFF"),
                        (b"\x40\x00\x00\x09abc", "overruns"), (b"\x40\x00\x00\x00abcd", "only padding")]:
        with pytest.raises(StunParseError, match=needle):
            ChannelData.decode(bad)
    with pytest.raises(StunParseError):
        ChannelData(0x3FFF, b"")


def test_is_stun_quick_check() -> None:
    assert is_stun(StunMessage().encode())
    assert not is_stun(b"GET / HTTP/1.1\r\n\r\n....")
    assert not is_stun(ChannelData(0x4001, b"x" * 20).encode())


def test_error_response_helpers() -> None:
    req = StunMessage(m.ALLOCATE, m.REQUEST)
    err = StunMessage.decode(req.error_response(401, attributes=[("REALM", "r")]).encode())
    assert err.error == (401, "Unauthenticated") and err.get("REALM") == "r"
    assert err.transaction_id == req.transaction_id and "Allocate" in repr(err)


def test_decode_speed() -> None:
    raw = StunMessage(attributes=EVERY_ATTRIBUTE[:6]).encode(fingerprint=True)
    import time

    t = time.perf_counter()
    for _ in range(5000):
        StunMessage.decode(raw)
    per = (time.perf_counter() - t) / 5000
    assert per < 200e-6, f"decoding takes {per * 1e6:.0f} us per message"
