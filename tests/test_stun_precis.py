"""SASLprep (RFC 4013) and OpaqueString (RFC 8265) for STUN long-term credentials, with RFC 5769's
long-term test vector and the examples of RFC 4013 section 3."""

from __future__ import annotations

import random

import pytest

from p2plab.errors import ConfigurationError
from p2plab.stun import message as m
from p2plab.stun.message import StunMessage, long_term_key
from p2plab.stun.precis import opaque_string, saslprep
from p2plab.turn import TurnClient, TurnServer


def hx(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 5769 section 2.4: Binding request with long-term authentication. Username "マトリックス"
# (unchanged by SASLprep), password "The<U+00AD>M<U+00AA>tr<U+2168>" = "TheMatrIX" after SASLprep,
# nonce "f//499k954d6OL34oL9FSTvy64sA", realm "example.org".
RFC5769_LONG_TERM = hx("""
00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66""")
USERNAME = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9"
RAW_PASSWORD = "The\u00adM\u00aatr\u2168"


def test_rfc5769_long_term_vector() -> None:
    msg = StunMessage.decode(RFC5769_LONG_TERM)
    assert msg.get("USERNAME") == USERNAME and msg.get("REALM") == "example.org"
    assert msg.get("NONCE") == "f//499k954d6OL34oL9FSTvy64sA"
    # SASLprep of the raw password, as the RFC computed it
    assert msg.check_integrity(long_term_key(USERNAME, "example.org", RAW_PASSWORD, prep="saslprep"))
    # OpaqueString (RFC 8489) of the prepared password gives the same key
    key = long_term_key(USERNAME, "example.org", "TheMatrIX")
    assert msg.check_integrity(key)
    # hashing the raw password unprepared does not verify (the preparation matters)
    assert not msg.check_integrity(long_term_key(USERNAME, "example.org", RAW_PASSWORD, prep=None))
    # re-encoded with the same attributes and key: byte-identical
    again = StunMessage(m.BINDING, m.REQUEST, msg.transaction_id, [
        ("USERNAME", USERNAME), ("NONCE", msg.get("NONCE")), ("REALM", "example.org")])
    assert again.encode(key=key) == RFC5769_LONG_TERM


def test_opaque_string_refuses_the_soft_hyphen_with_a_clear_message() -> None:
    with pytest.raises(ConfigurationError, match=r"U\+00AD SOFT HYPHEN at position 3.*remove"):
        long_term_key(USERNAME, "example.org", RAW_PASSWORD)


@pytest.mark.parametrize("raw, prepared", [
    ("secret", "secret"),
    ("Secret", "Secret"),                     # no case mapping
    ("pass\u00a0word", "pass word"),          # non-ASCII space -> U+0020
    ("pass\u3000word", "pass word"),          # ideographic space too
    ("cafe\u0301", "caf\u00e9"),              # NFC
    ("\uff21", "\uff21"),                     # no width mapping (fullwidth A stays)
    ("\u2168", "\u2168"),                     # no NFKC: Roman numeral nine stays
    ("\u30de\u30c8\u30ea", "\u30de\u30c8\u30ea"),
])
def test_opaque_string(raw: str, prepared: str) -> None:
    assert opaque_string(raw) == prepared


@pytest.mark.parametrize("bad, needle", [
    ("", "empty"), ("bell\x07", "U+0007"), ("tab\there", "U+0009"), ("zw\u200dj", "U+200D"),
    ("pua\ue000", "U+E000"), ("line\u2028sep", "U+2028"), ("vs\ufe0f", "U+FE0F"), ("\u1100jamo", "U+1100"),
])
def test_opaque_string_rejects_disallowed_characters(bad: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle.replace("+", r"\+")):
        opaque_string(bad)


@pytest.mark.parametrize("raw, prepared", [  # RFC 4013 section 3
    ("I\u00adX", "IX"), ("user", "user"), ("USER", "USER"), ("\u00aa", "a"), ("\u2168", "IX"),
])
def test_saslprep_rfc4013_examples(raw: str, prepared: str) -> None:
    assert saslprep(raw) == prepared


@pytest.mark.parametrize("bad, needle", [("\x07", "control"), ("\u0627\u0031", "right-to-left")])
def test_saslprep_rfc4013_errors(bad: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        saslprep(bad)


def test_server_and_client_reject_unpreparable_credentials_up_front() -> None:
    with pytest.raises(ConfigurationError, match=r"TURN user 'eve'.*U\+0007"):
        TurnServer({"eve": "bad\x07"})
    with pytest.raises(ConfigurationError, match=r"U\+00AD"):
        TurnClient(("192.0.2.1", 3478), "alice", RAW_PASSWORD)


def test_differently_typed_unicode_credentials_still_authenticate() -> None:
    """The user's name and password typed in NFD with a no-break space on the client, stored in
    NFC with a plain space on the server: preparation makes them equal."""
    S, C = ("198.51.100.1", 3478), ("10.0.0.2", 5000)
    s = TurnServer({"jos\u00e9": "mot de passe"}, rng=random.Random(1))
    s.start(0.0, S)
    c = TurnClient(S, "jose\u0301", "mot\u00a0de passe", rng=random.Random(2))
    c.start(0.0, C)
    for _ in range(4):
        for data, _ in c.datagrams_to_send():
            s.datagram_received(data, C, 0.0)
        for data, _ in s.datagrams_to_send():
            c.datagram_received(data, S, 0.0)
    assert [e.kind for e in c.events()] == ["allocated"]
