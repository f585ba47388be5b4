"""run_ice in the simulator: direct across cone NATs, relayed across symmetric NATs, the report."""

from __future__ import annotations

import pytest

from p2plab.ice import REPORT_COLUMNS, run_ice, turn_available
from p2plab.ice.checklist import PAIR_STATES
from p2plab.stun.message import BINDING, REQUEST, StunMessage, short_term_key


@pytest.fixture(scope="module")
def cone():
    return run_ice("port-restricted-cone", "port-restricted-cone", seed=0)


def test_direct_across_cone_nats(cone):
    assert cone.success and cone.direct and not cone.relayed
    assert (cone.local_type, cone.remote_type) in {("srflx", "srflx"), ("host", "host"), ("srflx", "prflx"),
                                                   ("prflx", "srflx")}
    assert cone.local.addr == ("203.0.113.10", 5000) and cone.remote.addr == ("198.51.100.20", 5000)
    assert 0 < cone.time < 2.0
    assert cone.roles == {"alice": "controlling", "bob": "controlled"}
    assert cone.agents["bob"].selected.remote.addr == cone.local.addr


def test_report_rows_explain_every_pair(cone):
    rows = cone.pairs("alice")
    assert rows and all(set(REPORT_COLUMNS) <= set(r) for r in rows)
    assert all(r["state"] in PAIR_STATES for r in rows)
    assert sum(r["selected"] for r in rows) == 1
    host_host = next(r for r in rows if r["type"] == "host-host")
    assert host_host["state"] == "Failed"
    assert host_host["why"] == ("pair failed: checks to 192.168.0.25:5000 never answered "
                                "(private address of another network)")
    df = cone.df
    assert list(df.columns) == REPORT_COLUMNS and len(df) == len(cone.report)


def test_the_checks_in_the_trace_carry_correct_message_integrity(cone):
    trace = cone.trace
    a, b = cone.agents["alice"], cone.agents["bob"]
    df = trace.df
    sent = df[(df["node"] == "alice") & (df["action"] == "sent") & (df["summary"] == "STUN Binding request")
              & (df["dport"] == 5000)]
    assert len(sent)
    for i in sent.index:
        raw = trace.raw(int(i))
        msg = StunMessage.decode(raw[28:])
        assert (msg.method, msg.cls) == (BINDING, REQUEST)
        assert msg.get("USERNAME") == f"{b.ufrag}:{a.ufrag}"
        assert msg.check_integrity(short_term_key(b.password))
        assert msg.check_fingerprint()
        assert msg.get("ICE-CONTROLLING") == a.tie_breaker


def test_same_seed_same_trace():
    r1 = run_ice("symmetric", "full-cone", seed=7)
    r2 = run_ice("symmetric", "full-cone", seed=7)
    assert r1.trace.df.equals(r2.trace.df)
    assert r1.report == r2.report
    r3 = run_ice("symmetric", "full-cone", seed=8)
    assert not r1.trace.df.equals(r3.trace.df)


def test_without_turn_symmetric_pair_fails_with_reasons():
    r = run_ice("symmetric", "symmetric", turn=False)
    assert not r.success
    assert "filtered" in r.reason
    assert all(not row["local_type"] == "relay" for row in r.report)


@pytest.mark.skipif(not turn_available(), reason="p2plab.turn (TurnClient/TurnServer) is not available yet")
def test_relayed_across_symmetric_nats():
    r = run_ice("symmetric", "symmetric", seed=0)
    assert r.success and r.relayed and not r.direct
    assert "relay" in (r.local_type, r.remote_type)
    failed = [row for row in r.pairs("alice") if row["state"] == "Failed" and "relay" not in row["type"]]
    assert failed and all(row["why"].startswith("pair failed") for row in failed)
    assert "through the TURN relay" in r.reason


def test_role_conflict_in_the_simulator_is_repaired():
    r = run_ice(bob_controlling=True, tie_breakers=(5, 10))
    assert r.success and r.roles == {"alice": "controlled", "bob": "controlling"}
    assert any(e.kind == "role-switch" for e in r.events["alice"])


def test_signaling_delay_and_str():
    r = run_ice("full-cone", "restricted-cone", signaling_delay=0.2, turn=False)
    assert r.success and r.direct
    assert r.time > 0.2
    assert "DIRECT" in str(r) and r.as_dict()["success"]


# -- the application's side --------------------------------------------------------------------------------
def _runner(r, name):
    return next(x for x in r.network.runners if x.protocol is r.agents[name])


