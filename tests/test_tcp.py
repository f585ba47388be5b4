"""TCP hole punching in the simulator: simultaneous open, listen+connect, silent drops versus RST."""

from __future__ import annotations

import subprocess
import sys

import pytest

from p2plab import sim
from p2plab import topology as topo
from p2plab.errors import ConfigurationError
from p2plab.matrix import DEFAULT_PRESETS
from p2plab.nat import AD, APD, EI, preset
from p2plab.tcp import TcpStack, decode, encode, run_tcp_punch


def _states(conn):
    return [h.split(":")[0] for _, h in conn.history]


def test_simultaneous_open_through_two_cone_nats():
    r = run_tcp_punch()
    assert r.direct and r.how == {"alice": "connect", "bob": "connect"}
    assert "simultaneous open" in r.reason
    assert _states(r.connections["alice"]) == ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED"]
    assert r.as_dict()["transport"] == "tcp" and r.as_dict()["world"] == "sim"


def test_the_peers_learn_each_others_public_endpoint_from_the_server():
    r = run_tcp_punch("symmetric", "full-cone")
    said = [e for _, e in r.bob if e.startswith("the server says")]
    assert len(said) == 1 and "203.0.113.10:" in said[0]
    # the server saw alice's mapping toward itself; her SYN to bob came from another port (symmetric NAT)
    seen_port = int(said[0].rsplit(":", 1)[1])
    assert r.connections["bob"].remote[0] == "203.0.113.10" and r.connections["bob"].remote[1] != seen_port


def test_a_late_peer_still_connects_when_the_nat_drops_the_early_syn_silently():
    r = run_tcp_punch(bob_delay=0.3)
    assert r.direct
    df = r.trace.df
    dropped = df[(df["action"] == "dropped") & (df["node"] == "nat-b")]
    assert len(dropped) == 1 and dropped.iloc[0]["summary"] == "TCP SYN"


def test_a_nat_that_answers_unsolicited_syn_with_rst_kills_a_connect_only_punch():
    rude = preset("port-restricted-cone", tcp_unsolicited="rst")
    r = run_tcp_punch(nat_b=rude, bob_delay=0.3, listen=False)
    assert not r.direct
    assert "connection refused: RST" in r.reason


def test_a_listening_socket_survives_the_rst():
    rude = preset("port-restricted-cone", tcp_unsolicited="rst")
    r = run_tcp_punch(nat_b=rude, bob_delay=0.3)
    assert r.direct and r.how == {"alice": "accept", "bob": "connect"}
    assert any("connection refused: RST" in e for _, e in r.alice)  # her own connect() died first


def test_symmetric_x_full_cone_needs_the_listening_socket():
    only_connect = run_tcp_punch("symmetric", "full-cone", listen=False)
    assert not only_connect.direct
    assert "alice: connection refused: RST from 198.51.100.20:5000" in only_connect.reason
    r = run_tcp_punch("symmetric", "full-cone")
    assert r.direct and r.how == {"alice": "connect", "bob": "accept"}
    assert "bob's listening socket accepted alice's SYN" in r.reason


def test_symmetric_x_port_restricted_fails_even_with_listen_and_connect():
    r = run_tcp_punch("symmetric", "port-restricted-cone")
    assert not r.direct
    assert "nat-a (address-and-port-dependent mapping) gave alice" in r.reason
    assert "alice: still SYN-SENT" in r.reason and "bob: still SYN-SENT" in r.reason


