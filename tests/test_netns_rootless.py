"""Labs without root: everything inside one user namespace per process (P2PLAB_ROOTLESS=1 forces the
rootless path as root; it then has exactly the powers an ordinary user gets in a user namespace)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from p2plab import systools

from conftest import missing, need

pytestmark = pytest.mark.timeout(180)


def _need_userns() -> None:
    need("ip", "nft", "unshare", "nsenter")
    from p2plab.netns import rootless

    ok, why = rootless.possible()
    if not ok:
        missing(f"rootless labs need unprivileged user namespaces: {why}")


def _run(script: str, timeout: float = 120) -> dict:
    env = {**os.environ, "P2PLAB_ROOTLESS": "1"}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_rootless_lab_punches_captures_and_shows_nothing_in_the_root_namespace():
    _need_userns()
    before = subprocess.run([systools.require("ip"), "netns", "list"], capture_output=True, text=True).stdout
    res = _run("""
        import json, subprocess
        from p2plab import topology
        from p2plab import systools
        from p2plab.netns import Lab, run_punch, rootless
        ip = systools.require("ip")
        with Lab(topology.punch()) as lab:
            ok_route = lab.exec("internet", ["ip", "route", "get", "8.8.8.8"]).returncode
            visible = subprocess.run([ip, "netns", "list"], capture_output=True, text=True).stdout
            root_links = subprocess.run([ip, "-o", "link"], capture_output=True, text=True).stdout
            lab_id = lab.id
        good = run_punch("port-restricted-cone", "port-restricted-cone")
        bad = run_punch("port-restricted-cone", "symmetric", give_up_after=1.0)
        df = good["trace"].df
        print(json.dumps({"core_route": ok_route, "visible": f"p2plab-{lab_id}-" in visible,
                          "root_links": f"p2plab-{lab_id}-" in root_links,
                          "good": good["direct"], "bad": bad["direct"], "rows": len(df),
                          "rewrites": int(((df["node"] == "nat-a") & (df["action"] == "translated")).sum()),
                          "holder": rootless.holder().pid, "lab_id": lab_id}))
    """)
    assert res["good"] is True and res["bad"] is False
    assert res["rows"] > 20 and res["rewrites"] >= 2  # captured by p2plab's own capturer, NAT rewrites paired
    assert res["core_route"] != 0  # the core has no default route: nothing leaves the lab
    assert not res["visible"] and not res["root_links"]  # all of it lives in the user namespace
    after = subprocess.run([systools.require("ip"), "netns", "list"], capture_output=True, text=True).stdout
    assert f"p2plab-{res['lab_id']}-" not in before + after  # (other processes' root labs may come and go)
    from p2plab.netns.cleanup import pid_alive

    deadline = time.time() + 5
    while pid_alive(res["holder"]) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(res["holder"])  # the holder died with its process


def test_kill_9_of_the_owner_takes_every_rootless_lab_process_with_it():
    _need_userns()
    env = {**os.environ, "P2PLAB_ROOTLESS": "1"}
    script = textwrap.dedent("""
        import sys, time
        from p2plab import topology
        from p2plab.netns import Lab, rootless
        lab = Lab(topology.punch()).start()
        p = lab.popen("alice", ["sleep", "300"])
        print(rootless.holder().proc.pid, rootless.holder().pid, flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        unshare_pid, holder_pid = map(int, proc.stdout.readline().split())
        inside = [pid for pid in map(int, subprocess.run(["pgrep", "-f", "sleep 300"], capture_output=True,
                                                          text=True).stdout.split())]
        assert inside
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 5
    pids = [unshare_pid, holder_pid, *inside]
    from p2plab.netns.cleanup import pid_alive

    while time.time() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if pid_alive(p)]


def test_lab_up_without_root_explains_why_it_cannot_stay_up():
    env = {**os.environ, "P2PLAB_ROOTLESS": "1"}
    out = subprocess.run([sys.executable, "-m", "p2plab", "lab", "up", "punch"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "needs root" in out.stderr


def test_two_rootless_labs_at_once_with_conntrack_tables_and_a_symmetric_pair():
    _need_userns()
    need("conntrack")
    res = _run("""
        import json
        from p2plab import topology
        from p2plab.netns import Lab, run_punch
        from p2plab.netns.cleanup import lab_namespaces
        with Lab(topology.punch()) as a, Lab(topology.punch("symmetric", "symmetric")) as b:
            both = len(lab_namespaces(a.id)), len(lab_namespaces(b.id))
            probe = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            probe += "s.bind(('0.0.0.0', 5000)); s.sendto(b'x', ('192.0.2.1', 3478))"
            a.exec("alice", ["python3", "-c", probe])
            b.exec("alice", ["python3", "-c", probe])
            ta, tb = a.conntrack("nat-a"), b.conntrack("nat-a")
            rows = {"a": ta[["inside", "outside"]].values.tolist(), "b": tb[["inside", "outside"]].values.tolist()}
        gone = lab_namespaces(a.id) + lab_namespaces(b.id)
        sym = run_punch("symmetric", "symmetric", give_up_after=1.0)
        print(json.dumps({"both": both, "rows": rows, "gone": gone, "sym": sym["direct"], "ids": [a.id, b.id]}))
    """)
    assert res["ids"][0] != res["ids"][1] and min(res["both"]) >= 6
    assert ["192.168.1.10:5000", "203.0.113.10:5000"] in res["rows"]["a"]  # port kept by the cone NAT
    inside, outside = next(r for r in res["rows"]["b"] if r[0] == "192.168.1.10:5000")
    assert outside.startswith("203.0.113.10:")  # the symmetric NAT's own mapping, read from the kernel
    assert res["gone"] == [] and res["sym"] is False