def _exchange(r, lines=(b"hi bob", b"how are you?"), reply=b"fine, alice"):
    """Alice sends ``lines``, Bob one ``reply``, through the public API; returns what each received."""
    net = r.network
    ra, rb = _runner(r, "alice"), _runner(r, "bob")
    start_a, start_b = len(ra.events), len(rb.events)
    for line in lines:
        ra.call(r.agents["alice"].send_data, line)
    rb.call(r.agents["bob"].send_data, reply)
    net.run(until=net.now + 1.0)
    got_b = [e for e in rb.events[start_b:] if e.kind == "data"]
    got_a = [e for e in ra.events[start_a:] if e.kind == "data"]
    return got_a, got_b


def test_application_data_on_a_direct_pair():
    r = run_ice("port-restricted-cone", "port-restricted-cone", seed=0)
    got_a, got_b = _exchange(r)
    assert [e.data["data"] for e in got_b] == [b"hi bob", b"how are you?"]
    assert [e.data["data"] for e in got_a] == [b"fine, alice"]
    assert all(e.on_selected for e in got_a + got_b)
    assert got_b[0].source == r.agents["bob"].selected.remote.addr == ("203.0.113.10", 5000)


@pytest.mark.skipif(not turn_available(), reason="p2plab.turn (TurnClient/TurnServer) is not available yet")
def test_application_data_on_a_relayed_pair_and_close_deletes_the_allocations():
    from p2plab.turn import TurnServer

    r = run_ice("symmetric", "symmetric", seed=0)
    kinds = {r.agents[n].selected.local.type for n in ("alice", "bob")}
    assert "relay" in kinds  # one side sends from its relay (Send indications), the other to it
    got_a, got_b = _exchange(r)
    assert [e.data["data"] for e in got_b] == [b"hi bob", b"how are you?"]
    assert [e.data["data"] for e in got_a] == [b"fine, alice"]
    relayed_side = next(n for n in ("alice", "bob") if r.agents[n].selected.local.type == "relay")
    got = got_a if relayed_side == "alice" else got_b
    assert all(e.local.type == "relay" for e in got)  # it came in through the TURN allocation
    server = next(x.protocol for x in r.network.runners if isinstance(x.protocol, TurnServer))
    assert len(server.allocations) == 2
    r.close()
    assert server.allocations == {}
    for name in ("alice", "bob"):
        ag = r.agents[name]
        assert ag.state == "closed" and ag.released and ag.next_timer() is None
        released = [e for e in _runner(r, name).events if e.kind == "released"]
        assert len(released) == 1 and released[0].ok and "deleted the allocation" in released[0].why
    assert not server.local_addresses() - {("192.0.2.1", 3479)}  # relay ports closed too


def test_consent_in_the_simulator_notices_a_silent_peer():
    r = run_ice("full-cone", "restricted-cone", seed=1, turn=False, consent=True)
    net, a = r.network, r.agents["alice"]
    net.run(until=net.now + 20.0)
    assert a.stats["consent-answers"] >= 3 and a.state == "completed"
    rb = _runner(r, "bob")
    for sock in rb.sockets.values():  # bob's program hangs: it reads and answers nothing any more
        sock.on_datagram = lambda *args, **kwargs: None
    r.agents["bob"].cancel_timers()
    silent_at = net.now
    net.run(until=net.now + 40.0)
    lost = [e for e in _runner(r, "alice").events if e.kind == "consent-lost"]
    assert len(lost) == 1
    assert 24.0 <= lost[0].time - silent_at <= 30.0
    assert a.state == "failed" and not r.agents["bob"].consent_lost


@pytest.mark.parametrize("both", ["controlling", "controlled"])
@pytest.mark.parametrize("ties", [(5, 10), (10, 5), (7, 7)])
def test_role_conflicts_in_the_simulator_end_with_one_controlling_agent(both, ties):
    """RFC 8445 7.3.1.1 / 7.2.5.1: the larger tie-breaker controls; equal ones are redrawn after a 487."""
    kw = {"bob_controlling": True} if both == "controlling" else {"alice_controlling": False, "bob_controlling": False}
    r = run_ice(tie_breakers=ties, turn=False, **kw)
    assert r.success
    assert sorted(r.roles.values()) == ["controlled", "controlling"]
    if ties[0] != ties[1]:
        winner = "alice" if ties[0] > ties[1] else "bob"
        assert r.roles[winner] == "controlling"
    else:  # a tie: both answer 487 and both draw new tie-breakers (RFC 8445 16.1)
        assert any("487" in e.why for ev in r.events.values() for e in ev if e.kind == "role-switch")
    assert r.agents["alice"].selected.remote.addr == r.agents["bob"].selected.local.addr


