"""Real WebRTC in the real lab: Chromium and aiortc open a DataChannel across kernel NATs.

The browser-facing tests run a representative subset of the NAT grid; ``P2PLAB_FULL_GRID=1``
runs all 25 pairs. Every pair must agree with p2plab's own ICE in the simulator
(``p2plab.ice.run_ice``): the same outcome (direct or through the TURN relay) and the same
selected pair's candidate types, and a Chromium pair must take under 15 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from p2plab.nat import PRESETS

from conftest import missing, need, need_netns

BUDGET = 15.0  # seconds per Chromium pair, lab up to lab down
CI_PAIRS = [("full-cone", "restricted-cone"), ("port-restricted-cone", "symmetric"), ("symmetric", "symmetric")]
FULL = os.environ.get("P2PLAB_FULL_GRID") == "1"
PAIRS = [(a, b) for a in PRESETS for b in PRESETS] if FULL else CI_PAIRS


def need_chromium() -> None:
    from p2plab.errors import LabUnavailableError
    from p2plab.webrtc.chromium import find_chromium, require_playwright

    need_netns()
    try:
        find_chromium()
        require_playwright()
    except LabUnavailableError as exc:
        missing(str(exc))


def need_aiortc() -> None:
    from p2plab.errors import LabUnavailableError
    from p2plab.webrtc.aiortc_peer import require_aiortc

    need_netns()
    try:
        require_aiortc()
    except LabUnavailableError as exc:
        missing(str(exc))


def explain(r: dict) -> str:
    """What to look at when a run did not do what a test expects."""
    lines = [f"{m['t']:.3f} {m['from']} {m['kind']} {m['text'][:100]}" for m in r["signalling"]
             if m["kind"] not in ("offer", "answer")]
    return (f"timings {r['timings']}\nstates {r['states']}\nselected {r['selected']}\n"
            f"channels {r.get('channels')}\n" + "\n".join(lines))


def types(sel: dict | None) -> tuple[str | None, str | None]:
    return (sel["local"]["type"], sel["remote"]["type"]) if sel else (None, None)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("nat_a,nat_b", PAIRS, ids=[f"{a}x{b}" for a, b in PAIRS])
def test_chromium_pair_agrees_with_the_simulators_ice(nat_a, nat_b):
    need_chromium()
    from p2plab.ice import run_ice
    from p2plab.webrtc import run_webrtc

    sim = run_ice(nat_a, nat_b)
    r = run_webrtc("chromium", "chromium", nat_a, nat_b, turn=True)
    assert r["connected"], explain(r)
    assert r["direct"] is sim.direct and r["relayed"] is (not sim.direct)
    assert types(r["selected"]) == (sim.local_type, sim.remote_type), (r["selected"], sim.reason)
    # bob, the controlled side, has a working selected pair too; it need not be alice's (each side reports
    # the pair it sends on, and a relayed pair that also succeeded may be bob's while alice's is direct)
    assert r["selected_bob"] and r["selected_bob"]["state"] == "succeeded"
    if r["relayed"]:
        relay = r["selected"]["local"] if r["selected"]["local"]["type"] == "relay" else r["selected"]["remote"]
        assert relay["address"] == "192.0.2.1"  # p2plab's TURN server relayed it
    else:  # the NATs' public addresses, the path between them (a remote prflx address is not shown: webrtc-stats)
        shown = {c["address"] for c in (r["selected"]["local"], r["selected"]["remote"]) if c["type"] != "prflx"}
        assert shown and shown <= {"203.0.113.10", "198.51.100.20"}, r["selected"]
    # the pair table (as chrome://webrtc-internals lists it) marks exactly that pair selected and nominated
    from p2plab.webrtc.chromium import candidate_pairs

    rows = candidate_pairs(r["stats"]["alice"])
    chosen = [row for row in rows if row["selected"]]
    assert len(chosen) == 1 and chosen[0]["type"] == "/".join(types(r["selected"]))
    assert chosen[0]["state"] == "succeeded" and chosen[0]["nominated"] and chosen[0]["responsesReceived"] > 0
    # without mDNS obfuscation each side saw the other's real private address
    assert r["host_candidates_seen"] == {"bob saw alice's": ["192.168.1.10"], "alice saw bob's": ["192.168.0.25"]}
    assert r["timings"]["total"] < BUDGET, r["timings"]


@pytest.mark.timeout(120)
def test_without_turn_a_symmetric_pair_does_not_connect():
    need_chromium()
    from p2plab.webrtc import run_webrtc

    r = run_webrtc("chromium", "chromium", "symmetric", "symmetric", turn=False, timeout=6)
    assert not r["connected"] and not r["direct"]
    assert not any(" typ relay " in m["text"] for m in r["signalling"] if m["kind"] == "candidate")


@pytest.mark.timeout(120)
def test_mdns_hides_host_addresses_from_the_other_side():
    """Chromium's default: host candidates as random .local names; the private address never leaves."""
    need_chromium()
    from p2plab.webrtc import run_webrtc

    r = run_webrtc("chromium", "chromium", "port-restricted-cone", "port-restricted-cone", mdns=True)
    assert r["connected"] and r["direct"], explain(r)
    for seen in r["host_candidates_seen"].values():
        assert seen and all(a.endswith(".local") for a in seen), seen
    sent = "".join(m["text"] for m in r["signalling"])
    assert "192.168.1.10" not in sent and "192.168.0.25" not in sent


