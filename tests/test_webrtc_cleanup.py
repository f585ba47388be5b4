"""Nothing of a WebRTC run is left behind, even when the process that owns it is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_webrtc import need_chromium


def chromium_by_lab() -> dict[str, list[int]]:
    """Chromium processes (browser, zygotes, renderers, GPU, network service) by the lab id in their
    command line (their profile is ``/tmp/p2plab-<id>-.../chromium-profile-<host>``)."""
    import re

    out: dict[str, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or b"chromium" not in argv[0]:
            continue
        m = re.search(rb"p2plab-([0-9a-f]{4})-[^/]*/chromium-profile-", b" ".join(argv))
        if m:
            out.setdefault(m.group(1).decode(), []).append(int(proc.name))
    return out


@pytest.mark.timeout(120)
def test_sigkill_of_the_owner_leaves_no_browser_and_no_lab():
    need_chromium()
    from p2plab.netns import cleanup, rootless

    before = set(chromium_by_lab())
    script = textwrap.dedent("""
        from p2plab.webrtc import run_webrtc
        print("START", flush=True)
        run_webrtc("chromium", "chromium", "symmetric", "symmetric", turn=False, timeout=60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "START"
    deadline = time.time() + 40
    lab = None
    while time.time() < deadline:  # both browsers up: a network service per browser at least
        running = {k: v for k, v in chromium_by_lab().items() if k not in before}
        if running and max(len(v) for v in running.values()) >= 6:
            lab = max(running, key=lambda k: len(running[k]))
            break
        time.sleep(0.2)
    assert lab, f"the run never started its browsers: {proc.stderr.read() if proc.poll() is not None else ''}"
    time.sleep(1.0)  # mid-ICE: the checks toward the symmetric NATs are failing, slowly
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.time() + 15
    while chromium_by_lab().get(lab) and time.time() < deadline:
        time.sleep(0.2)
    assert not chromium_by_lab().get(lab), f"chromium processes of lab {lab} still run after SIGKILL of its owner"
    if not rootless.wanted():  # root labs live in /run/netns until the next sweep removes the dead owner's
        cleanup.sweep()
        assert not cleanup.lab_namespaces(lab)
        assert not [p for p in Path("/tmp").glob(f"p2plab-{lab}-*") if p.is_dir()]
