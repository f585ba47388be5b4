"""TCP hole punching through real kernel NATs: listen+connect, and agreement with the simulator."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import need_netns

pytestmark = pytest.mark.timeout(120)

PRESETS = ["full-cone", "restricted-cone", "port-restricted-cone", "linux-masquerade", "symmetric"]


def test_symmetric_x_full_cone_gets_in_through_bobs_listening_socket():
    need_netns()
    from p2plab.netns.tcppunch import run_tcp_punch

    r = run_tcp_punch("symmetric", "full-cone", give_up_after=2.0)
    assert r.direct, r.reason
    assert r.world == "netns" and r.how == {"alice": "connect", "bob": "accept"}
    peers = r.details["peers"]
    seen = r.details["server_saw"]["alice"]
    # bob accepted alice from her NAT's address but not from the port the server saw: a new mapping
    assert peers["bob"]["remote"][0] == seen[0] == "203.0.113.10"
    assert peers["bob"]["remote"][1] != seen[1]
    assert peers["alice"]["hello"] == "HELLO bob" and peers["bob"]["hello"] == "HELLO alice"


def test_symmetric_x_full_cone_fails_on_a_real_kernel_without_the_listener():
    need_netns()
    from p2plab.netns.tcppunch import run_tcp_punch

    r = run_tcp_punch("symmetric", "full-cone", listen=False, give_up_after=1.5)
    assert not r.direct
    assert "alice: connect() to 198.51.100.20:5000 failed: Connection refused" in r.reason  # bob's host sent RST


def test_symmetric_x_port_restricted_is_not_direct_on_a_real_kernel():
    need_netns()
    from p2plab.netns.tcppunch import run_tcp_punch

    r = run_tcp_punch("symmetric", "port-restricted-cone", give_up_after=1.5)
    assert not r.direct and r.time is None
    assert "nat-a gave alice" in r.reason and "toward bob" in r.reason


@pytest.mark.parametrize("a", PRESETS)
@pytest.mark.parametrize("b", PRESETS)
def test_tcp_punch_outcomes_match_the_simulator(a, b):
    """All 25 pairs: the kernel's TCP through nftables NATs and the simulator's TCP agree."""
    need_netns()
    from p2plab.netns.tcppunch import run_tcp_punch as real
    from p2plab.scenarios.tcp import run_tcp_punch as simulated

    s = simulated(a, b)
    r = real(a, b, give_up_after=2.0)
    assert r.direct is s.direct, f"sim says direct={s.direct} ({s.reason}); the real kernel: {r.reason}"


def test_punch_cli_tcp_in_both_worlds():
    def run(world: str, nat_b: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--transport", "tcp", "--world", world,
                              "--nat-a", "symmetric", "--nat-b", nat_b, "--format", "json"],
                             capture_output=True, text=True, timeout=90)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    for nat_b, direct in (("full-cone", True), ("port-restricted-cone", False)):
        row = run("sim", nat_b)
        assert row["direct"] is direct and row["transport"] == "tcp" and row["world"] == "sim"
    need_netns()
    for nat_b, direct in (("full-cone", True), ("port-restricted-cone", False)):
        row = run("netns", nat_b)
        assert row["direct"] is direct and row["transport"] == "tcp" and row["world"] == "netns", row["reason"]
