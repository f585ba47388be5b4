"""The ``portmap-upnp`` recording: miniupnpd refuses (501) while its WAN address looks reserved, grants after
its STUN check, and Bob's datagram reaches Alice through its DNAT rule. The shipped capture decodes in
tshark (SSDP, HTTP with the SOAP bodies, the forwarded UDP) and a fresh run in the real lab (as root and
rootless) tells the same facts; without a lab ``real_run`` loads the recording."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from p2plab import recorded
from p2plab.trace import describe_payload

from conftest import need, need_netns

pytestmark = pytest.mark.timeout(180)
NAME = "portmap-upnp"
PCAP = recorded.DATA / f"{NAME}.pcap"
WARN = 0x00600000  # Wireshark's expert severity "warning" (chat 0x200000, note 0x400000, error 0x800000)


def tshark(*args: str) -> str:
    out = subprocess.run(["tshark", "-n", "-r", str(PCAP), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_recording_tells_the_story():
    meta = recorded.outcome(NAME)
    assert meta["ok"] is True and meta["world"] == "netns"
    d = meta["details"]
    assert d["location"] == "http://192.168.1.1:5555/rootDesc.xml" and "MiniUPnPd/2.3.1" in d["server"]
    calls = [(c["phase"], c["action"], c["http_status"], c["answer"]) for c in d["soap"]]
    assert calls == [
        ("as installed", "GetExternalIPAddress", 200, "NewExternalIPAddress=''"),
        ("as installed", "AddPortMapping", 500, "UPnPError 501 Action Failed"),
        ("after its STUN check", "GetExternalIPAddress", 200, "NewExternalIPAddress='203.0.113.10'"),
        ("after its STUN check", "AddPortMapping", 200, "(no output arguments)")]
    assert "NewExternalPort=5000" in d["soap"][1]["arguments"] and d["soap"][1]["arguments"] == d["soap"][3]["arguments"]
    assert "dport 5000 dnat ip to 192.168.1.10:5000" in d["rule"] and d["external"] == ["203.0.113.10", 5000]
    df = recorded.load(NAME).df
    # the trace names SSDP, and the router's own services are not called drops
    assert (df["summary"] == "SSDP M-SEARCH urn:schemas-upnp-org:device:InternetGatewayDevice:1").any()
    assert (df["summary"] == "TCP SYN").sum() == 12  # nothing lost: 6 connections, seen at alice and at nat-a
    to_router = df[(df["node"] == "nat-a") & (df["dst"] == "192.168.1.1") & (df["dport"] == 5555)]
    assert len(to_router) > 10 and set(to_router["action"]) == {"delivered"}
    # bob's datagram: translated by nat-a to alice, who got it
    hello = df[df["summary"] == "UDP 'hello alice'"]
    assert set(hello[hello["node"] == "nat-a"]["action"]) == {"translated"}
    assert ((hello["node"] == "alice") & (hello["action"] == "delivered") & (hello["dport"] == 5000)).any()


def test_describe_payload_names_ssdp_messages():
    assert describe_payload(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nST: urn:x\r\nMX: 1\r\n\r\n") \
        == ("SSDP", "SSDP M-SEARCH urn:x")
    assert describe_payload(b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n") \
        == ("SSDP", "SSDP NOTIFY ssdp:alive upnp:rootdevice")
    assert describe_payload(b"HTTP/1.1 200 OK\r\nST: urn:y\r\n\r\n")[1] == "SSDP answer urn:y"
    assert describe_payload(b"HTTP/1.1 200 OK\r\n\r\n", 6)[0] == "TCP"  # over TCP it is plain HTTP


def test_tshark_decodes_ssdp_http_soap_and_the_forwarded_udp():
    need("tshark")
    protos = tshark("-T", "fields", "-e", "frame.protocols").split()
    assert len(protos) == len(recorded.load(NAME))
    assert sum(p.endswith(":ssdp") for p in protos) >= 12
    assert any(":http:xml" in p for p in protos)
    assert not any("malformed" in p for p in protos)
    searches = tshark("-Y", "ssdp && ip.dst == 239.255.255.250 && ip.src == 192.168.1.10", "-T", "fields",
                      "-e", "udp.dstport").split()
    assert searches and set(searches) == {"1900"}
    requests = tshark("-Y", "http.request && tcp && ip.src == 192.168.1.10 && ip.dst == 192.168.1.1", "-T",
                      "fields", "-e", "http.request.method", "-e", "http.request.uri", "-e",
                      "http.request.line").splitlines()
    # (each segment is captured at alice and at the router: tshark may decode the second copy as a retransmission)
    assert sum(r.startswith("GET\t/rootDesc.xml\t") for r in requests) >= 2  # one per phase
    soap = [r for r in requests if r.startswith("POST\t/ctl/IPConn\t")]
    assert len(soap) >= 4
    assert sum('SOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"' in r for r in soap) >= 2
    codes = tshark("-Y", "http.response && ip.dst == 192.168.1.10", "-T", "fields", "-e", "http.response.code").split()
    assert "500" in codes and "200" in codes
    fault = tshark("-Y", "http.response.code == 500 && ip.dst == 192.168.1.10", "-T", "fields", "-e",
                   "xml.cdata").split()
    assert "s:Client,UPnPError,501,ActionFailed" in fault
    forwarded = tshark("-Y", "udp.dstport == 5000 && ip.dst == 192.168.1.10 && ip.src == 198.51.100.20",
                       "-T", "fields", "-e", "data.data").split()
    assert bytes.fromhex(forwarded[0]) == b"hello alice"
    severities = [int(v) for v in tshark("-T", "fields", "-e", "_ws.expert.severity").replace(",", " ").split()]
    assert all(v < WARN for v in severities), tshark("-q", "-z", "expert")


def test_without_a_lab_real_run_loads_the_recording():
    env = {**os.environ, "P2PLAB_WORLD": "recorded"}
    code = ("from p2plab import recorded\nr = recorded.real_run('portmap-upnp')\n"
            "print(r.world)\nprint(r.facts())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    world, facts = out.stdout.split("\n", 1)
    assert world == "recorded"
    assert facts.strip() == recorded.real_run(NAME, live=False).facts()
    assert "packet kinds the hosts sent: SSDP M-SEARCH, STUN Binding, TCP ACK, TCP ACK/FIN, TCP SYN, UDP" in facts


@pytest.mark.parametrize("rootless", [False, True])
def test_a_fresh_run_tells_the_recorded_facts(rootless):
    from conftest import missing

    need_netns()
    need("miniupnpd", "tcpdump")
    env = dict(os.environ, P2PLAB_WORLD="netns")
    if rootless:
        from p2plab.netns import rootless as rl

        ok, why = rl.possible()
        if not ok:
            missing(f"rootless labs need unprivileged user namespaces: {why}")
        env["P2PLAB_ROOTLESS"] = "1"
    code = ("from p2plab import recorded\nr = recorded.real_run('portmap-upnp')\n"
            "df = r.trace.df\nown = df[(df.node == 'nat-a') & (df.dst == '192.168.1.1')]\n"
            "print(r.world, sorted(set(own.action)), r.outcome['ok'], (df.summary == 'TCP SYN').sum())\n"
            "print(r.facts())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    head, facts = out.stdout.split("\n", 1)
    # six HTTP connections (two descriptions, four SOAP calls), each SYN seen at alice and at her router:
    # the capture lost nothing in miniupnpd's bursts of SSDP announcements
    assert head == "netns ['delivered'] True 12"
    assert facts.strip() == recorded.real_run(NAME, live=False).facts()