@pytest.mark.timeout(180)
@pytest.mark.parametrize("client,peer,nat,turn,direct", [
    ("aiortc", "aiortc", "port-restricted-cone", False, True),
    ("aiortc", "aiortc", "symmetric", True, False),
    ("chromium", "aiortc", "port-restricted-cone", False, True),
    ("chromium", "aiortc", "symmetric", True, False),
    ("aiortc", "chromium", "port-restricted-cone", False, True),
    ("aiortc", "chromium", "symmetric", True, False),
])
def test_aiortc_connects_with_itself_and_with_chromium_both_ways(client, peer, nat, turn, direct):
    need_aiortc()
    if "chromium" in (client, peer):
        need_chromium()
    from p2plab.webrtc import run_webrtc

    r = run_webrtc(client, peer, nat, nat, turn=turn, mdns=True)
    assert r["connected"], explain(r)
    assert r["direct"] is direct and r["relayed"] is (not direct)
    aiortc_side = "alice" if client == "aiortc" else "bob"
    assert r["versions"][aiortc_side].startswith("aiortc ")
    if "chromium" in (client, peer):  # aiortc took the browser's trickled candidates, .local names included
        chromium_side = "bob" if aiortc_side == "alice" else "alice"
        trickled = [m for m in r["signalling"] if m["kind"] == "candidate" and m["from"] == chromium_side]
        assert trickled and any(".local" in m["text"] for m in trickled)
    # aiortc does not trickle: its candidates are all in its SDP
    assert not [m for m in r["signalling"] if m["kind"] == "candidate" and m["from"] == aiortc_side]
    sdp = r["offer"] if client == "aiortc" else r["answer"]
    assert "typ srflx" in sdp and ("typ relay" in sdp) is turn
    if "chromium" in (client, peer):  # the budget of a Chromium pair, lab up to lab down
        assert r["timings"]["total"] < BUDGET, r["timings"]


