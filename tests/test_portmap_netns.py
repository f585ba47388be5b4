"""Port mapping in the real Linux lab: p2plab's PCP/NAT-PMP server on a lab router installs nftables
rules that real clients (Debian's natpmpc) and p2plab's client use, removes them on expiry and delete;
Debian's miniupnpd refuses (its external address is reserved) and p2plab's client says so; a mapping
makes the symmetric x symmetric punch direct (also rootless, as an ordinary user would run it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from p2plab import topology

from conftest import missing, need, need_netns

pytestmark = pytest.mark.timeout(240)
GW = "192.168.1.1"


def _lab():
    from p2plab.netns import Lab

    return Lab(topology.punch("symmetric", "symmetric"))


def _portmap_rules(lab) -> str:
    out = lab.nft_ruleset("nat-a")
    return out.split("table ip p2plab-portmap", 1)[1] if "table ip p2plab-portmap" in out else ""


def test_natpmpc_gets_a_mapping_from_the_lab_router_and_it_expires():
    need_netns()
    need("natpmpc")
    from p2plab.portmap import lab as pml

    with _lab() as lab:
        srv = pml.start(lab, "nat-a")
        r = lab.exec("alice", ["natpmpc", "-g", GW, "-a", "5000", "5000", "udp", "2"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Public IP address : 203.0.113.10" in r.stdout
        assert "Mapped public port 5000 protocol UDP to local port 5000" in r.stdout
        rules = _portmap_rules(lab)
        assert "udp dport 5000 dnat to 192.168.1.10:5000" in rules
        assert "udp sport 5000 snat to 203.0.113.10:5000" in rules
        # bob, who alice never sent to, reaches her through the symmetric NAT now
        got = lab.start_python("alice", "import socket\ns=socket.socket(2,2)\ns.bind(('192.168.1.10',5000))\n"
                                        "s.settimeout(5)\nresult=s.recvfrom(100)[0]")
        time.sleep(0.3)
        lab.exec("bob", ["python3", "-c", "import socket;socket.socket(2,2).sendto(b'hi alice',('203.0.113.10',5000))"])
        assert got.result(10) == b"hi alice"
        time.sleep(2.5)  # lifetime 2 s: the server removes the rules (and the flow's conntrack entry) by itself
        assert "dnat" not in _portmap_rules(lab)
        late = lab.start_python("alice", "import socket\ns=socket.socket(2,2)\ns.bind(('192.168.1.10',5000))\n"
                                         "s.settimeout(1.5)\ntry:\n    result=s.recvfrom(100)[0]\n"
                                         "except OSError:\n    result=None")
        time.sleep(0.3)
        lab.exec("bob", ["python3", "-c", "import socket;socket.socket(2,2).sendto(b'late',('203.0.113.10',5000))"])
        assert late.result(10) is None  # the mapping is gone: bob's packet no longer reaches alice
        log = pml.stop(lab, srv)["log"]
    assert any("natpmp mapped 192.168.1.10:5000 -> 203.0.113.10:5000 for 2 s" in line for line in log)
    assert any("expired" in line for line in log)


def test_p2plab_client_maps_and_deletes_with_pcp_and_natpmp():
    need_netns()
    from p2plab.portmap import lab as pml

    with _lab() as lab:
        srv = pml.start(lab, "nat-a")
        for proto, port in (("pcp", 6000), ("natpmp", 6001)):
            res = lab.run_python("alice", pml.request, proto, GW, port, client_ip=topology.ALICE_IP, delete=True)
            kinds = [e["kind"] for e in res["events"]]
            assert kinds == ["mapped", "deleted"], res["events"]
            assert res["external"] == ["203.0.113.10", port]
        assert "dnat" not in _portmap_rules(lab)
        pml.stop(lab, srv)


def test_miniupnpd_refuses_and_p2plab_says_why():
    need_netns()
    need("miniupnpd", "natpmpc")
    from p2plab.portmap import lab as pml

    with _lab() as lab:
        proc = pml.start_miniupnpd(lab, "nat-a")
        results = {p: lab.run_python("alice", pml.request, p, GW, 5000, client_ip=topology.ALICE_IP, wait=3.0)
                   for p in ("pcp", "natpmp")}
        r = lab.exec("alice", ["natpmpc", "-g", GW, "-a", "5000", "5000", "udp", "60"])
        log = proc.log()
    assert "Reserved / private IP address 203.0.113.10" in log and "Port forwarding is impossible" in log
    fails = {p: [e for e in res["events"] if e["kind"] == "failed"][0] for p, res in results.items()}
    assert fails["natpmp"]["result"] == "NETWORK_FAILURE" and fails["natpmp"]["code"] == 3
    assert fails["pcp"]["result"] == "NO_RESOURCES" and fails["pcp"]["code"] == 8
    for f in fails.values():
        assert "behind another NAT" in f["message"]
    assert r.returncode != 0 and "FAILED" in r.stdout


@pytest.mark.parametrize("rootless", [False, True])
def test_punch_cli_portmap_in_the_lab(rootless):
    need_netns()
    env = dict(os.environ)
    if rootless:
        from p2plab.netns import rootless as rl

        ok, why = rl.possible()
        if not ok:
            missing(f"rootless labs need unprivileged user namespaces: {why}")
        env["P2PLAB_ROOTLESS"] = "1"

    def run(*extra):
        out = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--world", "netns", "--nat-a", "symmetric",
                              "--nat-b", "symmetric", "--format", "json", *extra], capture_output=True, text=True,
                             timeout=120, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout)

    row = run("--portmap", "pcp")
    assert row["direct"] is True and row["portmap"]["ok"] and row["portmap"]["external"] == ["203.0.113.10", 5000]
    if not rootless:
        assert run()["direct"] is False
        assert run("--portmap", "natpmp")["direct"] is True


def test_portmap_recording_decodes_in_tshark_and_matches_a_fresh_run(tmp_path):
    """data/portmap-pcp.*: tshark dissects every PCP packet (no malformed frames) and a fresh run in the
    real lab sends the same kinds of packets with the same outcome."""
    from p2plab import recorded

    need("tshark")
    pcap = recorded.DATA / "portmap-pcp.pcap"
    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "portcontrol", "-T", "fields", "-e", "portcontrol.opcode",
                          "-e", "portcontrol.result_code", "-e", "portcontrol.map.internal_port",
                          "-e", "portcontrol.map.rsp_assigned_external_port"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert len(rows) == 4 and all(r[0] == "1" and r[2] == "5000" for r in rows)
    assert [r[1] for r in rows if r[1]] == ["0", "0"] and {r[3] for r in rows if r[3]} == {"5000"}
    bad = subprocess.run(["tshark", "-r", str(pcap), "-Y", "_ws.malformed"], capture_output=True, text=True, timeout=60)
    assert bad.stdout.strip() == ""
    assert recorded.outcome("portmap-pcp")["direct"] is True
    need_netns()
    need("tcpdump")
    recorded.record(["portmap-pcp"], out=tmp_path)
    fresh, shipped = recorded.load("portmap-pcp", data=tmp_path), recorded.load("portmap-pcp")
    def kinds(trace):  # ICMP port unreachable for punches that arrive after a socket closed depends on timing
        return {s[2] for s in recorded.shape(trace) if s[1] == "sent" and s[0] in ("alice", "bob", "server")
                and not s[2].startswith("ICMP")}

    # which peer punches first (and so whether the other still needs to) depends on timing: compare the
    # kinds of packet the hosts sent, and check the one that matters, alice's PCP request, by sender
    assert kinds(fresh) == kinds(shipped)
    assert ("alice", "sent", "UDP 60") in recorded.shape(fresh)  # the 60-byte PCP MAP request
    assert recorded.outcome("portmap-pcp", data=tmp_path)["direct"] is True


def test_cgn_recording_shows_the_mapping_on_the_wrong_box():
    from p2plab import recorded

    out = recorded.outcome("portmap-cgn")
    assert out["direct"] is False and "100.64.1.2" in out["reason"] and "wrong box" in out["reason"]
    df = recorded.load("portmap-cgn").df
    to_shared = df[(df["node"] == "internet") & (df["dst"] == "100.64.1.2") & (df["action"] == "dropped")]
    assert len(to_shared) > 0  # bob's punches to the advertised mapping die in the core: no route
