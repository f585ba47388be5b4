"""Property-based fuzzing: the parsers raise StunParseError and nothing else, whatever the bytes;
the sans-I/O servers and clients never raise on junk."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2plab.errors import StunParseError
from p2plab.stun import StunClient, StunServer
from p2plab.stun import message as m
from p2plab.stun.message import ChannelData, StunMessage, parse
from p2plab.turn import TurnClient, TurnServer

SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEMPLATES = [
    StunMessage(rng=random.Random(1)).encode(fingerprint=True),
    StunMessage(m.ALLOCATE, m.REQUEST, rng=random.Random(2), attributes=[
        ("REQUESTED-TRANSPORT", 17), ("LIFETIME", 600), ("USERNAME", "alice"), ("REALM", "p2plab"),
        ("NONCE", "abc"), ("XOR-PEER-ADDRESS", ("2001:db8::1", 5)), ("ERROR-CODE", (438, "Stale Nonce")),
        ("UNKNOWN-ATTRIBUTES", (1, 2)), ("CHANNEL-NUMBER", 0x4000), ("DATA", b"xyz"),
    ]).encode(key=b"k", fingerprint=True),
    ChannelData(0x4001, b"payload").encode(pad=True),
    ChannelData(0x7ABC, b"rfc 5766 range", rfc5766=True).encode(),
    StunMessage(m.ALLOCATE, m.SUCCESS, rng=random.Random(3), attributes=[
        ("EVEN-PORT", 0x80), ("RESERVATION-TOKEN", b"12345678"), ("REQUESTED-ADDRESS-FAMILY", 2),
        ("ADDITIONAL-ADDRESS-FAMILY", 2), ("DONT-FRAGMENT", None), ("ADDRESS-ERROR-CODE", (2, 440, "no v6")),
    ]).encode(fingerprint=True),
]


def mutated() -> st.SearchStrategy[bytes]:
    def mutate(args) -> bytes:
        template, edits, cut = args
        data = bytearray(template)
        for pos, val in edits:
            if data:
                data[pos % len(data)] = val
        return bytes(data[: cut if cut is not None else len(data)])

    return st.tuples(st.sampled_from(TEMPLATES),
                     st.lists(st.tuples(st.integers(0, 500), st.integers(0, 255)), max_size=6),
                     st.one_of(st.none(), st.integers(0, 200))).map(mutate)


ANY_BYTES = st.one_of(st.binary(max_size=400), mutated())


@SETTINGS
@given(ANY_BYTES)
def test_stun_decode_only_raises_stun_parse_error(data: bytes) -> None:
    try:
        msg = StunMessage.decode(data)
    except StunParseError as exc:
        assert "offset" in str(exc) or "bytes" in str(exc)
        return
    # whatever decodes also survives the verification helpers and re-encoding
    msg.check_fingerprint()
    msg.check_integrity(b"k")
    repr(msg)
    StunMessage.decode(msg.encode())


@SETTINGS
@given(ANY_BYTES)
def test_channel_data_and_parse_only_raise_stun_parse_error(data: bytes) -> None:
    for fn in (ChannelData.decode, parse, lambda d: ChannelData.decode(d, rfc5766=True)):
        try:
            fn(data)
        except StunParseError:
            pass


ALLOCATE_OPTIONS = st.lists(st.sampled_from([
    ("EVEN-PORT", 0x80), ("EVEN-PORT", 0), ("RESERVATION-TOKEN", b"12345678"), ("REQUESTED-ADDRESS-FAMILY", 1),
    ("REQUESTED-ADDRESS-FAMILY", 2), ("REQUESTED-ADDRESS-FAMILY", 9), ("ADDITIONAL-ADDRESS-FAMILY", 1),
    ("ADDITIONAL-ADDRESS-FAMILY", 2), ("DONT-FRAGMENT", None), ("LIFETIME", 0), ("LIFETIME", 99999),
]), max_size=5)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(ALLOCATE_OPTIONS, st.integers(0, 3), st.booleans()), min_size=1, max_size=6),
       st.booleans())
def test_authenticated_allocates_with_any_option_mix_get_an_answer(requests, dual: bool) -> None:
    """Any mix of EVEN-PORT, RESERVATION-TOKEN, the family attributes, DONT-FRAGMENT: success or a
    listed RFC 8656 error, every time, and the server's bookkeeping stays consistent."""
    key = m.long_term_key("alice", "p2plab", "secret")
    turn = TurnServer({"alice": "secret"}, rng=random.Random(0), relay_ip6="2001:db8::1" if dual else None,
                      relay_ports=(50000, 50009))
    turn.start(0.0, ("192.0.2.1", 3478))
    nonce = turn.make_nonce()
    tokens: list[bytes] = []
    for i, (options, client, use_token) in enumerate(requests):
        attrs = [("REQUESTED-TRANSPORT", 17)] + [
            (t, tokens[-1] if t == "RESERVATION-TOKEN" and use_token and tokens else v) for t, v in options]
        req = StunMessage(m.ALLOCATE, m.REQUEST, rng=random.Random(i), attributes=attrs + [
            ("USERNAME", "alice"), ("REALM", "p2plab"), ("NONCE", nonce)])
        turn.datagram_received(req.encode(key=key, fingerprint=True), ("10.0.0.2", 5000 + client), i * 0.1)
        (out,) = turn.datagrams_to_send()
        resp = StunMessage.decode(out[0])
        assert resp.check_integrity(key)
        if resp.cls == m.ERROR:
            assert resp.error[0] in (400, 437, 440, 486, 508), resp
            assert len(resp.error[1]) < 128  # RFC 8489 section 14.8
        else:
            tokens.extend(resp.get_all("RESERVATION-TOKEN"))
    relays = [r for a in turn.allocations.values() for r in a.relays]
    reserved = [r.relay for r in turn.reservations.values()]
    assert len(set(relays + reserved)) == len(relays) + len(reserved)  # no port handed out twice
    assert set(turn.by_relay) == set(relays) and turn.local_addresses() == set(relays + reserved)


@SETTINGS
@given(st.lists(ANY_BYTES, min_size=1, max_size=8))
def test_servers_and_clients_never_raise(datagrams: list[bytes]) -> None:
    srv, turn = StunServer(alt_ip="192.0.2.2", alt_port=3479), TurnServer({"alice": "secret"}, rng=random.Random(0))
    cli, tcli = StunClient(("192.0.2.1", 3478)), TurnClient(("192.0.2.1", 3478), "alice", "secret")
    for proto in (srv, turn, cli, tcli):
        proto.start(0.0, ("192.0.2.1", 3478) if proto in (srv, turn) else ("10.0.0.2", 5000))
    for i, data in enumerate(datagrams):
        for proto in (srv, turn, cli, tcli):
            proto.datagram_received(data, ("192.0.2.1", 3478) if proto in (cli, tcli) else ("10.0.0.2", 5000), i)
        turn.datagram_received_on(data, ("203.0.113.1", 1), ("192.0.2.1", 50000), i)
    for proto in (srv, turn):
        for out in proto.datagrams_to_send():
            assert len(out[0]) <= 3 * max(len(d) for d in datagrams) + 200
