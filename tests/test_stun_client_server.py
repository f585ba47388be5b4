"""Sans-I/O STUN client, server and RFC 5780 discovery on a fake clock (no sockets)."""

from __future__ import annotations

import random

import pytest

from p2plab.nat import AD, APD, EI
from p2plab.stun import StunClient, StunServer
from p2plab.stun import message as m
from p2plab.stun.discovery import NatDiscovery
from p2plab.stun.message import StunMessage

SERVER = ("192.0.2.1", 3478)


def test_retransmission_schedule_rfc8489() -> None:
    """RFC 8489 6.2.1: sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; gives up at 39.5 s."""
    c = StunClient(SERVER, rng=random.Random(1))
    c.start(0.0, ("10.0.0.2", 5000))
    sends = [0.0] if c.datagrams_to_send() else []
    timeouts = []
    while (t := c.next_timer()) is not None:
        c.handle_timer(t)
        if c.datagrams_to_send():
            sends.append(t)
        timeouts += [(ev.kind, ev.time) for ev in c.events()]
    assert sends == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert timeouts == [("timeout", 39.5)]


def test_client_server_exchange_and_stray_responses() -> None:
    c = StunClient(SERVER, rng=random.Random(2))
    s = StunServer()
    s.start(0.0, SERVER)
    c.start(0.0, ("10.0.0.2", 5000))
    (req, _), = c.datagrams_to_send()
    # a response to some other transaction is ignored
    stray = StunMessage(m.BINDING, m.SUCCESS, attributes=[("XOR-MAPPED-ADDRESS", ("6.6.6.6", 6))]).encode()
    c.datagram_received(stray, SERVER, 0.05)
    assert c.events() == []
    s.datagram_received(req, ("203.0.113.7", 40000), 0.1)
    (resp, dest), = s.datagrams_to_send()
    assert dest == ("203.0.113.7", 40000)
    c.datagram_received(resp, SERVER, 0.2)
    ev, = c.events()
    assert ev.kind == "mapped" and ev.address == ("203.0.113.7", 40000)
    assert c.next_timer() is None  # retransmissions stopped
    # a duplicate (retransmitted) response changes nothing
    c.datagram_received(resp, SERVER, 0.3)
    assert c.events() == []


def test_server_response_content() -> None:
    s = StunServer(software="p2plab-test")
    s.start(0.0, SERVER)
    req = StunMessage(rng=random.Random(3), attributes=[("SOFTWARE", "a client with a long name")]).encode(
        fingerprint=True)
    s.datagram_received(req, ("198.51.100.4", 1234), 0.0)
    (resp, _), = s.datagrams_to_send()
    msg = StunMessage.decode(resp)
    assert msg.get("XOR-MAPPED-ADDRESS") == ("198.51.100.4", 1234)
    assert msg.get("MAPPED-ADDRESS") == ("198.51.100.4", 1234)
    assert msg.get("SOFTWARE") == "p2plab-test" and msg.check_fingerprint()


@pytest.mark.parametrize("req", [
    StunMessage(rng=random.Random(4)).encode(),
    StunMessage(rng=random.Random(4)).encode(fingerprint=True),
    StunMessage(rng=random.Random(4), attributes=[("CHANGE-REQUEST", 0)]).encode(),
    StunMessage(rng=random.Random(4), attributes=[(0x7001, b"?")]).encode(),
    StunMessage(m.ALLOCATE, m.REQUEST, rng=random.Random(4)).encode(),
    StunMessage(rng=random.Random(4), attributes=[("XOR-MAPPED-ADDRESS", ("2001:db8::1", 1))]).encode(),
])
@pytest.mark.parametrize("rfc5780", [False, True])
def test_no_amplification(req: bytes, rfc5780: bool) -> None:
    """Whatever the request, the answer is at most 3 times its size (no reflection attacks)."""
    s = StunServer(alt_ip="192.0.2.2", alt_port=3479) if rfc5780 else StunServer()
    s.start(0.0, SERVER)
    s.datagram_received(req, ("2001:db8::99", 5555), 0.0)
    out = s.datagrams_to_send()
    assert len(out) == 1
    ratio = len(out[0][0]) / len(req)
    assert ratio <= 3.0, ratio


def test_rfc5780_change_request_sends_from_other_address() -> None:
    s = StunServer(alt_ip="192.0.2.2", alt_port=3479)
    s.start(0.0, SERVER)
    assert s.local_addresses() == {("192.0.2.1", 3479), ("192.0.2.2", 3478), ("192.0.2.2", 3479)}
    client = ("203.0.113.7", 4000)
    for flags, via in [(None, None), (0x06, ("192.0.2.2", 3479)), (0x02, ("192.0.2.1", 3479)),
                       (0x04, ("192.0.2.2", 3478))]:
        attrs = [] if flags is None else [("CHANGE-REQUEST", flags)]
        s.datagram_received(StunMessage(attributes=attrs).encode(fingerprint=True), client, 0.0)
        (out,) = s.datagrams_to_send()
        data, dest = out  # unpacks like any outbox entry
        assert dest == client and out.via == via
        msg = StunMessage.decode(data)
        assert msg.get("OTHER-ADDRESS") == ("192.0.2.2", 3479)
        assert msg.get("RESPONSE-ORIGIN") == (via or SERVER)
    # a request arriving on the alternate address: OTHER-ADDRESS is the primary one
    s.datagram_received_on(StunMessage().encode(fingerprint=True), client, ("192.0.2.2", 3479), 0.0)
    (out,) = s.datagrams_to_send()
    assert out.via == ("192.0.2.2", 3479)
    assert StunMessage.decode(out[0]).get("OTHER-ADDRESS") == SERVER


