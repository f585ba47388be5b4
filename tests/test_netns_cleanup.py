"""Nothing a lab creates outlives it: exceptions, SIGTERM, kill -9 (next start), and 'lab down --all'."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from p2plab import systools, topology

from conftest import need, need_netns

pytestmark = pytest.mark.timeout(120)

# Labs of other processes share /run/netns only as root; a rootless lab is private to the process
# that made it and dies with it (tests/test_netns_rootless.py checks that instead).
ROOT_LABS = pytest.mark.needs_root

HOLDER = """
import sys, time
from p2plab import systools, topology
from p2plab.netns import Lab
lab = Lab(topology.punch(), capture={capture}).start()
lab.popen("alice", ["sleep", "300"])
print(lab.id, flush=True)
time.sleep(300)
"""


def root_is_clean(lab_id: str) -> None:
    from p2plab.netns import cleanup

    assert not cleanup.lab_namespaces(lab_id)
    assert "p2plab-" not in subprocess.run([systools.require("ip"), "-o", "link"], capture_output=True, text=True).stdout
    if os.geteuid() == 0:  # an ordinary user cannot list (or make) nftables tables in the root namespace
        nft = systools.require("nft")
        assert "p2plab" not in subprocess.run([nft, "list", "tables"], capture_output=True, text=True).stdout
    assert not (cleanup.STATE_DIR / f"{lab_id}.json").exists()


def start_holder(capture: bool = False) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER.format(capture=capture)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lab_id = proc.stdout.readline().strip()
    assert lab_id, proc.stderr.read()
    return proc, lab_id


def test_exception_inside_with_removes_everything():
    need_netns()
    from p2plab.netns import Lab

    with pytest.raises(RuntimeError), Lab(topology.punch()) as lab:
        lab.popen("alice", ["sleep", "300"])
        raise RuntimeError("learner's bug")
    root_is_clean(lab.id)


@ROOT_LABS
def test_kill_9_leftovers_are_removed_by_the_next_lab_start():
    need_netns()
    need("tcpdump")
    from p2plab.netns import Lab, cleanup

    proc, lab_id = start_holder(capture=True)
    try:
        names = cleanup.lab_namespaces(lab_id)
        assert len(names) == 6
        deadline = time.monotonic() + 5
        while len(cleanup.pids_in_namespaces(names)) < 7 and time.monotonic() < deadline:
            time.sleep(0.02)  # 'ip netns exec' enters the namespace, then becomes 'sleep'
        pids = cleanup.pids_in_namespaces(names)
        assert len(pids) >= 7  # a tcpdump per namespace + sleep
    finally:
        proc.kill()
        proc.wait()
    assert cleanup.lab_namespaces(lab_id) == names  # kill -9 left them behind
    with Lab(topology.direct()) as lab:
        assert lab.id != lab_id
        root_is_clean(lab_id)
        assert not [p for p in pids if cleanup.pid_alive(p)]
    root_is_clean(lab.id)


def test_sigterm_cleans_up():
    need_netns()
    proc, lab_id = start_holder()
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        proc.kill()
    root_is_clean(lab_id)


@ROOT_LABS
def test_a_live_labs_of_another_process_is_left_alone():
    need_netns()
    from p2plab.netns import Lab, cleanup

    proc, lab_id = start_holder()
    try:
        with Lab(topology.direct()):
            assert len(cleanup.lab_namespaces(lab_id)) == 6
    finally:
        proc.terminate()
        proc.wait(10)
    root_is_clean(lab_id)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2plab", *args], capture_output=True, text=True, timeout=60)


@ROOT_LABS
def test_cli_lab_up_exec_down():
    need_netns()
    from p2plab.netns import cleanup

    r = cli("lab", "up", "punch", "--nat-b", "symmetric")
    assert r.returncode == 0, r.stderr
    lab_id = r.stdout.split("lab ", 1)[1].split()[0]
    try:
        assert "p2plab-" + lab_id + "-alice" in r.stdout and "192.168.1.10" in r.stdout
        assert "NAT symmetric" in r.stdout
        rec = json.loads((cleanup.STATE_DIR / f"{lab_id}.json").read_text())
        assert rec["keep"] and rec["nodes"]["alice"] == f"p2plab-{lab_id}-alice"
        # the lab outlives the 'lab up' process, and another lab's start-up sweep leaves it alone
        from p2plab.netns import Lab

        with Lab(topology.direct()):
            pass
        assert len(cleanup.lab_namespaces(lab_id)) == 6
        r = cli("lab", "exec", "alice", "--", "ip", "-4", "-o", "addr")
        assert r.returncode == 0 and "192.168.1.10/24" in r.stdout
        assert cli("lab", "exec", "nobody", "--", "true").returncode == 2
        assert lab_id in cli("lab", "list").stdout
    finally:
        r = cli("lab", "down")
    assert r.returncode == 0 and lab_id in r.stdout
    root_is_clean(lab_id)


@ROOT_LABS
def test_cli_lab_down_all_removes_leftovers_of_killed_processes():
    need_netns()
    from p2plab.netns import cleanup

    proc, lab_id = start_holder()
    try:
        assert len(cleanup.lab_namespaces(lab_id)) == 6
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    r = cli("lab", "down", "--all")
    assert r.returncode == 0 and lab_id in r.stdout
    root_is_clean(lab_id)
    time.sleep(0.1)
    assert "no labs" in cli("lab", "down", "--all").stdout