@pytest.mark.skipif(not turn_available(), reason="p2plab.turn (TurnClient/TurnServer) is not available yet")
def test_a_relayed_session_outlives_the_5_minute_turn_permission():
    """Consent checks run every 4-6 s for 10 minutes; the relay keeps forwarding because the agent
    renews the TURN permission (300 s lifetime, RFC 8656) before it expires."""
    r = run_ice("symmetric", "symmetric", seed=0, consent=True)
    net = r.network
    net.run(until=net.now + 600.0)
    for name in ("alice", "bob"):
        ag = r.agents[name]
        assert ag.state == "completed" and not ag.consent_lost, ag.failed_reason
        assert ag.stats["consent-answers"] >= 100
    got_a, got_b = _exchange(r)
    assert [e.data["data"] for e in got_b] == [b"hi bob", b"how are you?"]
    assert [e.data["data"] for e in got_a] == [b"fine, alice"]


def test_ice_restart_in_the_simulator_moves_to_a_new_pair_without_losing_data():
    r = run_ice("full-cone", "restricted-cone", seed=2, turn=False, consent=True)
    net, a, b = r.network, r.agents["alice"], r.agents["bob"]
    ra, rb = _runner(r, "alice"), _runner(r, "bob")
    net.run(until=net.now + 10.0)
    old = a.selected
    pa, pb = ra.call(a.restart), rb.call(b.restart)
    ra.call(a.send_data, b"during the restart")
    ra.call(a.set_remote, pb["ufrag"], pb["password"], pb["candidates"])
    rb.call(b.set_remote, pa["ufrag"], pa["password"], pa["candidates"])
    net.run(until=net.now + 10.0)
    assert a.state == b.state == "completed" and a.generation == b.generation == 1
    assert a.selected is not old and a.selected.remote.addr == old.remote.addr
    got = [e.data["data"] for e in rb.events if e.kind == "data"]
    assert got == [b"during the restart"]
    net.run(until=net.now + 60.0)
    assert not a.consent_lost and not b.consent_lost  # consent checks use the new credentials


@pytest.mark.skipif(not turn_available(), reason="p2plab.turn (TurnClient/TurnServer) is not available yet")
@pytest.mark.parametrize("nats", [("symmetric", "symmetric"), ("port-restricted-cone", "full-cone")])
def test_full_trickle_in_the_simulator(nats):
    """RFC 8838: each agent signals its ufrag, password and host candidate at once, then every
    candidate as it is gathered, then end-of-candidates; checks start before gathering ends."""
    import random

    from p2plab import topology as topo
    from p2plab.ice import IceAgent, IceConfig
    from p2plab.ice.run import STUN_PORT, TURN_PORT, TURN_USERS
    from p2plab.sim import Network, ProtocolRunner
    from p2plab.stun.server import StunServer
    from p2plab.turn import TurnServer

    net = Network.build(topo.punch(*nats), seed=3)
    server = net.host("server")
    net.runners.append(ProtocolRunner(net, server, StunServer(), STUN_PORT))
    net.runners.append(ProtocolRunner(net, server, TurnServer(dict(TURN_USERS), rng=random.Random(3)), TURN_PORT))
    agents = {n: IceAgent(n, controlling=(n == "alice"), stun_server=(topo.SERVER_IP, STUN_PORT),
                          turn_server=(topo.SERVER_IP, TURN_PORT), turn_username=n, turn_password=TURN_USERS[n],
                          rng=random.Random(n), config=IceConfig(trickle=True)) for n in ("alice", "bob")}
    other = {"alice": "bob", "bob": "alice"}
    runners: dict = {}
    delay = 0.030  # the signaling server's one-way delay

    def signal(to, method, *args):
        net.after(delay, lambda: runners[to].call(getattr(agents[to], method), *args))

    def on_event(ev):
        if ev.kind == "candidate" and ev.candidate.type != "prflx":
            signal(other[ev.agent], "add_remote_candidate", ev.candidate)
        elif ev.kind == "gathering-complete":
            signal(other[ev.agent], "end_of_candidates")

    for n in ("alice", "bob"):  # the offer/answer carry no candidates: all of them trickle
        signal(other[n], "set_remote", agents[n].ufrag, agents[n].password, [])
    for n in ("alice", "bob"):
        runners[n] = ProtocolRunner(net, net.host(n), agents[n], 5000)
        net.runners.append(runners[n])
        runners[n].on_event = on_event
        for ev in list(runners[n].events):  # the host candidate, emitted while starting
            on_event(ev)
    net.run(until=10.0)
    a, b = agents["alice"], agents["bob"]
    assert a.state == b.state == "completed", (a.failed_reason, b.failed_reason)
    checking_at = next(e.time for e in runners["alice"].events if e.kind == "checking")
    assert checking_at < a.gathered_at  # checks began before alice's gathering was complete
    trickled = [p for p in a.all_pairs() if p.why.startswith("added by trickle")]
    assert {p.remote.type for p in trickled} >= {"host", "relay"}
    assert any(p.local.type == "relay" for p in trickled)  # our relay came after the checks began
    if nats == ("symmetric", "symmetric"):
        assert "relay" in (a.selected.local.type, a.selected.remote.type)
    else:
        assert "relay" not in (a.selected.local.type, a.selected.remote.type)
    rb = runners["bob"]
    runners["alice"].call(a.send_data, b"trickled and connected")
    net.run(until=net.now + 1.0)
    assert [e.data["data"] for e in rb.events if e.kind == "data"] == [b"trickled and connected"]


