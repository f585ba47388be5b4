"""The sans-I/O ICE agent: what its checks carry, and role conflicts (RFC 8445 7.2.2, 7.3.1.1)."""

from __future__ import annotations

import random

from p2plab.ice import IceAgent, candidate_priority
from p2plab.stun.message import (
    BINDING,
    ERROR,
    ICE_CONTROLLED,
    ICE_CONTROLLING,
    PRIORITY,
    REQUEST,
    SUCCESS,
    USE_CANDIDATE,
    USERNAME,
    XOR_MAPPED_ADDRESS,
    StunMessage,
    short_term_key,
)

A_ADDR, B_ADDR = ("203.0.113.7", 5000), ("198.51.100.9", 5000)


def _pair(a_controlling=True, b_controlling=False, tie=(1, 2)):
    """Two host-only agents on public addresses, candidates exchanged, nothing delivered yet."""
    a = IceAgent("alice", controlling=a_controlling, rng=random.Random(1), tie_breaker=tie[0])
    b = IceAgent("bob", controlling=b_controlling, rng=random.Random(2), tie_breaker=tie[1])
    a.start(0.0, A_ADDR)
    b.start(0.0, B_ADDR)
    pa, pb = a.local_parameters(), b.local_parameters()
    a.set_remote(pb["ufrag"], pb["password"], pb["candidates"], now=0.0)
    b.set_remote(pa["ufrag"], pa["password"], pa["candidates"], now=0.0)
    return a, b


def _wire(a, b, until=5.0):
    """A tiny driver: delivers every datagram after 10 ms and fires timers, until both are done."""
    queue = []  # (time, to_agent, data, src)
    now = 0.0
    addr = {id(a): A_ADDR, id(b): B_ADDR}
    while now < until and not (a.done and b.done):
        for me, other in ((a, b), (b, a)):
            for data, dst in me.datagrams_to_send():
                assert tuple(dst) == addr[id(other)]
                queue.append((now + 0.010, other, data, addr[id(me)]))
        times = [t for t in (a.next_timer(), b.next_timer()) if t is not None] + [q[0] for q in queue]
        if not times:
            break
        now = min(times)
        for item in [q for q in queue if q[0] <= now]:
            queue.remove(item)
            item[1].datagram_received(item[2], item[3], now)
        for ag in (a, b):
            if ag.next_timer() is not None and ag.next_timer() <= now:
                ag.handle_timer(now)
    return now


def test_a_check_carries_username_priority_role_integrity_and_fingerprint():
    a, b = _pair()
    a.handle_timer(a.next_timer())
    out = a.datagrams_to_send()
    assert len(out) == 1
    data, dst = out[0]
    assert dst == B_ADDR
    msg = StunMessage.decode(data)
    assert (msg.method, msg.cls) == (BINDING, REQUEST)
    assert msg.get(USERNAME) == f"{b.ufrag}:{a.ufrag}"
    assert msg.get(PRIORITY) == candidate_priority("prflx")
    assert msg.get(ICE_CONTROLLING) == a.tie_breaker and ICE_CONTROLLED not in msg
    assert msg.has_integrity and msg.check_integrity(short_term_key(b.password))  # keyed with the PEER's password
    assert not msg.check_integrity(short_term_key(a.password))
    assert msg.has_fingerprint and msg.check_fingerprint()


def test_the_answer_carries_the_mapped_address_and_the_answerers_integrity():
    a, b = _pair()
    a.handle_timer(a.next_timer())
    (data, _), = a.datagrams_to_send()
    b.datagram_received(data, ("203.0.113.99", 40000), 0.01)  # as if a NAT had rewritten the source
    resp = StunMessage.decode(b.datagrams_to_send()[0][0])
    assert resp.cls == SUCCESS
    assert resp.get(XOR_MAPPED_ADDRESS) == ("203.0.113.99", 40000)
    assert resp.check_integrity(short_term_key(b.password)) and resp.check_fingerprint()
    assert any(c.type == "prflx" for c in b.remote_candidates)  # an address bob was never told about


def test_a_check_with_a_wrong_password_gets_401():
    a, b = _pair()
    a.remote_password = "not-the-password"
    a.handle_timer(a.next_timer())
    (data, _), = a.datagrams_to_send()
    b.datagram_received(data, A_ADDR, 0.01)
    resp = StunMessage.decode(b.datagrams_to_send()[0][0])
    assert resp.cls == ERROR and resp.error[0] == 401


def test_two_host_agents_nominate_with_use_candidate():
    a, b = _pair()
    _wire(a, b)
    assert a.state == b.state == "completed"
    assert a.selected.local.addr == A_ADDR and a.selected.remote.addr == B_ADDR
    assert b.selected.nominated and b.selected.local.addr == B_ADDR


def test_role_conflict_the_larger_tie_breaker_stays_controlling_and_the_other_gets_487():
    a, b = _pair(a_controlling=True, b_controlling=True, tie=(5, 10))
    a.handle_timer(a.next_timer())
    (data, _), = a.datagrams_to_send()
    b.datagram_received(data, A_ADDR, 0.01)  # bob is controlling too, and 10 >= 5
    raw = b.datagrams_to_send()[0][0]
    resp = StunMessage.decode(raw)
    assert resp.cls == ERROR and resp.error[0] == 487
    assert resp.check_integrity(short_term_key(b.password))
    assert b.controlling
    a.datagram_received(raw, B_ADDR, 0.02)
    assert not a.controlling  # RFC 8445 7.2.5.1: the 487 makes alice switch
    assert any(e.kind == "role-switch" for e in a.events())
    _wire(a, b)
    assert a.state == b.state == "completed"
    assert (a.role, b.role) == ("controlled", "controlling")


def test_role_conflict_a_controlling_agent_with_the_smaller_tie_breaker_switches_on_a_request():
    a, b = _pair(a_controlling=True, b_controlling=True, tie=(10, 5))
    b.handle_timer(b.next_timer())
    (data, _), = b.datagrams_to_send()
    a.datagram_received(data, B_ADDR, 0.01)  # alice 10 >= bob 5: alice answers 487
    assert StunMessage.decode(a.datagrams_to_send()[0][0]).error[0] == 487
    a2, b2 = _pair(a_controlling=True, b_controlling=True, tie=(3, 5))
    b2.handle_timer(b2.next_timer())
    (data, _), = b2.datagrams_to_send()
    a2.datagram_received(data, B_ADDR, 0.01)  # alice 3 < bob 5: alice becomes controlled and answers
    assert not a2.controlling
    assert StunMessage.decode(a2.datagrams_to_send()[0][0]).cls == SUCCESS


def test_both_controlled_the_larger_tie_breaker_becomes_controlling():
    a, b = _pair(a_controlling=False, b_controlling=False, tie=(7, 3))
    b.handle_timer(b.next_timer())
    (data, _), = b.datagrams_to_send()
    assert ICE_CONTROLLED in StunMessage.decode(data)
    a.datagram_received(data, B_ADDR, 0.01)
    assert a.controlling
    _wire(a, b)
    assert a.state == b.state == "completed"


def test_controlled_agent_never_sends_use_candidate():
    a, b = _pair()
    _wire(a, b)
    assert b.stats["checks-sent"] >= 1
    b2 = IceAgent("bob", controlling=False, rng=random.Random(2))
    b2.start(0.0, B_ADDR)
    pa = a.local_parameters()
    b2.set_remote(pa["ufrag"], pa["password"], pa["candidates"], now=0.0)
    b2.handle_timer(b2.next_timer())
    (data, _), = b2.datagrams_to_send()
    assert USE_CANDIDATE not in StunMessage.decode(data)
