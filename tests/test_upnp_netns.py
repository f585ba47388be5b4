"""UPnP IGD in the real Linux lab, against Debian's miniupnpd (no one here wrote it).

As configured the lab router's external address is reserved (RFC 5737), so miniupnpd refuses:
p2plab's client discovers it, reads its description and reports the refusal (UPnP error 501, an
empty external address) as the carrier-grade NAT lesson. With ``ext_perform_stun`` miniupnpd asks
the lab's STUN server whether its WAN is reachable, takes the address STUN reports and grants the
mapping: its nftables rule appears and the kernel forwards Bob's packet to Alice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from p2plab import topology

from conftest import need, need_netns

pytestmark = pytest.mark.timeout(240)
LAN, GW, ALICE = "192.168.1.0/24", "192.168.1.1", topology.ALICE_IP
DATA = Path(__file__).parent / "data" / "miniupnpd-2.3.1"


def _lab():
    from p2plab.netns import Lab

    return Lab(topology.punch("symmetric", "symmetric"))


def _miniupnpd_rules(lab) -> str:
    from p2plab.portmap.lab import MINIUPNPD_TABLE

    out = lab.nft_ruleset("nat-a")
    return out.split(f"table inet {MINIUPNPD_TABLE}", 1)[1] if MINIUPNPD_TABLE in out else ""


def test_miniupnpd_refuses_upnp_and_p2plab_says_why():
    need_netns()
    need("miniupnpd")
    from p2plab.portmap import igd, upnp
    from p2plab.portmap import lab as pml

    with _lab() as lab:
        proc = pml.start_miniupnpd(lab, "nat-a", upnp=True)
        out = lab.run_python("alice", igd.map_port, 5000, client_ip=ALICE, lan=LAN, gateway=GW)
        raw = lab.run_python("alice", igd.transcript, ALICE, LAN, GW,
                             [("GetExternalIPAddress", []),
                              ("AddPortMapping", upnp.add_port_mapping_args(5000, "UDP", 5000, ALICE))])
        rules = _miniupnpd_rules(lab)
        log = proc.log()
    assert "Reserved / private IP address 203.0.113.10" in log and "Port forwarding is impossible" in log
    kinds = [e["kind"] for e in out["events"]]
    assert kinds == ["found", "described", "external-ip", "failed"], out["events"]
    found, described, ext, failed = out["events"]
    assert found["location"] == f"http://{GW}:{pml.MINIUPNPD_HTTP_PORT}/rootDesc.xml"
    assert "MiniUPnPd/2.3.1" in found["server"] and described["service"] == upnp.WANIP_2
    assert ext["external_ip"] == ""
    assert failed["code"] == 501 and failed["result"] == "Action Failed" and failed["stage"] == "AddPortMapping"
    assert "UPnP error 501" in failed["message"] and "carrier-grade NAT" in failed["message"]
    assert out["state"] == "failed" and out["external"] is None
    assert "dnat" not in rules  # nothing was installed
    # the refusal is byte for byte what tests/data holds (test_upnp.py decodes those bytes)
    assert raw["description"] == (DATA / "rootDesc.xml").read_bytes()
    assert raw["calls"][0]["response"] == (DATA / "GetExternalIPAddress-reserved.xml").read_bytes()
    assert raw["calls"][1]["status"] == 500
    assert raw["calls"][1]["response"] == (DATA / "AddPortMapping-501.xml").read_bytes()


def test_miniupnpd_with_stun_grants_a_mapping_the_kernel_uses():
    need_netns()
    need("miniupnpd")
    from p2plab.portmap import igd, upnp
    from p2plab.portmap import lab as pml

    with _lab() as lab:
        _, stun = pml.start_stun(lab)
        proc = pml.start_miniupnpd(lab, "nat-a", upnp=True, stun=stun)
        out = lab.run_python("alice", igd.map_port, 5000, client_ip=ALICE, lan=LAN, gateway=GW)
        rules = _miniupnpd_rules(lab)
        got = lab.start_python("alice", "import socket\ns=socket.socket(2,2)\ns.bind(('192.168.1.10',5000))\n"
                                        "s.settimeout(5)\nresult=s.recvfrom(100)[0]")
        time.sleep(0.3)
        lab.exec("bob", ["python3", "-c", "import socket;socket.socket(2,2).sendto(b'hi alice',('203.0.113.10',5000))"])
        received = got.result(10)
        more = lab.run_python("alice", igd.transcript, ALICE, LAN, GW, [
            ("AddPortMapping", upnp.add_port_mapping_args(5001, "UDP", 5001, "192.168.1.99")),
            ("AddPortMapping", upnp.add_port_mapping_args(80, "TCP", 8080, ALICE)),
            ("DeletePortMapping", upnp.delete_port_mapping_args(5000, "UDP"))])
        after = _miniupnpd_rules(lab)
        log = proc.log()
    assert "Port forwarding is now enabled" in log, log[-3000:]
    assert [e["kind"] for e in out["events"]] == ["found", "described", "external-ip", "mapped"], out["events"]
    assert out["external"] == ["203.0.113.10", 5000] and out["events"][-1]["warning"] == ""
    assert "th dport 5000 dnat ip to 192.168.1.10:5000" in rules
    assert received == b"hi alice"  # bob, whom alice never contacted, got through the symmetric NAT
    codes = [(c["action"], c["status"]) for c in more["calls"]]
    assert codes == [("AddPortMapping", 500), ("AddPortMapping", 500), ("DeletePortMapping", 200)]
    assert more["calls"][0]["response"] == (DATA / "AddPortMapping-718.xml").read_bytes()  # secure mode
    assert more["calls"][1]["response"] == (DATA / "AddPortMapping-606.xml").read_bytes()  # its allow rules
    assert "dnat" not in after  # DeletePortMapping removed the rule


@pytest.mark.parametrize("rootless", [False, True])
def test_punch_cli_with_upnp_is_direct(rootless):
    import json
    import os
    import subprocess
    import sys

    from conftest import missing

    need_netns()
    need("miniupnpd")
    env = dict(os.environ)
    if rootless:
        from p2plab.netns import rootless as rl

        ok, why = rl.possible()
        if not ok:
            missing(f"rootless labs need unprivileged user namespaces: {why}")
        env["P2PLAB_ROOTLESS"] = "1"
    out = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--world", "netns", "--nat-a", "symmetric",
                          "--nat-b", "symmetric", "--portmap", "upnp", "--format", "json"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    row = json.loads(out.stdout)
    assert row["direct"] is True, row["reason"]
    assert row["portmap"]["protocol"] == "upnp" and row["portmap"]["ok"]
    assert row["portmap"]["external"] == ["203.0.113.10", 5000]
    assert row["reason"].startswith("alice's router granted her a UPnP IGD mapping 203.0.113.10:5000")


def test_punch_with_upnp_refused_is_not_direct_and_says_why():
    need_netns()
    need("miniupnpd")
    from p2plab.netns import run_punch

    res = run_punch("symmetric", "symmetric", portmap="upnp", upnp_stun=False, capture=False)
    pm = res["portmap"]
    assert res["direct"] is False
    assert pm["ok"] is False and pm["result"] == "Action Failed" and pm["code"] == 501
    assert "UPnP error 501" in res["reason"] and "carrier-grade NAT" in res["reason"]
    assert any("Port forwarding is impossible" in line for line in pm["server_log"])


def test_upnpc_maps_through_p2plabs_own_igd():
    """Debian's upnpc (miniupnpc) against p2plab's IGD responder on the lab router: it maps, lists
    and deletes; the mapping becomes nftables rules the kernel uses; refusals carry the spec's codes.
    upnpc needs -i: it calls an IGD whose external address is reserved "not connected" (its own
    carrier-grade NAT check) and stops unless told to go on."""
    need_netns()
    need("upnpc")
    from p2plab.portmap import lab as pml

    def upnpc(*args):
        r = lab.exec("alice", ["upnpc", *args], timeout=30)
        return r.returncode, r.stdout + r.stderr

    with _lab() as lab:
        srv = pml.start(lab, "nat-a", upnp_port=5000)
        rc, plain = upnpc("-s")
        rc_a, added = upnpc("-i", "-a", ALICE, "5000", "5000", "UDP", "60")
        rules = lab.nft_ruleset("nat-a")
        got = lab.start_python("alice", "import socket\ns=socket.socket(2,2)\ns.bind(('192.168.1.10',5000))\n"
                                        "s.settimeout(5)\nresult=s.recvfrom(100)[0]")
        time.sleep(0.3)
        lab.exec("bob", ["python3", "-c", "import socket;socket.socket(2,2).sendto(b'hi alice',('203.0.113.10',5000))"])
        received = got.result(10)
        _, listed = upnpc("-i", "-l")
        _, other = upnpc("-i", "-a", "192.168.1.99", "5001", "5001", "UDP")
        rc_d, deleted = upnpc("-i", "-d", "5000", "UDP")
        _, again = upnpc("-i", "-d", "5000", "UDP")
        after = lab.nft_ruleset("nat-a")
        log = pml.stop(lab, srv)["log"]
    assert "Found a (not connected?) IGD : http://192.168.1.1:5000/ctl/IPConn" in plain
    assert "No valid UPNP Internet Gateway Device found" in plain  # without -i: the reserved address
    assert rc_a == 0 and "external 203.0.113.10:5000 UDP is redirected to internal 192.168.1.10:5000" in added
    assert "udp dport 5000 dnat to 192.168.1.10:5000" in rules
    assert received == b"hi alice"
    assert "UDP  5000->192.168.1.10:5000  'p2plab upnp'" in listed
    assert "failed with code 718 (ConflictInMappingEntry)" in other
    assert rc_d == 0 and "UPNP_DeletePortMapping() returned : 0" in deleted
    assert "failed with code : 714" in again
    assert "dport 5000 dnat" not in after
    assert any("upnp mapped 192.168.1.10:5000 -> 203.0.113.10:5000 for 60 s" in line for line in log)
