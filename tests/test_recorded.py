"""The recorded world: shipped captures load as traces, decode in tshark, and still match the real lab."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from p2plab import recorded
from p2plab.errors import TraceError

from conftest import need, need_netns

NAMES = list(recorded.SCENARIOS)


@pytest.mark.parametrize("name", NAMES)
def test_every_scenario_has_a_recording_that_loads(name):
    trace = recorded.load(name)
    assert trace.world == "recorded" and len(trace) > 0
    assert set(trace.df["action"]) <= {"sent", "forwarded", "translated", "dropped", "delivered", "captured"}
    assert recorded.outcome(name)["world"] == "netns"
    trace.packet(0)  # a real scapy packet


def test_recorded_outcomes_say_what_the_real_kernel_did():
    assert recorded.outcome("punch-success")["direct"] is True
    assert recorded.outcome("punch-symmetric")["direct"] is False
    clash = recorded.outcome("conntrack-clash")
    assert clash["direct"] is False and "conntrack" in clash["reason"]
    drops = recorded.load("nat-translation").df.query("action == 'dropped'")
    assert (drops["node"] == "nat-a").any()


@pytest.mark.parametrize("name", NAMES)
def test_tshark_reads_every_recording(name):
    need("tshark")
    path = recorded.DATA / f"{name}.pcap"
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.protocols"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()) == len(recorded.load(name))


def test_a_missing_recording_says_how_to_make_it(tmp_path):
    with pytest.raises(TraceError, match="python -m p2plab record"):
        recorded.load("nope", data=tmp_path)


def _sent_kinds(trace):
    return {s for s in recorded.shape(trace) if s[1] == "sent" and s[0] in ("alice", "bob", "server")}


@pytest.mark.parametrize("name", ["direct", "nat-translation", "stun", "punch-symmetric", "turn-relay"])
def test_recordings_still_match_what_the_code_records(name, tmp_path):
    """Re-record in the real lab: the same kinds of packets leave the same hosts, with the same outcome."""
    need_netns()
    need("tcpdump")
    recorded.record([name], out=tmp_path)
    fresh, shipped = recorded.load(name, data=tmp_path), recorded.load(name)
    assert _sent_kinds(fresh) == _sent_kinds(shipped)
    assert recorded.outcome(name, data=tmp_path)["ok"] == recorded.outcome(name)["ok"]


def test_punch_cli_in_both_worlds_agrees():
    sim = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--world", "sim", "--nat-b", "symmetric",
                          "--format", "json"], capture_output=True, text=True, timeout=60)
    assert sim.returncode == 0, sim.stderr
    assert json.loads(sim.stdout)["direct"] is False
    need_netns()
    real = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--world", "netns", "--nat-b", "symmetric",
                           "--format", "json"], capture_output=True, text=True, timeout=120)
    assert real.returncode == 0, real.stderr
    row = json.loads(real.stdout)
    assert row["direct"] is False and row["world"] == "netns"


@pytest.mark.parametrize("name", NAMES)
def test_real_run_tells_the_same_facts_live_and_recorded(name):
    """Notebooks compare real_run(...).facts(): it must not depend on which world ran."""
    recorded_run = recorded.real_run(name, live=False)
    assert recorded_run.world == "recorded" and "recording" in recorded_run.sentence
    need_netns()
    need("tcpdump")
    live = recorded.real_run(name, live=True)
    assert live.world == "netns"
    assert live.facts() == recorded_run.facts()


def test_course_notebooks_give_the_same_compared_outputs_from_recordings():
    """CI runs the course with the real lab; this runs the notebooks that have real-lab cells again
    with P2PLAB_WORLD=recorded, as a learner without Linux or root would, under strict nbval."""
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    notebooks = sorted(str(p.relative_to(root)) for p in (root / "course").glob("*.ipynb")
                       if "real_run(" in p.read_text())
    assert len(notebooks) >= 5
    env = {**os.environ, "P2PLAB_WORLD": "recorded"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *notebooks],
                         cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
