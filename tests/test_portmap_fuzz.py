"""Fuzzing the PCP and NAT-PMP parsers, server and client: junk raises PcpError/NatPmpError only,
and the sans-I/O server and clients never raise, whatever arrives."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2plab.portmap import PortMapClient, PortMapServer, natpmp, pcp

SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NONCE = bytes(12)
TEMPLATES = [
    pcp.Request(pcp.OP_MAP, 7200, "192.168.1.10", pcp.MapData(NONCE, 17, 5000), (pcp.Option(130, b"ab"),)).encode(),
    pcp.Response(pcp.OP_MAP, 0, 60, 3, pcp.MapData(NONCE, 17, 5000, 5000, "203.0.113.10")).encode(),
    pcp.Request(pcp.OP_ANNOUNCE, 0, "192.168.1.10").encode(),
    natpmp.MapRequest(17, 5000, 0, 60).encode(),
    natpmp.MapResponse(17, 0, 1, 5000, 5000, 60).encode(),
    natpmp.ExternalAddressResponse(0, 1, "203.0.113.10").encode(),
]


def mutated() -> st.SearchStrategy[bytes]:
    def mutate(args) -> bytes:
        template, edits, cut = args
        data = bytearray(template)
        for pos, val in edits:
            data[pos % len(data)] = val
        return bytes(data[: cut if cut is not None else len(data)])

    return st.tuples(st.sampled_from(TEMPLATES), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
                     st.one_of(st.none(), st.integers(0, 80))).map(mutate)


ANY = st.one_of(st.binary(max_size=1200), mutated())


@SETTINGS
@given(ANY)
def test_decoders_raise_only_their_own_errors(data: bytes) -> None:
    try:
        msg = pcp.decode(data)
    except pcp.PcpError as exc:
        assert str(exc) and exc.result in pcp.RESULTS
    else:
        assert pcp.decode(msg.encode()) == msg or msg.opaque  # round trip (opaque bodies keep their bytes)
    try:
        natpmp.decode(data)
    except natpmp.NatPmpError as exc:
        assert str(exc)


@SETTINGS
@given(st.lists(ANY, min_size=1, max_size=8))
def test_server_and_clients_never_raise(datagrams: list[bytes]) -> None:
    srv = PortMapServer("203.0.113.10", "192.168.1.0/24")
    clients = [PortMapClient("pcp", ("192.168.1.1", 5351), 5000, nonce=NONCE),
               PortMapClient("natpmp", ("192.168.1.1", 5351), 5000)]
    srv.start(0.0)
    for c in clients:
        c.start(0.0, ("192.168.1.10", 40000))
    for i, data in enumerate(datagrams):
        srv.datagram_received(data, ("192.168.1.10", 40000), float(i))
        for c in clients:
            c.datagram_received(data, ("192.168.1.1", 5351), float(i))
        srv.handle_timer(float(i))
    for out, _addr in srv.datagrams_to_send():
        assert len(out) <= pcp.MAX_SIZE and len(out) % 4 == 0 or out[0] == natpmp.VERSION
