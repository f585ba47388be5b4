"""When the network changes: Alice moves behind another NAT mid-call, in the sim and the real lab."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from p2plab import recorded, sim, topology
from p2plab.errors import ConfigurationError, TopologyError
from p2plab.scenarios.network_change import MOBILE_IP, MOBILE_NAT_IP, run_network_change

from conftest import need, need_netns

ORDER = ["moved", "restart", "gathered", "offer-at-bob", "answer-at-alice", "reconnected"]


def test_move_host_takes_the_sockets_along_and_packets_follow():
    t = topology.punch()
    t.add_nat("nat-mobile", MOBILE_NAT_IP, "100.64.0.0/10", "full-cone", lan_ip="100.64.0.1")
    net = sim.Network.build(t, seed=0)
    sock = net.host("alice").udp_socket(5000)
    server = net.host("server").udp_socket(7000)
    sock.sendto(b"before", (topology.SERVER_IP, 7000))
    net.run(until=1.0)
    note = net.move_host("alice", "nat-mobile", MOBILE_IP)
    assert "nat-a" in note and "nat-mobile" in note and sock.local_addr == (MOBILE_IP, 5000)
    sock.sendto(b"after", (topology.SERVER_IP, 7000))
    net.run(until=2.0)
    sources = [(d, a[0]) for _, d, a in server.received]
    assert sources == [(b"before", topology.ALICE_NAT_IP), (b"after", MOBILE_NAT_IP)]
    server.sendto(b"reply", (MOBILE_NAT_IP, server.received[-1][2][1]))
    net.run(until=3.0)
    assert [d for _, d, _ in sock.received] == [b"reply"]


def test_move_host_says_what_is_wrong():
    net = sim.Network.build(topology.punch(), seed=0)
    with pytest.raises(TopologyError, match="outside nat-b's inside network"):
        net.move_host("alice", "nat-b", "10.9.9.9")
    with pytest.raises(TopologyError, match="choose 'internet' or a NAT"):
        net.move_host("alice", "bob")


def test_interface_detection_restarts_at_once_and_finds_the_new_path():
    r = run_network_change(detect="interface")
    assert r.reconnected and r.new_pair_kind == "srflx-srflx"
    assert r.old_pair.startswith(f"srflx {topology.ALICE_NAT_IP}:") and f"srflx {MOBILE_NAT_IP}:" in r.new_pair
    times = [r.at(s) for s in ORDER]
    assert None not in times and times == sorted(times)
    assert r.time_to_detect == 0 and 0.3 < r.time_to_reconnect < 2.0
    assert r.outage is not None and r.outage < 3.0
    # the agent gathered again from the new address: host, srflx (new NAT), relay
    types = sorted(c.type for c in r.agents["alice"].local_candidates)
    assert types == ["host", "relay", "srflx"]
    assert r.agents["alice"].host.addr == (MOBILE_IP, 5000) and r.agents["alice"].generation == 1


def test_consent_detection_takes_up_to_30_seconds():
    r = run_network_change(detect="consent")
    lost = r.at("consent-lost")
    # RFC 7675: consent expires 30 s after the last answer; answers came every 4-6 s before the move
    assert 24.0 <= lost - r.moved_at <= 30.0
    assert r.at("restart") == pytest.approx(max(s.at for s in r.steps if s.name == "consent-lost"))
    assert r.reconnected and r.time_to_reconnect > 24.0 and r.outage > 24.0


def test_without_a_restart_the_call_stays_dead_and_sending_is_refused():
    r = run_network_change(detect="none")
    assert not r.reconnected and r.new_pair is None and r.outage is None
    assert r.agents["alice"].consent_lost and r.media["alice"]["refused"] > 0


def test_the_trace_shows_why_the_old_path_died():
    r = run_network_change(detect="none", run_after=5.0)
    df = r.trace.df
    after = df[(df["time"] > r.moved_at) & (df["action"] == "dropped")]
    filtered = after[(after["node"] == "nat-b") & (after["src"] == MOBILE_NAT_IP)]
    assert len(filtered) and "filtering" in filtered["reason"].iloc[0]
    lost = after[(after["node"] == "nat-a") & (after["dst"] == topology.ALICE_IP)]
    assert len(lost) and "no host" in lost["reason"].iloc[0]


def test_a_symmetric_carrier_nat_comes_back_through_the_relay():
    r = run_network_change(detect="interface", mobile_nat="symmetric")
    assert r.reconnected and "relay" in r.new_pair_kind


def test_same_seed_same_timeline_and_figure_summary():
    a, b = run_network_change(detect="interface"), run_network_change(detect="interface")
    assert a.timeline().equals(b.timeline())
    from p2plab import viz

    text = viz.summary(a.figure())
    assert "moved" in text and "reconnected" in text
    window = a.window_trace(after=0.2)
    assert 0 < len(window) < len(a.trace)
    assert viz.summary(viz.ladder(window, max_rows=80))


def test_bad_arguments_say_how_to_fix_them():
    with pytest.raises(ConfigurationError, match="detect must be one of"):
        run_network_change(detect="magic")
    with pytest.raises(ConfigurationError, match="move_at"):
        run_network_change(move_at=0.5)


def test_cli_sim_json():
    out = subprocess.run([sys.executable, "-m", "p2plab", "network-change", "--world", "sim", "--detect",
                          "interface", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["reconnected"] and row["world"] == "sim" and [s["step"] for s in row["steps"]][0] == "connected"


@pytest.mark.timeout(120)
def test_real_lab_alice_moves_to_another_nat_and_ice_recovers():
    need_netns()
    need("tcpdump")
    from p2plab.netns.netchange import run_network_change as real

    r = real("interface")
    o = r["outcome"]
    assert o["reconnected"], o["reason"]
    assert o["new_pair"][1][0] == MOBILE_NAT_IP and o["time_to_reconnect"] < 5.0
    steps = [s["step"] for s in r["steps"] if s["after_move"] >= 0]
    assert steps[:2] == ["moved", "restart"] and "offer" in steps and steps.count("completed") == 2
    df = r["trace"].df
    assert ((df["node"] == "nat-mobile") & (df["src"] == MOBILE_NAT_IP)).any()  # the new NAT translated her
    assert ((df["node"] == "alice") & (df["src"] == MOBILE_IP)).any()  # her new interface was captured


@pytest.mark.timeout(120)
def test_real_lab_consent_expiry_triggers_the_restart():
    need_netns()
    from p2plab.netns.netchange import run_network_change as real

    r = real("consent", consent_timeout=4.0, capture=False)
    lost = [s for s in r["steps"] if s["step"] == "consent-lost"]
    assert lost and all(2.0 < s["after_move"] < 4.5 for s in lost)  # 4 s after the last answer (every 1 s)
    assert r["outcome"]["reconnected"]


@pytest.mark.timeout(180)
def test_recording_still_matches_a_fresh_run(tmp_path):
    need_netns()
    need("tcpdump")
    recorded.record(["network-change"], out=tmp_path)
    fresh, shipped = recorded.load("network-change", data=tmp_path), recorded.load("network-change")
    kinds = lambda t: {s[2] for s in recorded.shape(t) if s[1] == "sent" and s[0] in ("alice", "bob")}  # noqa: E731
    assert kinds(fresh) == kinds(shipped)
    assert recorded.outcome("network-change", data=tmp_path)["ok"] == recorded.outcome("network-change")["ok"] is True
    steps = [s["step"] for s in recorded.outcome("network-change")["details"]["steps"]]
    assert "moved" in steps and "restart" in steps


def test_restart_with_gather_needs_an_agent_that_started_and_an_address():
    from p2plab.ice import IceAgent, IceStateError

    agent = IceAgent("alice")
    with pytest.raises(IceStateError, match="nothing to restart"):
        agent.restart(0.0, gather=True)
    agent.start(0.0, ("192.168.1.10", 5000))  # no servers: gathering is the host candidate alone
    agent.local_addr = None
    with pytest.raises(ConfigurationError, match="local_addr"):
        agent.restart(1.0, gather=True)
    params = agent.restart(1.0, gather=True, local_addr=("100.64.7.10", 5000))
    # the refused call changed nothing: this is the first restart
    assert [c.addr for c in params["candidates"]] == [("100.64.7.10", 5000)] and agent.generation == 1
    assert [e.kind for e in agent.events()][-1] == "gathering-complete"