def _cli(*args: str, env: dict | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2plab", "webrtc", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.timeout(180)
def test_cli_json_and_a_pcap_tshark_decodes(tmp_path):
    need_chromium()
    need("tshark", "tcpdump")
    pcap = tmp_path / "webrtc.pcap"
    out = _cli("--client", "chromium", "--nat-a", "symmetric", "--nat-b", "symmetric", "--turn",
               "--format", "json", "--pcap", str(pcap))
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["connected"] and row["relayed"] and not row["direct"]
    assert "relay" in types(row["selected"]) and row["time"] > 0
    assert pcap.stat().st_size > 1000
    frames = subprocess.run(["tshark", "-n", "-r", str(pcap), "-T", "fields", "-e", "frame.protocols"],
                            capture_output=True, text=True, timeout=60)
    assert frames.returncode == 0, frames.stderr
    protos = frames.stdout.split()
    assert any(":stun" in p for p in protos) and any(":dtls" in p for p in protos)
    assert len(protos) > 100


@pytest.mark.timeout(120)
def test_cli_text_direct_across_port_restricted_cones():
    need_chromium()
    out = _cli("--client", "chromium", "--nat-a", "port-restricted-cone", "--nat-b", "port-restricted-cone")
    assert out.returncode == 0, out.stderr
    assert "connected directly" in out.stdout and "srflx 203.0.113.10:" in out.stdout


@pytest.mark.timeout(180)
def test_a_chromium_pair_in_a_rootless_lab():
    """P2PLAB_ROOTLESS=1: the lab lives in a user namespace, Chromium is entered there with nsenter."""
    need_chromium()
    from p2plab.netns import rootless

    ok, why = rootless.possible()
    if not ok:
        missing(f"needs unprivileged user namespaces: {why}")
    env = {**os.environ, "P2PLAB_ROOTLESS": "1"}
    out = _cli("--client", "chromium", "--nat-a", "port-restricted-cone", "--nat-b", "symmetric", "--turn",
               "--format", "json", env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["connected"] and row["relayed"], row
    assert types(row["selected"]) == ("relay", "prflx")


def test_cli_says_clearly_what_is_missing(monkeypatch, capsys):
    """No traceback: Chromium, playwright, aiortc or the lab missing each give one line with the fix."""
    from p2plab import __main__ as cli
    from p2plab.webrtc import chromium

    monkeypatch.setattr(chromium, "CHROMIUM_CANDIDATES", ("no-such-chromium-here",))
    assert cli.main(["webrtc", "--client", "chromium"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Chromium is not installed") and "chromium" in err.splitlines()[0]
    assert "Traceback" not in err

    monkeypatch.setitem(sys.modules, "aiortc", None)  # import aiortc raises ImportError
    assert cli.main(["webrtc", "--client", "aiortc"]) == 2
    err = capsys.readouterr().err
    assert "aiortc is not installed" in err and "pip install" in err

    import p2plab.netns

    monkeypatch.setitem(sys.modules, "aiortc", __import__("types").ModuleType("aiortc"))
    monkeypatch.setattr(p2plab.netns, "available", lambda quick=False: (False, "no namespaces on this planet"))
    assert cli.main(["webrtc", "--client", "aiortc", "--peer", "aiortc"]) == 2
    err = capsys.readouterr().err
    assert "real Linux lab, which cannot run here: no namespaces on this planet" in err


def test_bad_choices_are_refused():
    from p2plab.errors import ConfigurationError
    from p2plab.webrtc import run_webrtc

    with pytest.raises(ConfigurationError, match="unknown WebRTC stack 'firefox'"):
        run_webrtc("firefox")
    with pytest.raises(ConfigurationError, match="unknown NAT preset 'leaky'"):
        run_webrtc("chromium", nat_a="leaky")
    out = _cli("--nat-a", "leaky")
    assert out.returncode == 2 and "invalid choice: 'leaky'" in out.stderr


@pytest.mark.timeout(180)
def test_a_capture_of_aiortc_and_chromium_decodes_in_tshark(tmp_path):
    """aiortc speaks DTLS 1.2, so here tshark sees the whole handshake and the records after it."""
    need_aiortc()
    need_chromium()
    need("tshark", "tcpdump")
    from test_webrtc_recorded import check_tshark

    from p2plab.webrtc import run_webrtc

    r = run_webrtc("aiortc", "chromium", "port-restricted-cone", "port-restricted-cone", pcap=tmp_path / "x.pcap")
    assert r["connected"] and r["direct"]
    counts = check_tshark(tmp_path / "x.pcap", r["trace"])
    assert counts["dtls_handshake"] >= 4
    assert "DTLS ApplicationData" in set(r["trace"].df["summary"])  # DTLS 1.2 records: the SCTP inside
    versions = subprocess.run(["tshark", "-n", "-r", str(tmp_path / "x.pcap"), "-Y", "dtls.handshake.type == 2",
                               "-T", "fields", "-e", "dtls.handshake.version"], capture_output=True, text=True)
    assert "0xfefd" in versions.stdout  # the ServerHello: DTLS 1.2
