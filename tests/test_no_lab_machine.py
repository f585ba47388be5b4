"""A machine where the real lab cannot run (a container that forbids namespaces, macOS, ...).

Each test makes such a machine for a child process: a folder first on PATH holds ``unshare``,
``nsenter`` and ``ip`` programs that refuse exactly as a locked-down container does, and
``P2PLAB_ROOTLESS=1`` makes even root take the ordinary user's path. CI also runs this file as an
ordinary user in a mount namespace where the real programs are masked the same way.

What must hold there: the doctor says netns is unavailable and why, ``punch --world netns`` exits
non-zero with one sentence (no traceback), and every real-lab cell loads its recording, saying why,
unless ``P2PLAB_WORLD=netns`` insists on the real lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from p2plab.recorded import SCENARIOS

REFUSE = '#!/bin/sh\necho "$(basename "$0"): unshare failed: Operation not permitted" >&2\nexit 1\n'


@pytest.fixture(scope="module")
def locked_env(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("locked-bin")
    for tool in ("unshare", "nsenter", "ip"):
        path = folder / tool
        path.write_text(REFUSE)
        path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("P2PLAB_WORLD",)}
    env.update(PATH=f"{folder}:/usr/local/bin:/usr/bin:/bin", P2PLAB_ROOTLESS="1")
    return env


def _python(env: dict[str, str], script: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_doctor_says_the_real_lab_cannot_run_and_why(locked_env):
    out = subprocess.run([sys.executable, "-m", "p2plab", "doctor", "--json"], env=locked_env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {(r["section"], r["name"]): r for r in json.loads(out.stdout)}
    netns = rows[("world", "netns")]
    assert netns["status"] == "no"
    assert "user namespaces" in netns["detail"] and "Operation not permitted" in netns["detail"]
    assert "not installed" not in netns["detail"]  # a refused permission is not a missing tool
    assert netns["fix"] and "recorded world" in netns["fix"]
    assert rows[("world", "recorded")]["status"] == "ok" and rows[("world", "sim")]["status"] == "ok"
    assert "without the real lab" in rows[("system", "this machine")]["detail"]


def test_punch_in_the_netns_world_refuses_in_one_sentence(locked_env):
    out = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--world", "netns", "--nat-a", "symmetric",
                          "--nat-b", "symmetric"], env=locked_env, capture_output=True, text=True, timeout=120)
    said = (out.stdout + out.stderr).strip()
    assert out.returncode != 0
    assert "Traceback" not in said and said.count("\n") == 0
    assert said.startswith("error: the netns world is not available here:") and "user namespaces" in said


def test_every_real_lab_cell_loads_its_recording_and_says_why(locked_env):
    res = _python(locked_env, """
        import json
        from p2plab.recorded import SCENARIOS, load, outcome, real_run, RealRun
        got = {}
        for name in SCENARIOS:
            run = real_run(name)
            same = RealRun(name, load(name), outcome(name), "recorded", "").facts()
            got[name] = [run.world, run.sentence, run.facts() == same]
        print(json.dumps(got))
    """)
    assert set(res) == set(SCENARIOS)
    for name, (world, sentence, same_facts) in res.items():
        assert world == "recorded" and same_facts, name
        assert sentence.startswith(f"This is the recording data/{name}.pcap, made in the real Linux lab")
        assert "cannot run the real lab" in sentence and "user namespaces" in sentence
        assert "To run it live here:" in sentence and sentence.count("\n") == 0


def test_p2plab_world_netns_insists_and_fails_clearly(locked_env):
    res = _python({**locked_env, "P2PLAB_WORLD": "netns"}, """
        import json
        from p2plab.errors import LabUnavailableError
        from p2plab.recorded import real_run
        try:
            real_run("stun")
            print(json.dumps({"raised": None}))
        except LabUnavailableError as exc:
            print(json.dumps({"raised": str(exc)}))
    """)
    assert res["raised"] and res["raised"].startswith("P2PLAB_WORLD=netns insists on the real lab")
    assert "Unset P2PLAB_WORLD" in res["raised"]


def test_a_real_lab_that_fails_mid_run_falls_back_to_the_recording(monkeypatch):
    """Even where the lab can run, a failure inside it (a build step, a tool) gives the recording."""
    from p2plab import recorded, world

    monkeypatch.delenv("P2PLAB_WORLD", raising=False)
    monkeypatch.setattr(world, "choose_world", lambda preferred="sim", fallbacks=None: world.WorldChoice(
        "netns", "netns", "runs in the real lab"))

    def broken():
        raise RuntimeError("nft: Error: Could not process rule: No such file or directory\nmore detail")

    monkeypatch.setattr(recorded.SCENARIOS["stun"], "run", broken)
    run = recorded.real_run("stun")
    assert run.world == "recorded"
    assert "the real lab failed while running it (RuntimeError: nft: Error: Could not process rule" in run.sentence
    assert "more detail" not in run.sentence
    monkeypatch.setenv("P2PLAB_WORLD", "netns")
    with pytest.raises(RuntimeError):
        recorded.real_run("stun")


def test_the_shipped_recordings_exist_for_every_scenario():
    data = Path(__file__).resolve().parents[1] / "data"
    for name in SCENARIOS:
        for ext in ("pcap", "csv", "json"):
            assert (data / f"{name}.{ext}").is_file(), f"data/{name}.{ext} is missing: python -m p2plab record {name}"
