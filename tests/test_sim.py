"""The simulator: routing, NAT rewrites in traces, drops with reasons, hairpinning, determinism."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2plab import sim, topology
from p2plab.errors import InvalidAddressError, InvalidPortError, TopologyError
from p2plab.packet import Datagram
from p2plab.punch import run_punch


def test_direct_hosts_exchange_udp():
    net = sim.Network.build(topology.direct())
    a = net.host("alice").udp_socket(5000)
    b = net.host("bob").udp_socket(6000)
    a.sendto(b"hello bob", ("198.51.100.9", 6000))
    net.run()
    assert b.received == [(pytest.approx(0.02), b"hello bob", ("203.0.113.7", 5000))]
    assert list(net.trace.df["action"]) == ["sent", "forwarded", "delivered"]


def test_private_address_dies_at_the_core_with_a_reason():
    net = sim.Network.build(topology.one_nat())
    bob = net.host("bob").udp_socket(6000)
    bob.sendto(b"hi", ("192.168.1.10", 5000))
    net.run()
    drop = net.trace.df.iloc[-1]
    assert drop["action"] == "dropped" and drop["node"] == "internet"
    assert "private address (RFC 1918)" in drop["reason"]


def test_nat_rewrite_is_two_linked_rows_and_real_checksummed_bytes():
    net = sim.Network.build(topology.one_nat())
    net.host("alice").udp_socket(5000).sendto(b"x" * 10, ("192.0.2.1", 3478))
    net.run()
    df = net.trace.df
    rows = df.index[df["action"] == "translated"].tolist()
    assert len(rows) == 2
    before, after = rows
    assert df.loc[before, "pair"] == after and df.loc[after, "pair"] == before
    assert df.loc[before, "src"] == "192.168.1.10" and df.loc[after, "src"] == "203.0.113.10"
    from scapy.layers.inet import IP, UDP

    pkt = net.trace.packet(after)
    assert pkt[IP].src == "203.0.113.10"
    rebuilt = IP(bytes(pkt))
    del rebuilt[IP].chksum
    del rebuilt[UDP].chksum
    assert IP(bytes(rebuilt))[IP].chksum == pkt[IP].chksum
    assert IP(bytes(rebuilt))[UDP].chksum == pkt[UDP].chksum


def test_unsolicited_inbound_is_dropped_with_the_nat_rule():
    net = sim.Network.build(topology.one_nat())
    net.host("bob").udp_socket(6000).sendto(b"knock", ("203.0.113.10", 5000))
    net.run()
    reason = net.trace.df.iloc[-1]["reason"]
    assert reason.startswith("unsolicited inbound: no mapping for 203.0.113.10:5000 from 198.51.100.9:6000")


@pytest.mark.parametrize("hairpin", [True, False])
def test_hairpinning(hairpin):
    net = sim.Network.build(topology.same_nat("full-cone", hairpinning=hairpin))
    carol = net.host("carol").udp_socket(6000)
    carol.sendto(b"open", ("192.0.2.1", 9))  # carol gets mapping 203.0.113.10:6000
    net.host("alice").udp_socket(5000).sendto(b"via the outside", ("203.0.113.10", 6000))
    net.run()
    got = [d for _, d, _ in carol.received]
    assert (b"via the outside" in got) is hairpin
    if not hairpin:
        assert "hairpinning is off" in " ".join(net.trace.df["reason"])


def test_cgn_double_translation():
    net = sim.Network.build(topology.cgn())
    srv = net.host("server").udp_socket(3478)
    net.host("alice").udp_socket(5000).sendto(b"x", ("192.0.2.1", 3478))
    net.run()
    assert srv.received[0][2][0] == "203.0.113.10"
    assert (net.trace.df["action"] == "translated").sum() == 4


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=10, deadline=None)
def test_same_seed_same_trace_bytes(seed):
    a = run_punch("symmetric", "restricted-cone", seed=seed).trace
    b = run_punch("symmetric", "restricted-cone", seed=seed).trace
    assert a.df.equals(b.df)
    assert [a.raw(i) for i in range(len(a))] == [b.raw(i) for i in range(len(b))]


def test_trace_writes_a_pcap_that_tshark_reads(tmp_path):
    from conftest import need

    need("tshark")
    trace = run_punch("port-restricted-cone", "port-restricted-cone").trace
    path = trace.to_pcap(tmp_path / "punch.pcap")
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "ip.src", "-e", "udp.dstport"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(trace)
    assert lines[0].split("\t") == ["192.168.1.10", "7000"]


def test_bad_input_is_refused_clearly():
    net = sim.Network.build(topology.direct())
    sock = net.host("alice").udp_socket(5000)
    with pytest.raises(InvalidPortError, match="16-bit"):
        sock.sendto(b"x", ("198.51.100.9", 620000))
    with pytest.raises(InvalidAddressError, match="0-255"):
        sock.sendto(b"x", ("192.168.1.300", 5000))
    with pytest.raises(TopologyError, match="no host called 'carol'"):
        net.host("carol")


def test_ports_are_checked_when_binding():
    net = sim.Network.build(topology.direct())
    with pytest.raises(InvalidPortError):
        net.host("alice").udp_socket(620000)


def test_population_gives_the_same_outcome_with_and_without_a_trace():
    from p2plab.population import run_population

    fast = run_population(60, fanout=4, seed=3, record=False)
    traced = run_population(60, fanout=4, seed=3, record=True)
    assert (fast.attempts, fast.direct) == (traced.attempts, traced.direct)
    assert fast.by_pair == traced.by_pair
    assert 0 < fast.direct < fast.attempts  # the NAT mix has both outcomes


def test_every_router_decrements_the_ttl_and_a_packet_out_of_hops_dies():
    net = sim.Network.build(topology.punch())
    server = net.host("server").udp_socket(7000)
    net.host("alice").udp_socket(5000).sendto(b"x", ("192.0.2.1", 7000))
    net.run()
    assert server.received
    df = net.trace.df
    ttl = [net.trace.packet(i).ttl for i in df.index[df["action"] != "sent"]]
    assert ttl == [64, 63, 62, 62]  # nat-a in, nat-a out, core out, delivered
    alice = net.host("alice")
    alice.send(Datagram("192.168.1.10", 5000, "192.0.2.1", 7000, b"late", ttl=2))
    net.run()
    assert "TTL expired" in net.trace.df.iloc[-1]["reason"]
    assert len(server.received) == 1
