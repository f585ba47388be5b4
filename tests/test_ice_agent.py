"""The sans-I/O ICE agent: what its checks carry, and role conflicts (RFC 8445 7.2.2, 7.3.1.1)."""

from __future__ import annotations

import random

import pytest

from p2plab.errors import ConfigurationError
from p2plab.ice import Candidate, IceAgent, IceConfig, IceStateError, candidate_priority
from p2plab.stun.message import (
    BINDING,
    ERROR,
    ICE_CONTROLLED,
    ICE_CONTROLLING,
    INDICATION,
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
    assert a.tie_breaker != 5  # RFC 8445 16.1: and change her tie-breaker
    assert any(e.kind == "role-switch" for e in a.events())
    a.handle_timer(a.next_timer())
    retry = StunMessage.decode(a.datagrams_to_send()[0][0])  # the pair is checked again, in her new role
    assert retry.get(ICE_CONTROLLED) == a.tie_breaker and ICE_CONTROLLING not in retry
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


# -- the application's side: data, consent, close, trickle ------------------------------------------------
def _run(a, b, until, mute=()):
    """Like _wire, but runs to ``until`` (after ICE too) and drops every datagram sent by or to an
    agent in ``mute`` (a peer that went silent), and what goes to other addresses. Returns the data events seen by each agent."""
    queue, now = [], a.now
    addr = {id(a): A_ADDR, id(b): B_ADDR}
    seen = {id(a): [], id(b): []}
    while True:
        for me, other in ((a, b), (b, a)):
            for data, dst in me.datagrams_to_send():
                if me not in mute and other not in mute and tuple(dst) == addr[id(other)]:
                    queue.append((now + 0.010, other, data, addr[id(me)]))
            seen[id(me)].extend(me.events())
        times = [t for t in (a.next_timer(), b.next_timer()) if t is not None] + [q[0] for q in queue]
        if not times or min(times) > until:
            return seen
        now = min(times)
        for item in [q for q in queue if q[0] <= now]:
            queue.remove(item)
            item[1].datagram_received(item[2], item[3], now)
        for ag in (a, b):
            if ag.next_timer() is not None and ag.next_timer() <= now:
                ag.handle_timer(now)


def test_send_data_before_a_pair_is_selected_says_why():
    a, b = _pair()
    with pytest.raises(IceStateError, match="no candidate pair is selected yet"):
        a.send_data(b"too early", 0.0)


def test_send_data_on_the_selected_pair_both_ways():
    a, b = _pair()
    _wire(a, b)
    t = max(a.now, b.now)
    a.send_data(b"hello bob", t)
    b.send_data(b"hello alice", t)
    assert a.datagrams_to_send() == [(b"hello bob", B_ADDR)]
    assert b.datagrams_to_send() == [(b"hello alice", A_ADDR)]
    b.datagram_received(b"hello bob", A_ADDR, t + 0.01)
    got = [e for e in b.events() if e.kind == "data"]
    assert [e.data["data"] for e in got] == [b"hello bob"] and got[0].on_selected
    with pytest.raises(ConfigurationError, match="look like a STUN message"):
        a.send_data(StunMessage(BINDING, REQUEST).encode(), t)
    with pytest.raises(TypeError, match="encode text first"):
        a.send_data("text", t)


def test_consent_checks_every_4_to_6_seconds_and_answers_keep_consent():
    a, b = _pair()
    _wire(a, b)
    sent = []
    orig = a._send_consent

    def spy():
        sent.append(a.now)
        orig()

    a._send_consent = spy
    _run(a, b, until=120.0)
    gaps = [y - x for x, y in zip(sent, sent[1:])]
    assert len(sent) >= 19 and all(4.0 - 1e-9 <= g <= 6.0 + 1e-9 for g in gaps)
    assert len({round(g, 3) for g in gaps}) > 5  # randomised, not a fixed period
    assert a.stats["consent-answers"] == a.stats["consent-sent"] > 0
    assert a.state == b.state == "completed" and not a.consent_lost


def test_a_silent_peer_loses_consent_within_30_seconds():
    a, b = _pair()
    _wire(a, b)
    _run(a, b, until=20.0)
    last = a.consent_at
    assert last is not None and last > 10.0
    seen = _run(a, b, until=90.0, mute=(b,))  # bob goes silent at 20 s
    lost = [e for e in seen[id(a)] if e.kind == "consent-lost"]
    assert len(lost) == 1 and lost[0].time == pytest.approx(last + 30.0)
    assert 24.0 <= lost[0].time - 20.0 <= 30.0
    assert a.state == "failed" and "consent lost" in a.failed_reason
    with pytest.raises(IceStateError, match="consent to send .* was lost"):
        a.send_data(b"anyone there?", a.now)
    assert a.next_timer() is None  # nothing more to send to a peer that left


def test_keepalives_without_consent_are_binding_indications_every_tr():
    cfg = IceConfig(consent=False)
    a = IceAgent("alice", controlling=True, rng=random.Random(1), tie_breaker=1, config=cfg)
    b = IceAgent("bob", controlling=False, rng=random.Random(2), tie_breaker=2, config=IceConfig(consent=False))
    a.start(0.0, A_ADDR)
    b.start(0.0, B_ADDR)
    pa, pb = a.local_parameters(), b.local_parameters()
    a.set_remote(pb["ufrag"], pb["password"], pb["candidates"], now=0.0)
    b.set_remote(pa["ufrag"], pa["password"], pa["candidates"], now=0.0)
    _wire(a, b)
    _run(a, b, until=61.0)
    assert a.stats["keepalives"] == 4 and a.stats["consent-sent"] == 0
    a.send_data(b"x", 61.0)  # data resets the keepalive clock
    a.datagrams_to_send()
    a.handle_timer(a.next_timer())  # the timer set at 60.07 finds data sent 14.07 s ago: no keepalive
    assert a.datagrams_to_send() == []
    a.handle_timer(a.next_timer())
    assert a.now == pytest.approx(76.0)
    (raw, dst), = a.datagrams_to_send()
    ind = StunMessage.decode(raw)
    assert (ind.method, ind.cls, dst) == (BINDING, INDICATION, B_ADDR) and ind.check_fingerprint()


def test_close_stops_everything_and_refuses_to_send():
    a, b = _pair()
    _wire(a, b)
    assert a.next_timer() is not None  # consent
    a.close(a.now)
    assert a.state == "closed" and a.done and a.released and a.next_timer() is None
    assert [e.kind for e in a.events()][-2:] == ["closed", "released"]
    with pytest.raises(IceStateError, match="closed"):
        a.send_data(b"x")
    a.datagram_received(b"ignored", B_ADDR, a.now + 1)  # a closed agent answers nobody
    assert a.datagrams_to_send() == []
    a.close()  # twice is fine


def test_trickle_remote_candidates_after_checks_started():
    cfg = IceConfig(trickle=True)
    a = IceAgent("alice", controlling=True, rng=random.Random(1), tie_breaker=1, config=cfg)
    b = IceAgent("bob", controlling=False, rng=random.Random(2), tie_breaker=2, config=IceConfig(trickle=True))
    a.start(0.0, A_ADDR)
    b.start(0.0, B_ADDR)
    pa, pb = a.local_parameters(), b.local_parameters()
    dead = Candidate.make("host", ("198.51.100.77", 9), origin="a host that never answers")
    a.set_remote(pb["ufrag"], pb["password"], [dead], now=0.0)
    b.set_remote(pa["ufrag"], pa["password"], [], now=0.0)  # bob has nothing yet
    assert a.state == b.state == "checking" and len(b.checklist) == 0
    _run(a, b, until=45.0)  # the only pair times out (39.5 s), but more candidates may come
    assert a.checklist.pairs[0].state == "Failed" and a.state == "checking"
    pair = a.add_remote_candidate(pb["candidates"][0], now=45.0)
    b.add_remote_candidate(pa["candidates"][0], now=45.0)
    assert pair is not None and pair.state == "Waiting" and pair.why.startswith("added by trickle")
    assert a.add_remote_candidate(pb["candidates"][0]) is None  # already known
    _run(a, b, until=47.0)
    assert a.state == b.state == "completed"
    assert a.selected.remote.addr == B_ADDR and b.selected.remote.addr == A_ADDR


def test_trickle_fails_only_after_end_of_candidates():
    cfg = IceConfig(trickle=True)
    a = IceAgent("alice", controlling=True, rng=random.Random(1), tie_breaker=1, config=cfg)
    a.start(0.0, A_ADDR)
    dead = Candidate.make("host", ("198.51.100.77", 9))
    a.set_remote("peer", "p" * 22, [dead], now=0.0)
    while a.next_timer() is not None and a.next_timer() < 60:
        a.handle_timer(a.next_timer())
        a.datagrams_to_send()
    assert a.state == "checking"
    a.end_of_candidates(60.0)
    assert a.state == "failed" and "every candidate pair failed" in a.failed_reason
    plain = IceAgent("bob", rng=random.Random(3))
    plain.start(0.0, B_ADDR)
    plain.set_remote("peer", "p" * 22, [dead], now=0.0)
    with pytest.raises(IceStateError, match="trickle=True"):
        plain.add_remote_candidate(Candidate.make("host", ("198.51.100.78", 9)))


def test_ice_restart_new_credentials_checks_again_and_data_keeps_flowing():
    a, b = _pair()
    _wire(a, b)
    old_pair, old_ufrag = a.selected, a.ufrag
    t = max(a.now, b.now) + 1.0
    pa, pb = a.restart(t), b.restart(t)  # RFC 8445 section 9: both sides restart
    assert pa["ufrag"] != old_ufrag and a.state == "gathered" and a.selected is None and a.generation == 1
    assert a.controlling and not b.controlling  # the roles are kept
    a.send_data(b"still here", t)  # the old pair carries data until a new one is selected
    assert a.datagrams_to_send() == [(b"still here", B_ADDR)] and a.data_pair is old_pair
    a.set_remote(pb["ufrag"], pb["password"], pb["candidates"], now=t)
    b.set_remote(pa["ufrag"], pa["password"], pa["candidates"], now=t)
    with pytest.raises(IceStateError, match="call restart"):  # new parameters without a restart
        b.set_remote(pa["ufrag"], pa["password"], pa["candidates"], now=t)
    a.handle_timer(a.next_timer())
    (check, _), = a.datagrams_to_send()
    assert StunMessage.decode(check).get(USERNAME) == f"{pb['ufrag']}:{pa['ufrag']}"
    b.datagram_received(check, A_ADDR, a.now)
    b.datagrams_to_send()
    _wire(a, b, until=a.now + 5.0)
    assert a.state == b.state == "completed" and a.selected is not old_pair
    assert a.selected.remote.addr == B_ADDR and a.data_pair is a.selected and a.previous_selected is None
    stale = StunMessage(BINDING, REQUEST, attributes=[(USERNAME, f"{old_ufrag}:x"), (PRIORITY, 1)])
    a.datagram_received(stale.encode(key=short_term_key(a.password), fingerprint=True), B_ADDR, a.now)
    assert StunMessage.decode(a.datagrams_to_send()[0][0]).error[0] == 401  # the old ufrag is gone


def test_garbage_and_mangled_messages_never_crash_the_agent_in_any_state():
    rng = random.Random(16)
    a, b = _pair()
    a.handle_timer(a.next_timer())
    (check, _), = a.datagrams_to_send()
    samples = [b"", b"\x00", bytes(19), bytes(20), check[:-4], check + b"\x00" * 4]
    for _ in range(300):
        m = bytearray(check)
        for _ in range(rng.randint(1, 6)):
            m[rng.randrange(len(m))] = rng.randrange(256)
        samples.append(bytes(m))
        samples.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 120))))

    def feed(agent, t):
        for data in samples:
            agent.datagram_received(data, A_ADDR, t)
        agent.datagrams_to_send()
        agent.events()

    feed(b, 0.01)  # checking
    a2, b2 = _pair()
    _wire(a2, b2)
    feed(b2, b2.now)  # completed, consent running
    assert b2.state == "completed"
    b2.close()
    feed(b2, b2.now)  # closed
    assert b2.datagrams_to_send() == []
