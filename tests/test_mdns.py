"""mDNS host candidates: the codec against real Chromium packets and tshark, the link model, and the
recording (and a fresh run) of two Chromiums hiding their host addresses in the lab."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from p2plab import mdns, recorded
from p2plab._scapy import ip_packet
from p2plab.errors import ConfigurationError

from conftest import need, need_netns


def _mdns_packets(trace):
    out = []
    for i in trace.df.index[trace.df["dport"] == 5353]:
        p = ip_packet(trace.raw(i))
        out.append((trace.df.loc[i], p, mdns.parse(bytes(p["UDP"].payload))))
    return out


def test_candidate_names_are_version4_uuids_under_local():
    a, b = mdns.candidate_name(random.Random(1)), mdns.candidate_name(random.Random(1))
    assert a == b and mdns.is_mdns_name(a) and a.endswith(".local")
    assert mdns.candidate_name(random.Random(2)) != a
    assert not mdns.is_mdns_name("alice.local") and not mdns.is_mdns_name("192.168.1.10")


def test_query_and_announcement_are_what_chromium_sends():
    """Chromium's own packets in the recording: our query for the same name is the same bytes, and our
    announcement carries the same A record (Chromium adds an NSEC record saying there is no AAAA)."""
    rows = _mdns_packets(recorded.load("webrtc-mdns"))
    q = next(p for _, p, m in rows if m["kind"] == "query")
    name = mdns.parse(bytes(q["UDP"].payload))["questions"][0]
    assert mdns.is_mdns_name(name)
    assert mdns.query(name) == bytes(q["UDP"].payload)
    row, a, msg = next(r for r in rows if r[2]["kind"] == "response")
    chrome_a = msg["answers"][0]
    ours = mdns.parse(mdns.announcement(chrome_a[0], chrome_a[2]))["answers"]
    assert ours == [chrome_a] and chrome_a[1:] == ("A", row["src"], 120, True)
    assert [k for _, k, *_ in msg["answers"]] == ["A", "NSEC"]


def test_tshark_reads_our_packets_as_mdns(tmp_path):
    need("tshark")
    from p2plab._scapy import scapy_all

    sc = scapy_all()
    name = mdns.candidate_name(random.Random(0))
    pkts = [sc.IP(mdns.datagram(mdns.query(name), "192.168.0.25")),
            sc.IP(mdns.datagram(mdns.announcement(name, "192.168.1.10"), "192.168.1.10"))]
    path = tmp_path / "m.pcap"
    sc.wrpcap(str(path), pkts)
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "dns.flags.response",
                          "-e", "dns.qry.name", "-e", "dns.resp.name", "-e", "dns.a", "-e", "_ws.malformed"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [ln.split("\t") for ln in out.stdout.rstrip("\n").splitlines()]
    assert lines[0][:2] == ["0", name] and lines[1][2:4] == [name, "192.168.1.10"]
    assert all(ln[-1] == "" for ln in lines)
    as_mdns = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", "mdns"], capture_output=True, text=True, timeout=60)
    assert len(as_mdns.stdout.strip().splitlines()) == 2


def test_parse_rejects_garbage():
    with pytest.raises(ConfigurationError, match="not a DNS message"):
        mdns.parse(b"\x01\x02")
    with pytest.raises(ConfigurationError, match="end in '.local'"):
        mdns.query("example.com")
    with pytest.raises(ConfigurationError, match="not an IPv4 address"):
        mdns.announcement(mdns.candidate_name(random.Random(0)), "fe80::1")


def test_only_the_same_link_resolves_a_name():
    links = mdns.Links()
    links.add("alice", "home-a", "192.168.1.10")
    links.add("carol", "home-a", "192.168.1.11")
    links.add("bob", "home-b", "192.168.0.25")
    lines = ["candidate:1 1 udp 2113937151 192.168.1.10 5000 typ host",
             "candidate:2 1 udp 1677729535 203.0.113.10 5000 typ srflx raddr 192.168.1.10 rport 5000"]
    sent = mdns.hide_host_candidates(lines, links, "alice", random.Random(0))
    assert "192.168.1.10" not in " ".join(sent) and "raddr 0.0.0.0 rport 0" in sent[1]
    name = sent[0].split()[4]
    assert mdns.is_mdns_name(name)
    bob = mdns.resolve_candidates(sent, links, "bob")
    carol = mdns.resolve_candidates(sent, links, "carol")
    assert [r["usable"] for r in bob] == [False, True]
    assert [r["usable"] for r in carol] == [True, True] and carol[0]["resolved"] == "192.168.1.10"
    assert [e["kind"] for e in links.log] == ["announcement", "query", "query"]
    assert links.log[1]["heard by"] == "nobody" and links.log[2]["heard by"] == "alice"
    with pytest.raises(ConfigurationError, match="add it first"):
        links.resolve("mallory", name)
    with pytest.raises(ConfigurationError, match="not an ICE candidate line"):
        mdns.hide_host_candidates(["hello"], links, "alice")


def _check_browser_run(trace, outcome):
    """What a Chromium run with mDNS candidates shows: names in the signalling, each browser announcing its
    own name and asking for the other's on its own LAN only, no answer to any query, an srflx pair."""
    details = outcome["details"]
    host = [s["text"] for s in details["signalling"] if s["kind"] == "candidate" and " typ host" in s["text"]]
    assert host and all(mdns.is_mdns_name(c.split()[4]) for c in host)
    assert not any("192.168." in s["text"] for s in details["signalling"] if s["kind"] == "candidate")
    names = {c.split()[4] for c in host}
    rows = _mdns_packets(trace)
    assert {r["node"] for r, _, _ in rows} <= {"alice", "bob", "nat-a", "nat-b"}  # never past a router
    routers = [r for r, _, _ in rows if r["node"].startswith("nat-")]
    assert routers and all(r["action"] == "dropped" and "never forward" in r["reason"] for r in routers)
    sent = [(r["node"], r["src"], m) for r, _, m in rows if r["action"] == "sent"]
    # every response is a host announcing its own name with its own address: nobody answers anybody else
    owners = {}
    for who, src, m in sent:
        if m["kind"] == "response":
            assert all(a[2] == src for a in m["answers"] if a[1] == "A")
            owners.update({a[0]: who for a in m["answers"]})
    asked = [(who, m["questions"][0]) for who, _, m in sent if m["kind"] == "query"]
    assert asked and all(name in names and owners[name] != who for who, name in asked)
    assert outcome["ok"] and details["selected"]["local"]["type"] == "srflx"


def test_the_recording_shows_names_that_no_one_on_the_other_lan_can_resolve():
    _check_browser_run(recorded.load("webrtc-mdns"), recorded.outcome("webrtc-mdns"))


def test_cli_mdns():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "p2plab", "mdns", *args], capture_output=True, text=True,
                              timeout=60)

    out = run("--format", "json")
    assert out.returncode == 0, out.stderr
    assert [r["usable"] for r in json.loads(out.stdout)["resolved"]] == [False, True]
    out = run("--same-link", "--format", "json")
    assert [r["usable"] for r in json.loads(out.stdout)["resolved"]] == [True, True]
    out = run("--world", "recorded")
    assert out.returncode == 0 and "query" in out.stdout and "224.0.0.251" in out.stdout
    out = run("--world", "moon")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_a_fresh_browser_run_matches_the_recording(tmp_path):
    need_netns()
    need("tcpdump", "chromium")
    pytest.importorskip("playwright")
    recorded.record(["webrtc-mdns"], out=tmp_path)
    _check_browser_run(recorded.load("webrtc-mdns", data=tmp_path), recorded.outcome("webrtc-mdns", data=tmp_path))
