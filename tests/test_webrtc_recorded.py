"""The recorded browser: data/webrtc-direct.* and data/webrtc-relayed.* load, decode in tshark, and
still match a fresh run of two Chromiums in the real lab.

The generic checks of every recording (it loads; tshark reads it; ``real_run`` tells the same facts
live and recorded) run for these two in tests/test_recorded.py; here: what a browser's capture holds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from p2plab import recorded

from conftest import need, need_netns

NAMES = ["webrtc-direct", "webrtc-relayed"]


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
    for name, out in (("webrtc-direct", direct), ("webrtc-relayed", relayed)):
        d = out["details"]
        assert "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" in d["offer"] and "a=setup:actpass" in d["offer"]
        assert "a=ice-ufrag:" in d["answer"] and "a=fingerprint:sha-256 " in d["answer"]
        lines = [m["text"] for m in d["signalling"] if m["kind"] == "candidate"]
        assert any(" typ srflx " in t for t in lines) and (name == "webrtc-direct") is (
            not any(" typ relay " in t for t in lines))
        assert d["selected"]["local"]["type"] in out["reason"] and d["selected"]["remote"]["type"] in out["reason"]
        assert d["transport"]["alice"]["dtlsState"] == "connected" and d["transport"]["alice"]["iceRole"] == "controlling"
        chosen = [p for p in d["pairs"] if p["selected"]]
        assert len(chosen) == 1 and chosen[0]["type"] == f"{d['selected']['local']['type']}/{d['selected']['remote']['type']}"


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
