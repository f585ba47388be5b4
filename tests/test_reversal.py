"""Connection reversal (RFC 5128 section 3.2): the sans-I/O rendezvous, the simulator, the real lab,
an ordinary user's (rootless) lab, the CLI and the recording."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from p2plab import recorded
from p2plab.errors import ConfigurationError
from p2plab.reversal import ReversalPeer, ReversalServer, decide, decode, encode
from p2plab.scenarios.reversal import run_reversal

from conftest import need, need_netns

PRESETS = ["full-cone", "restricted-cone", "port-restricted-cone", "symmetric"]


def test_the_server_decides_who_calls():
    assert decide(caller_natted=False, callee_natted=True) == "reverse"
    assert decide(caller_natted=True, callee_natted=False) == "dial"
    assert decide(caller_natted=False, callee_natted=False) == "dial"
    assert decide(caller_natted=True, callee_natted=True) == "refuse"
    assert decide(caller_natted=False, callee_natted=True, mode="direct") == "dial"
    with pytest.raises(ConfigurationError, match="reversal, direct"):
        decide(False, True, mode="sideways")


def test_the_server_spots_a_nat_by_comparing_addresses_and_turns_the_call_around():
    srv = ReversalServer()
    srv.datagram_received(encode("REGISTER", "alice", "192.168.1.10:5000"), ("203.0.113.10", 40000), 0.0)
    srv.datagram_received(encode("REGISTER", "bob", "198.51.100.9:6000"), ("198.51.100.9", 6000), 0.0)
    out = srv.datagrams_to_send()
    assert [decode(d)[1][2] for d, _ in out] == ["natted", "public"]
    srv.datagram_received(encode("CONNECT", "bob", "alice", "reversal"), ("198.51.100.9", 6000), 0.1)
    sent = {decode(d)[0]: (decode(d)[1], addr) for d, addr in srv.datagrams_to_send()}
    assert sent["WAIT"] == (["alice"], ("198.51.100.9", 6000))
    assert sent["REVERSE"] == (["bob", "198.51.100.9:6000"], ("203.0.113.10", 40000))


def test_a_peer_rejects_an_unknown_mode_with_the_choices():
    with pytest.raises(ConfigurationError, match="reversal, direct"):
        ReversalPeer("bob", ("192.0.2.1", 7000), call="alice", mode="sideways")
    with pytest.raises(ConfigurationError, match="mode must be"):
        run_reversal("symmetric", mode="backwards")


@pytest.mark.parametrize("nat", PRESETS)
def test_reversal_connects_behind_every_nat_in_the_simulator(nat):
    res = run_reversal(nat, "reversal")
    assert res.direct and res.how == "alice called bob" and res.verdict == "wait"
    alice = {e["kind"]: e for e in res.events["alice"]}
    assert alice["reverse"]["caller"] == "bob"
    assert tuple(alice["connected"]["peer"]) == ("198.51.100.9", 6000)


@pytest.mark.parametrize("nat", PRESETS)
def test_calling_a_natted_peer_directly_only_works_through_a_full_cone(nat):
    res = run_reversal(nat, "direct")
    assert res.direct is (nat == "full-cone")
    if not res.direct:
        assert "nat-a dropped the HELLO" in res.reason and res.verdict == "dial"


def test_reversal_is_refused_when_both_peers_are_behind_nats():
    res = run_reversal("port-restricted-cone", bob_nat="full-cone")
    assert not res.direct and res.verdict == "refuse"
    assert "both behind NATs" in res.reason and "RFC 5128 section 3.3" in res.reason


def test_the_simulator_is_deterministic():
    a, b = run_reversal("symmetric", seed=3), run_reversal("symmetric", seed=3)
    assert a.trace.df.equals(b.trace.df)


@pytest.mark.parametrize("nat,mode,direct", [("symmetric", "reversal", True), ("port-restricted-cone", "direct", False),
                                             ("full-cone", "direct", True)])
def test_the_real_kernel_agrees_with_the_simulator(nat, mode, direct):
    need_netns()
    from p2plab.netns.reversal import run_reversal as real

    res = real(nat, mode)
    sim = run_reversal(nat, mode)
    assert res.world == "netns" and res.direct is direct is sim.direct
    assert res.how == sim.how and res.verdict == sim.verdict
    if not direct:
        assert "input chain" in res.reason  # the kernel NAT's drop, seen in the capture


def test_cli_in_both_worlds():
    env = {**os.environ}
    sim = subprocess.run([sys.executable, "-m", "p2plab", "reversal", "--world", "sim", "--nat", "symmetric",
                          "--format", "json"], capture_output=True, text=True, timeout=60, env=env)
    assert sim.returncode == 0, sim.stderr
    row = json.loads(sim.stdout)
    assert row["direct"] is True and row["how"] == "alice called bob" and row["world"] == "sim"
    bad = subprocess.run([sys.executable, "-m", "p2plab", "reversal", "--nat", "nonsense"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "unknown NAT preset" in bad.stderr
    need_netns()
    real = subprocess.run([sys.executable, "-m", "p2plab", "reversal", "--world", "netns", "--nat", "symmetric",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["direct"] is True


def test_an_ordinary_user_runs_reversal_rootless():
    """P2PLAB_ROOTLESS=1 gives root exactly an ordinary user's powers in a user namespace."""
    need("ip", "nft", "unshare", "nsenter")
    from p2plab.netns import rootless

    ok, why = rootless.possible()
    if not ok:
        from conftest import missing

        missing(f"rootless labs need unprivileged user namespaces: {why}")
    script = textwrap.dedent("""
        import json
        from p2plab.netns.reversal import run_reversal
        good = run_reversal("symmetric", "reversal")
        bad = run_reversal("port-restricted-cone", "direct")
        print(json.dumps({"good": good.direct, "bad": bad.direct, "rows": len(good.trace)}))
    """)
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "P2PLAB_ROOTLESS": "1"},
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["good"] is True and res["bad"] is False and res["rows"] > 10


def test_the_recording_matches_a_fresh_run(tmp_path):
    shipped = recorded.load("reversal")
    assert recorded.outcome("reversal")["direct"] is True
    assert {"alice", "bob", "server", "nat-a"} <= set(shipped.df["node"])
    need_netns()
    need("tcpdump")
    recorded.record(["reversal"], out=tmp_path)
    fresh = recorded.load("reversal", data=tmp_path)
    kinds = lambda t: {s for s in recorded.shape(t) if s[1] == "sent"}  # noqa: E731
    assert kinds(fresh) == kinds(shipped)
    assert recorded.outcome("reversal", data=tmp_path)["direct"] is True
