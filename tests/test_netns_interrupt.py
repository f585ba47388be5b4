"""Interrupting a punch (Ctrl+C in a terminal, "interrupt kernel" in Jupyter) leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from p2plab import systools
from p2plab.netns.cleanup import lab_namespaces

from conftest import need, need_netns


@pytest.mark.needs_root  # watches another process's lab, which only root labs (shared /run/netns) allow
def test_sigint_mid_punch_removes_namespaces_tables_and_processes():
    need_netns()
    need("tcpdump")
    before = set(lab_namespaces())
    script = textwrap.dedent("""
        import sys
        from p2plab.netns import run_punch
        print("START", flush=True)
        run_punch("port-restricted-cone", "symmetric", give_up_after=30.0)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "START"
    deadline = time.time() + 20
    while time.time() < deadline and not (set(lab_namespaces()) - before):
        time.sleep(0.05)
    started = set(lab_namespaces()) - before
    assert started, "the punch never built its lab"
    time.sleep(1.0)  # mid-punch: peers are sending
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode != 0  # it was interrupted, not finished
    assert not set(lab_namespaces()) & started
    # nft tables live inside the lab's namespaces, so they went with them; nothing in the root namespace:
    assert "p2plab-" not in subprocess.run([systools.require("ip"), "-o", "link"], capture_output=True, text=True).stdout
    nft = systools.require("nft")
    assert "p2plab" not in subprocess.run([nft, "list", "tables"], capture_output=True, text=True).stdout
    ids = {ns.split("-")[1] for ns in started}  # p2plab-<lab id>-<node>
    deadline = time.time() + 5  # processes that were killed may take a moment to be reaped
    while True:
        left = [line for line in subprocess.run(["pgrep", "-af", "p2plab"], capture_output=True,
                                                text=True).stdout.splitlines()
                if any(f"p2plab-{i}-" in line for i in ids) and int(line.split()[0]) != os.getpid()]
        if not left or time.time() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes of the interrupted lab still running: {left}"
