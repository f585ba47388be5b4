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
