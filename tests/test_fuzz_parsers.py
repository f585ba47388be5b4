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
    for fn in (ChannelData.decode, parse):
        try:
            fn(data)
        except StunParseError:
            pass


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
