"""Hole punching in the simulator: outcomes follow from NAT behaviour, with reasons."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from p2plab.nat import preset
from p2plab.punch import PunchConfig, decode, encode, run_punch


@pytest.mark.parametrize("a,b", [("full-cone", "symmetric"), ("port-restricted-cone", "port-restricted-cone"),
                                 ("restricted-cone", "symmetric"), ("linux-masquerade", "restricted-cone")])
def test_punch_succeeds_where_one_side_keeps_its_mapping_and_the_other_admits(a, b):
    r = run_punch(a, b)
    assert r.direct, r.reason
    assert r.packets >= 2 and r.time > 0


@pytest.mark.parametrize("a,b", [("port-restricted-cone", "symmetric"), ("symmetric", "symmetric")])
def test_punch_fails_against_symmetric_with_a_reason_from_the_nat_tables(a, b):
    r = run_punch(a, b)
    assert not r.direct
    assert "address-and-port-dependent mapping" in r.reason
    assert "filtered" in r.reason


def test_conntrack_clash_breaks_a_linux_punch_when_alice_is_late():
    late = PunchConfig(start_delay=0.2)
    ok = run_punch("linux-masquerade", "linux-masquerade", config_a=late)
    assert ok.direct
    clash = preset("linux-masquerade", conntrack_clash=True)
    r = run_punch(clash, "linux-masquerade", config_a=late)
    assert not r.direct
    assert "conntrack entry" in r.reason


def test_keepalives_hold_the_hole_open_past_the_mapping_timeout():
    short = preset("port-restricted-cone", mapping_timeout=30.0)
    r = run_punch(short, short, config_a=PunchConfig(keepalive_interval=10), config_b=PunchConfig(keepalive_interval=10),
                  run_for=120)
    assert r.direct
    df = r.trace.df
    late = df[(df["time"] > 100) & df["summary"].str.contains("KEEPALIVE") & (df["action"] == "delivered")]
    assert len(late) >= 2


def test_messages_round_trip():
    assert decode(encode("PEER", "bob", "1.2.3.4:5")) == ("PEER", ["bob", "1.2.3.4:5"])
    assert decode(b"junk") is None


def test_matrix_cli_runs_real_punches():
    out = subprocess.run([sys.executable, "-m", "p2plab", "matrix", "--format", "json",
                          "--presets", "full-cone,symmetric"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    cells = {(r["nat_a"], r["nat_b"]): r["direct"] for r in rows}
    assert cells == {("full-cone", "full-cone"): True, ("full-cone", "symmetric"): True,
                     ("symmetric", "full-cone"): True, ("symmetric", "symmetric"): False}
