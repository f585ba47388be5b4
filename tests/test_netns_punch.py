"""A real UDP hole punch through kernel NATs, and Linux's conntrack clash."""

from __future__ import annotations

import pytest

from conftest import need, need_netns

pytestmark = pytest.mark.timeout(120)


def test_punch_succeeds_through_two_port_restricted_kernel_nats():
    need_netns()
    need("tcpdump", "conntrack")
    from p2plab.netns import run_punch

    r = run_punch("port-restricted-cone", "port-restricted-cone", bob_first=True)
    assert r["direct"], r["reason"]
    assert r["world"] == "netns" and r["packets"] >= 2 and 0 < r["time"] < 2
    # bob's early punch was dropped by nat-a's input chain, so alice's mapping kept port 5000
    ct = r["conntrack"]["nat-a"]
    assert set(ct.loc[ct["kind"] == "mapping", "outside"]) == {"203.0.113.10:5000"}
    df = r["trace"].df
    assert r["trace"].world == "netns"
    direct = df[(df["action"] == "delivered") & df["summary"].str.match(r"P2P (PUNCH|ACK)")]
    assert set(direct.loc[direct["node"] == "alice", "src"]) == {"198.51.100.20"}
    assert set(direct.loc[direct["node"] == "bob", "src"]) == {"203.0.113.10"}


def test_conntrack_clash_breaks_the_punch_on_a_real_kernel():
    need_netns()
    need("tcpdump", "conntrack")
    from p2plab.netns import run_punch

    r = run_punch("linux-masquerade", "port-restricted-cone", conntrack_clash=True, bob_first=True,
                  give_up_after=1.5)
    assert not r["direct"]
    assert r["time"] is None
    assert "conntrack clash on nat-a" in r["reason"]
    ct = r["conntrack"]["nat-a"]
    local = ct[ct["kind"] == "to the router itself"]
    assert list(local["outside"]) == ["203.0.113.10:5000"]  # bob's early packet, kept by the router
    toward_bob = ct[(ct["kind"] == "mapping") & (ct["remote"] == "198.51.100.20:5000")]
    assert len(toward_bob) == 1 and toward_bob.iloc[0]["outside"] != "203.0.113.10:5000"  # port changed
    drops = r["trace"].df.query("action == 'dropped' and node == 'nat-a'")
    assert drops["reason"].str.contains("left a conntrack entry").any()


PRESETS = ["full-cone", "restricted-cone", "port-restricted-cone", "linux-masquerade", "symmetric"]


@pytest.mark.parametrize("a", PRESETS)
@pytest.mark.parametrize("b", PRESETS)
def test_punch_outcomes_match_the_simulator(a, b):
    """Every pair of presets that both worlds build: the real kernel and the simulator agree."""
    need_netns()
    from p2plab import punch
    from p2plab.netns import run_punch

    simulated = punch.run_punch(a, b).direct
    r = run_punch(a, b, capture=False, give_up_after=1.0)
    assert r["direct"] is simulated, f"sim says direct={simulated}, the real kernel: {r['reason']}"