def _direct_expected(x, y) -> bool:
    """Worked out from RFC 4787's knobs, independently of the simulator.

    X's SYN goes to Y's endpoint as the server saw it (Y's mapping toward the server) and leaves X's
    NAT from X's registered endpoint if X maps endpoint-independently, else from a new port. Y's NAT
    lets it in if its filter admits that source on that mapping: EI filtering always; AD filtering
    if Y has sent to X's address on that mapping (Y's own connect() reuses it only under EI mapping);
    APD filtering only if Y sent to exactly X's source (EI mapping on both sides). One direction
    getting in is enough: the listener or the connect() socket on the other side answers it.
    """
    def gets_in(src, dst) -> bool:
        if dst.filtering == EI:
            return True
        if dst.filtering == AD:
            return dst.mapping == EI
        return dst.filtering == APD and dst.mapping == EI and src.mapping == EI

    return gets_in(x, y) or gets_in(y, x)


def test_the_tcp_matrix_follows_from_mapping_and_filtering():
    failed = []
    for a in DEFAULT_PRESETS:
        for b in DEFAULT_PRESETS:
            r = run_tcp_punch(a, b)
            assert r.direct is _direct_expected(preset(a), preset(b)), (a, b, r.reason)
            if not r.direct:
                failed.append((a, b))
    assert len(failed) == 5 and ("symmetric", "port-restricted-cone") in failed
    assert ("symmetric", "full-cone") not in failed and ("restricted-cone", "symmetric") not in failed


def test_two_sockets_share_a_port_only_with_reuse():
    net = sim.Network.build(topo.punch(), seed=0)
    stack = TcpStack(net.host("alice"))
    stack.listen(5000)
    with pytest.raises(ConfigurationError, match="EADDRINUSE.*SO_REUSEADDR/SO_REUSEPORT"):
        stack.connect(5000, (topo.BOB_NAT_IP, 5000), reuse=True)  # the listener did not ask for reuse
    other = TcpStack(net.host("bob"))
    other.listen(5000, reuse=True)
    conn = other.connect(5000, (topo.ALICE_NAT_IP, 5000), reuse=True)
    assert conn.state == "SYN-SENT"
    again = other.connect(5000, (topo.ALICE_NAT_IP, 5000), reuse=True)
    assert again.state == "CLOSED" and again.error.startswith("EADDRNOTAVAIL")


def test_rendezvous_lines_and_bad_input():
    assert decode(encode("PEER", "bob", "198.51.100.20:5000")) == ("PEER", ["bob", "198.51.100.20:5000"])
    with pytest.raises(ConfigurationError, match="expected REGISTER, PEER or HELLO"):
        decode(b"GET / HTTP/1.1\r\n")
    with pytest.raises(Exception, match="unknown NAT preset"):
        run_tcp_punch("nope", "full-cone")


def test_the_protocol_module_does_not_import_the_simulated_world():
    code = "import sys, p2plab.tcp; print('p2plab.sim' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2plab", *args], capture_output=True, text=True, timeout=90)


def test_punch_cli_sim_tcp_and_connect_only():
    import json

    row = json.loads(_cli("punch", "--transport", "tcp", "--nat-a", "symmetric", "--nat-b", "full-cone",
                          "--format", "json").stdout)
    assert row["direct"] is True and row["how"] == {"alice": "connect", "bob": "accept"}
    row = json.loads(_cli("punch", "--transport", "tcp", "--connect-only", "--nat-a", "symmetric", "--nat-b",
                          "full-cone", "--format", "json").stdout)
    assert row["direct"] is False and row["method"] == "connect"
    text = _cli("punch", "--transport", "tcp", "--nat-a", "symmetric", "--nat-b", "port-restricted-cone").stdout
    assert text.startswith("[sim] TCP (listen+connect) symmetric x port-restricted-cone: NO DIRECT PATH")
    bad = _cli("punch", "--transport", "tcp", "--nat-b", "nope")
    assert bad.returncode == 2 and "unknown NAT preset 'nope'" in bad.stderr


def test_matrix_cli_tcp():
    import json

    rows = json.loads(_cli("matrix", "--transport", "tcp", "--format", "json").stdout)
    assert len(rows) == 25 and sum(r["direct"] for r in rows) == 20
    assert all(r["transport"] == "tcp" for r in rows)
