"""TCP hole punching in the simulator: simultaneous open, silent drops versus RST."""

from __future__ import annotations

from p2plab.nat import preset
from p2plab.tcp import run_tcp_punch


def test_simultaneous_open_through_two_cone_nats():
    r = run_tcp_punch()
    assert r.direct
    assert "simultaneous open" in r.reason
    assert [h.split(":")[0] for _, h in r.alice] == ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]


def test_a_late_peer_still_connects_when_the_nat_drops_the_early_syn_silently():
    r = run_tcp_punch(bob_delay=0.3)
    assert r.direct
    dropped = r.trace.df[(r.trace.df["action"] == "dropped") & (r.trace.df["node"] == "nat-b")]
    assert len(dropped) == 1 and dropped.iloc[0]["summary"] == "TCP SYN"


def test_a_nat_that_answers_unsolicited_syn_with_rst_kills_the_punch():
    r = run_tcp_punch(nat_b=preset("port-restricted-cone", tcp_unsolicited="rst"), bob_delay=0.3)
    assert not r.direct
    assert "connection refused: RST" in r.reason


def test_symmetric_nat_defeats_tcp_punching_too():
    r = run_tcp_punch(nat_b="symmetric")
    assert not r.direct
    assert "no answer" in r.reason