@pytest.mark.skipif(not turn_available(), reason="p2plab.turn (TurnClient/TurnServer) is not available yet")
def test_one_owner_refreshes_turn_permissions_over_20_minutes():
    """The agent asks for TURN permissions once; its TurnClient renews each one it holds. Over 20
    simulated minutes each agent sends exactly one CreatePermission per peer IP every 240-300 s
    (a permission lasts 300 s, RFC 8656 section 9), and the relayed pair still carries data."""
    from p2plab.turn import TurnServer

    r = run_ice("symmetric", "symmetric", seed=0)
    assert r.success and r.relayed
    net = r.network
    start = net.now
    net.run(until=start + 1200)
    df = net.trace.df
    server = next(ru.protocol for ru in net.runners if isinstance(ru.protocol, TurnServer))
    for name in ("alice", "bob"):
        sent = df[(df["node"] == name) & (df["action"] == "sent") & (df["summary"] == "TURN CreatePermission request")]
        answered = df[(df["node"] == name) & (df["action"] == "delivered")
                      & (df["summary"] == "TURN CreatePermission success response")]
        # a request retried after a 438 (stale nonce: nonces last 600 s) is the same refresh:
        # count the requests the server granted, each transaction once (retransmissions share it)
        granted_tx = {StunMessage.decode(net.trace.raw(int(i))[28:]).transaction_id for i in answered.index}
        first: dict[bytes, tuple[float, list[str]]] = {}  # transaction -> (time, peer IPs)
        for i in sent.index:
            msg = StunMessage.decode(net.trace.raw(int(i))[28:])
            if msg.transaction_id in granted_tx:
                first.setdefault(msg.transaction_id,
                                 (float(sent.at[i, "time"]), [ip for ip, _ in msg.get_all("XOR-PEER-ADDRESS")]))
        per_peer: dict[str, list[float]] = {}
        for t, ips in sorted(first.values()):
            for ip in ips:
                per_peer.setdefault(ip, []).append(t)
        data_peer = r.agents[name].selected.remote.ip if r.agents[name].selected.local.type == "relay" else None
        granted = next(set(alloc.permissions) for alloc in server.allocations.values()
                       if alloc.username == name)  # the server's view: refused peers are never renewed
        assert granted and set(granted) <= set(per_peer), (name, granted, per_peer)
        for ip in granted:
            times = per_peer[ip]
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert len(times) >= 5, (name, ip, times)  # asked once, then renewed through the 20 minutes
            assert all(235 <= g <= 300 for g in gaps), (name, ip, [round(g, 2) for g in gaps])
        if data_peer is not None:
            assert data_peer in granted
    a, b = r.agents["alice"], r.agents["bob"]
    runners = {ru.protocol: ru for ru in net.runners if hasattr(ru, "protocol")}
    runners[a].call(a.send_data, b"still relayed after 20 minutes")
    net.run(until=net.now + 1.0)
    assert b"still relayed after 20 minutes" in [e.data["data"] for e in runners[b].events if e.kind == "data"]
