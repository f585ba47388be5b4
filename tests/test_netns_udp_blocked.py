"""Issue 18 item 2 in the real Linux lab: behind a network that lets only TCP to port 443 out, ICE
connects through TURN over TLS on 443 - and without that fallback it fails.

Runs as root and as an ordinary user (the rootless lab)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from p2plab.ice.labrun import run_ice_lab

# isort: off
from conftest import need, need_netns
# isort: on

pytestmark = pytest.mark.timeout(240)


def test_done_when_ice_across_udp_blocked_names_a_tls_relay_pair():
    need_netns()
    need("openssl")
    out = subprocess.run([sys.executable, "-m", "p2plab", "ice", "--world", "netns", "--nat-a", "udp-blocked",
                          "--nat-b", "port-restricted-cone", "--format", "json"],
                         capture_output=True, text=True, timeout=200)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    row = json.loads(out.stdout)
    assert row["world"] == "netns" and row["success"] and row["relayed"] and not row["direct"]
    assert row["local_type"] == "relay"
    assert row["relay_protocol"] in ("tcp", "tls") and row["relay_server"] == "192.0.2.1:443"
    tries = row["turn_attempts"]["alice"]
    # each attempt failed in turn and the last one won: UDP unanswered, the TCP SYN to 3479 dropped, TLS on 443
    assert [(t["transport"], t["ok"]) for t in tries] == [("udp", False), ("tcp", False), ("tls", True)]
    assert "never answered" in tries[0]["why"] and "within" in tries[1]["why"]
    assert tries[2]["started"] >= tries[1]["ended"] >= tries[0]["ended"]
    assert row["time"] >= tries[2]["ended"]  # the fallback's cost is in the time to connect
    # bob's network lets UDP out: his first TURN server answers
    assert row["turn_attempts"]["bob"][0]["ok"] is True


def test_the_fallback_costs_seconds_compared_with_an_open_network():
    need_netns()
    need("openssl")
    easy = run_ice_lab("port-restricted-cone", "port-restricted-cone", capture=False)
    assert easy.success and easy.direct, easy.reason
    blocked = run_ice_lab("udp-blocked", "port-restricted-cone", capture=True)
    assert blocked.success and blocked.relay_protocol == "tls", blocked.reason
    assert blocked.time > easy.time + 2.0  # a UDP timeout (1.5 s) and a TCP connect timeout (1.5 s) before TLS
    assert "TURN over TLS to 192.0.2.1:443" in str(blocked)
    df = blocked.trace.df
    walls = df.query("node == 'nat-a' and action == 'dropped'")["reason"]
    assert walls.str.contains("udp-blocked firewall: only TCP to port 443 may leave").any()
    # the firewall let TCP to 443 through nat-a and nothing else of alice's
    out = df.query("node == 'nat-a' and interface == 'wan' and direction == 'out'")
    assert len(out) and set(out["dport"].astype(int)) == {443}


def test_without_the_tcp_tls_fallback_ice_fails_behind_udp_blocked():
    need_netns()
    need("openssl")
    res = run_ice_lab("udp-blocked", "port-restricted-cone", fallback=False, capture=False, timeout=6.0)
    assert not res.success
    assert "lets no UDP out" in res.reason and "TCP/TLS on port 443" in res.reason
    assert [(t["transport"], t["ok"]) for t in res.alice["turn_attempts"]] == [("udp", False)]
