"""The recorded browser: data/webrtc-*.* (direct, relayed, mdns, cone-symmetric, prc-symmetric) load, decode in
tshark, and still match a fresh run of two Chromiums in the real lab.

The generic checks of every recording (it loads; tshark reads it; ``real_run`` tells the same facts
live and recorded) run for these two in tests/test_recorded.py; here: what a browser's capture holds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from p2plab import recorded

from conftest import need, need_netns

NAMES = ["webrtc-direct", "webrtc-relayed", "webrtc-mdns", "webrtc-cone-symmetric", "webrtc-prc-symmetric"]


def _tshark(path: Path, *args: str) -> str:
    out = subprocess.run(["tshark", "-n", "-r", str(path), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def check_tshark(pcap: Path, raw) -> dict[str, int]:
    """tshark decodes a WebRTC capture (``raw``: its Trace): every STUN/TURN message as STUN, every DTLS
    handshake record as DTLS, and no malformed frame. Returns frame counts per protocol."""
    df = raw.df
    frames = _tshark(pcap, "-T", "fields", "-e", "frame.protocols").split()
    assert len(frames) == len(df)
    direct = [p for p in frames if ":icmp:" not in p]  # ICMP errors quote a STUN packet: counted apart
    ours = df[df["protocol"] != "ICMP"]
    assert sum(":stun" in p for p in direct) == ours["protocol"].isin(["STUN", "TURN"]).sum()
    handshakes = int(_tshark(pcap, "-Y", "dtls.record.content_type == 22 && !icmp", "-T", "fields",
                             "-e", "frame.number").count("\n"))
    dtls = int(_tshark(pcap, "-Y", "dtls && !icmp", "-T", "fields", "-e", "frame.number").count("\n"))
    plain = ours["summary"].str.startswith("DTLS") & ~ours["summary"].str.startswith("DTLS encrypted")
    # every DTLS record with a plaintext header is DTLS to tshark too; the encrypted DTLS 1.3 ones may be
    assert plain.sum() <= dtls <= ours["protocol"].eq("DTLS").sum()
    assert handshakes >= ours["summary"].str.startswith("DTLS Handshake").sum() > 0
    # DTLS 1.3 records after the handshake (unified header, RFC 9147) are encrypted; tshark 4.0 shows them
    # as data, newer ones as DTLS. No frame may be malformed; the one complaint allowed is tshark's DTLS
    # reassembly meeting a handshake fragment again ("New fragment overlaps old data (retransmission?)"):
    # the capture holds each packet once per interface it crossed, and retransmitted flights as well.
    bad = _tshark(pcap, "-Y", "(_ws.malformed || _ws.expert.severity >= 0x00800000) && !_ws.malformed.reassembly",
                  "-T", "fields", "-e", "frame.number", "-e", "frame.protocols", "-e", "_ws.expert.message")
    assert bad.strip() == "", f"{pcap.name}: malformed frames:\n{bad[:3000]}"
    odd = _tshark(pcap, "-Y", "_ws.malformed.reassembly && !dtls.handshake", "-T", "fields", "-e", "frame.number")
    assert odd.split() == [], f"{pcap.name}: reassembly errors outside the DTLS handshake: {odd.split()[:20]}"
    return {"frames": len(frames), "stun": sum(":stun" in p for p in direct), "dtls_handshake": handshakes}


@pytest.mark.parametrize("name", NAMES)
def test_tshark_decodes_the_browser_recordings(name):
    need("tshark")
    counts = check_tshark(recorded.DATA / f"{name}.pcap", recorded.load(name))
    assert counts["stun"] > 20 and counts["dtls_handshake"] >= 4


def test_the_recordings_say_what_the_browsers_selected():
    direct, relayed = recorded.outcome("webrtc-direct"), recorded.outcome("webrtc-relayed")
    assert direct["ok"] and direct["direct"] is True and "srflx candidate with bob's srflx" in direct["reason"]
    assert relayed["ok"] and relayed["direct"] is False and "bob's relay candidate" in relayed["reason"]
    # only bob was given the TURN server, so there is one relayed path: alice's NAT mapping to bob's relay
    assert relayed["details"]["selected_bob"]["local"]["type"] == "relay"
    kinds = {k for _, action, k in recorded.shape(recorded.load("webrtc-relayed")) if action == "sent"}
    assert {"TURN Allocate", "TURN ChannelBind", "DTLS Handshake"} <= kinds
    assert not any(k.startswith("TURN") for _, _, k in recorded.shape(recorded.load("webrtc-direct")))
    # the recordings keep what the browsers said: the SDP, each trickled candidate, the selected pair
    for name, out in (("webrtc-direct", direct), ("webrtc-relayed", relayed), ("webrtc-mdns", recorded.outcome("webrtc-mdns"))):
        d = out["details"]
        assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" in d["offer"] and "a=setup:actpass" in d["offer"]
        assert "a=ice-ufrag:" in d["answer"] and "a=fingerprint:sha-256 " in d["answer"]
        lines = [m["text"] for m in d["signalling"] if m["kind"] == "candidate"]
        assert any(" typ srflx " in t for t in lines) and (name != "webrtc-relayed") is (
            not any(" typ relay " in t for t in lines))
        assert d["selected"]["local"]["type"] in out["reason"] and d["selected"]["remote"]["type"] in out["reason"]
        assert d["transport"]["alice"]["dtlsState"] == "connected" and d["transport"]["alice"]["iceRole"] == "controlling"
        chosen = [p for p in d["pairs"] if p["selected"]]
        assert len(chosen) == 1 and chosen[0]["type"] == f"{d['selected']['local']['type']}/{d['selected']['remote']['type']}"


def test_the_recordings_of_one_symmetric_nat_agree_with_the_simulators_ice():
    """Lab 07's exercise compares predictions with these: alice's selected pair in each recording. With one
    symmetric NAT, a full cone opposite connects directly (bob's new mapping is a prflx candidate); a
    port-restricted cone opposite does not, and bob's relay carries it."""
    from p2plab.ice import run_ice

    for name, nats, pair in (("webrtc-cone-symmetric", ("full-cone", "symmetric"), ("srflx", "prflx")),
                             ("webrtc-prc-symmetric", ("port-restricted-cone", "symmetric"), ("srflx", "relay"))):
        out = recorded.outcome(name)
        sel = out["details"]["selected"]
        assert out["ok"] and (sel["local"]["type"], sel["remote"]["type"]) == pair, (name, sel)
        assert out["direct"] is run_ice(*nats, seed=0, record=False).direct


def test_the_recordings_keep_the_selected_pairs_stats_reports():
    """What chrome://webrtc-internals shows for the selected pair: the getStats() reports, kept as they were."""
    for name in NAMES[1:]:
        d = recorded.outcome(name)["details"]
        reports = d["selected_reports"]
        pair, local, remote = reports["candidate-pair"], reports["local-candidate"], reports["remote-candidate"]
        assert reports["transport"]["selectedCandidatePairId"] == pair["id"]
        assert pair["localCandidateId"] == local["id"] and pair["remoteCandidateId"] == remote["id"]
        assert pair["bytesSent"] > 0 and pair["bytesReceived"] > 0 and pair["currentRoundTripTime"] >= 0
        assert (local["candidateType"], remote["candidateType"]) == (d["selected"]["local"]["type"],
                                                                     d["selected"]["remote"]["type"])
    relayed = recorded.outcome("webrtc-relayed")["details"]["selected_reports"]
    assert relayed["remote-candidate"]["candidateType"] == "relay" and relayed["remote-candidate"]["address"] == "192.0.2.1"


def test_with_mdns_the_peer_sees_local_names_and_the_lan_sees_multicast_dns():
    """Chromium's default: each host candidate is a random .local name; the private address stays on the LAN,
    where the browser announces the name with multicast DNS and asks for the peer's, which nobody there knows."""
    need("tshark")
    plain, hidden = recorded.outcome("webrtc-direct")["details"], recorded.outcome("webrtc-mdns")["details"]
    assert plain["host_candidates_seen"] == {"bob saw alice's": ["192.168.1.10"], "alice saw bob's": ["192.168.0.25"]}
    names = hidden["host_candidates_seen"]
    assert all(len(v) == 1 and v[0].endswith(".local") for v in names.values()), names
    said = "".join(m["text"] for m in hidden["signalling"])
    assert "192.168.1.10" not in said and "192.168.0.25" not in said
    alice_name, bob_name = names["bob saw alice's"][0], names["alice saw bob's"][0]
    pcap = recorded.DATA / "webrtc-mdns.pcap"
    rows = _tshark(pcap, "-Y", "mdns", "-T", "fields", "-e", "ip.src", "-e", "ip.dst", "-e", "dns.flags.response",
                   "-e", "dns.qry.name", "-e", "dns.resp.name", "-e", "dns.a").splitlines()
    rows = [r.split("	") for r in rows]
    assert rows and all(r[1] == "224.0.0.251" for r in rows)
    # each browser announces its own name -> its private address, on its own LAN only
    answers = {(r[0], r[4].split(",")[0], r[5]) for r in rows if r[2] in ("1", "True")}
    assert {("192.168.1.10", alice_name, "192.168.1.10"), ("192.168.0.25", bob_name, "192.168.0.25")} <= answers
    # and asks its LAN for the peer's name: no answer can come, the peer is behind another NAT
    questions = {(r[0], r[3]) for r in rows if r[2] in ("0", "False")}
    assert ("192.168.0.25", alice_name) in questions and ("192.168.1.10", bob_name) in questions
    df = recorded.load("webrtc-mdns").df
    mdns = df[(df["dport"] == 5353)]
    assert set(mdns.query("action == 'sent'")["node"]) == {"alice", "bob"}
    assert set(mdns.query("action != 'sent'")["action"]) == {"dropped"}  # the routers do not forward multicast
    # so the host pairs never work, and the browsers still connect through their NATs' mappings
    out = recorded.outcome("webrtc-mdns")
    assert out["direct"] and (hidden["selected"]["local"]["type"], hidden["selected"]["remote"]["type"]) == ("srflx", "srflx")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", NAMES)
def test_browser_recordings_still_match_a_fresh_run(name, tmp_path):
    """Re-record with real Chromiums: the same kinds of packets are sent, with the same outcome."""
    from test_webrtc import need_chromium

    need_netns()
    need("tcpdump", "tshark")
    need_chromium()
    recorded.record([name], out=tmp_path)
    fresh, shipped = recorded.load(name, data=tmp_path), recorded.load(name)
    # which side sends through which relay varies from run to run (each may pick the other's relay
    # candidate or its own), so compare the kinds of packet sent, not who sent them
    sent = {k for _, action, k in recorded.shape(fresh) if action == "sent"}
    assert sent == {k for _, action, k in recorded.shape(shipped) if action == "sent"}
    for key in ("ok", "direct", "reason"):
        assert recorded.outcome(name, data=tmp_path)[key] == recorded.outcome(name)[key]
    check_tshark(tmp_path / f"{name}.pcap", fresh)