def test_change_request_without_rfc5780_is_420() -> None:
    s = StunServer()
    s.start(0.0, SERVER)
    s.datagram_received(StunMessage(attributes=[("CHANGE-REQUEST", 6)]).encode(), ("203.0.113.7", 1), 0.0)
    (data, _), = s.datagrams_to_send()
    msg = StunMessage.decode(data)
    assert msg.error[0] == 420 and msg.get("UNKNOWN-ATTRIBUTES") == (m.CHANGE_REQUEST,)


def test_bad_packets_are_counted_not_raised(caplog) -> None:
    s = StunServer()
    s.start(0.0, SERVER)
    for junk in [b"", b"hello", bytes(20), StunMessage().encode()[:-1] + b"\x00\x00",
                 StunMessage(m.BINDING, m.SUCCESS).encode()]:
        s.datagram_received(junk, ("203.0.113.7", 1), 0.0)
    assert s.datagrams_to_send() == []
    assert s.stats["bad"] == 4 and s.stats["ignored"] == 1
    assert "Traceback" not in caplog.text


# -- RFC 5780 discovery through a fake NAT --------------------------------------------------------
class FakeNat:
    """Just enough NAT for discovery: one public IP, RFC 4787 mapping and filtering."""

    def __init__(self, mapping: str, filtering: str, public_ip: str = "198.51.100.10") -> None:
        self.mapping, self.filtering, self.ip = mapping, filtering, public_ip
        self.ports: dict[tuple, int] = {}
        self.allowed: dict[int, set] = {}
        self.next_port = 20000

    def out(self, src: tuple, dst: tuple) -> tuple:
        key = {EI: (src,), AD: (src, dst[0]), APD: (src, dst)}[self.mapping]
        if key not in self.ports:
            self.ports[key] = self.next_port
            self.next_port += 1
        port = self.ports[key]
        self.allowed.setdefault(port, set()).add({EI: None, AD: dst[0], APD: dst}[self.filtering])
        return self.ip, port

    def inbound_ok(self, port: int, src: tuple) -> bool:
        allowed = self.allowed.get(port, set())
        return {EI: None, AD: src[0], APD: src}[self.filtering] in allowed


def run_discovery(nat: FakeNat | None) -> NatDiscovery:
    local = ("10.0.0.2", 5000)
    server = StunServer(alt_ip="192.0.2.2", alt_port=3479)
    server.start(0.0, SERVER)
    d = NatDiscovery(SERVER, rng=random.Random(5))
    d.start(0.0, local)
    now = 0.0
    for _ in range(200):
        for data, dst in d.datagrams_to_send():
            public = nat.out(local, dst) if nat else local
            server.datagram_received_on(data, public, dst, now)
        for out in server.datagrams_to_send():
            data, dst = out
            src = out.via or SERVER
            if nat is None or nat.inbound_ok(dst[1], src):
                d.datagram_received(data, src, now)
        if d.step == "done":
            break
        now = d.next_timer()
        d.handle_timer(now)
    return d


@pytest.mark.parametrize("mapping", [EI, AD, APD])
@pytest.mark.parametrize("filtering", [EI, AD, APD])
def test_discovery_finds_every_behaviour(mapping: str, filtering: str) -> None:
    d = run_discovery(FakeNat(mapping, filtering))
    ev = [e for e in d.events() if e.kind == "nat-type"][0]
    assert (ev.mapping, ev.filtering, ev.nat) == (mapping, filtering, True)
    from p2plab.nat import classic_name

    assert ev.classic == classic_name(mapping, filtering)


def test_discovery_without_nat() -> None:
    d = run_discovery(None)
    ev = [e for e in d.events() if e.kind == "nat-type"][0]
    assert ev.nat is False and ev.filtering == EI


def test_discovery_needs_rfc5780_server() -> None:
    server = StunServer()
    server.start(0.0, SERVER)
    d = NatDiscovery(SERVER)
    d.start(0.0, ("10.0.0.2", 5000))
    for data, _ in d.datagrams_to_send():
        server.datagram_received(data, ("10.0.0.2", 5000), 0.0)
    for data, _ in server.datagrams_to_send():
        d.datagram_received(data, SERVER, 0.0)
    (ev,) = [e for e in d.events() if e.kind == "failed"]
    assert "OTHER-ADDRESS" in ev.reason
