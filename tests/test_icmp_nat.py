"""ICMP and TCP through a NAT (RFC 5508, RFC 5382): the dissection helpers, the shipped recording,
tshark's reading of it, the simulator's TCP rewrite, and fresh captures from the real kernel (as root
and as an ordinary user)."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import textwrap

import pytest

from p2plab import icmpnat, recorded, sim
from p2plab import topology as t
from p2plab.errors import TraceError
from p2plab.packet import SYN, TCP, Datagram

from conftest import missing, need, need_netns


def test_incremental_checksum_equals_a_full_recomputation():
    rng = random.Random(0)
    for _ in range(500):
        data = bytearray(rng.randbytes(2 * rng.randint(4, 40)))
        old = icmpnat.checksum(bytes(data))
        at = 2 * rng.randrange(len(data) // 2 - 1)
        new_words = rng.randbytes(4)
        before = bytes(data[at:at + 4])
        data[at:at + 4] = new_words
        assert icmpnat.incremental_checksum(old, before, new_words) == icmpnat.checksum(bytes(data))
    with pytest.raises(ValueError, match="same even length"):
        icmpnat.incremental_checksum(0, b"abc", b"abc")


def test_fields_explains_what_is_not_an_ipv4_packet():
    with pytest.raises(TraceError, match="not an IPv4 packet"):
        icmpnat.fields(b"\x60\x00")


def _check_icmp_nat(trace):
    """The facts the lesson shows, true of any capture of the icmp-nat scenario."""
    ids = icmpnat.echo_ids(trace)
    assert list(ids["inside"]) == [t.ALICE_IP, "192.168.1.11"]
    assert set(ids["inside id"]) == {0x1234} and set(ids["outside"]) == {t.ALICE_NAT_IP}
    assert ids["outside id"].iloc[0] == 0x1234 and ids["outside id"].iloc[1] != 0x1234  # RFC 5508 REQ-1 at work
    hops = icmpnat.traceroute(trace)
    assert list(hops["probe TTL"]) == [1, 2, 3]
    assert list(hops["answered by"]) == ["192.168.1.1", "169.254.0.1", t.SERVER_IP]
    assert list(hops["message"]) == ["time exceeded", "time exceeded", "port unreachable"]
    assert set(hops["quoted source"]) == {f"{t.ALICE_IP}:5001"}  # the quoted header was translated back
    (i, j), = icmpnat.pairs(trace, "nat-a", "ICMP port unreachable")
    diff = icmpnat.compare(trace.raw(i), trace.raw(j))
    changed = set(zip(diff["layer"], diff["field"]))
    assert {("IP", "destination address"), ("ICMP", "checksum"), ("quoted IP", "source address"),
            ("quoted IP", "header checksum"), ("quoted UDP", "checksum")} <= changed
    assert ("quoted UDP", "source port") not in changed  # port 5001 was preserved
    for k in (i, j):
        assert icmpnat.checksums_ok(trace.raw(k)) == {"IP": True, "ICMP": True}
    (i, j), *_ = icmpnat.pairs(trace, "nat-a", "TCP SYN")
    a, b = trace.raw(i), trace.raw(j)
    assert icmpnat.checksums_ok(a) == icmpnat.checksums_ok(b) == {"IP": True, "TCP": True}
    old, new = struct.unpack_from("!H", a, 36)[0], struct.unpack_from("!H", b, 36)[0]
    assert old != new and icmpnat.incremental_checksum(old, a[12:16], b[12:16]) == new


def test_the_shipped_recording_shows_every_fact():
    trace = recorded.load("icmp-nat")
    assert recorded.outcome("icmp-nat")["ok"] is True
    _check_icmp_nat(trace)


def test_tshark_reads_the_same_identifiers_and_good_checksums():
    need("tshark")
    path = str(recorded.DATA / "icmp-nat.pcap")
    out = subprocess.run(["tshark", "-r", path, "-o", "tcp.check_checksum:TRUE", "-Y", "icmp.type == 8",
                          "-T", "fields", "-e", "ip.src", "-e", "icmp.ident"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    seen = {tuple(line.split("\t")) for line in out.stdout.split("\n") if line}
    ids = icmpnat.echo_ids(recorded.load("icmp-nat"))
    for _, row in ids.iterrows():
        assert (row["inside"], str(row["inside id"])) in {(s, i.split(",")[0]) for s, i in seen}
        assert (row["outside"], str(row["outside id"])) in {(s, i.split(",")[0]) for s, i in seen}
    bad = subprocess.run(["tshark", "-r", path, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                          "-o", "udp.check_checksum:TRUE", "-Y", "tcp.checksum.status == 0 || ip.checksum.status == 0 "
                          "|| icmp.checksum.status == 0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 0 and bad.stdout.strip() == "", bad.stdout[:2000]


def test_the_simulator_rewrites_a_tcp_checksum_the_same_way():
    net = sim.Network.build(t.one_nat("port-restricted-cone"), seed=0)
    net.host("alice").send(Datagram(t.ALICE_IP, 5002, t.SERVER_IP, 8080, b"", TCP, flags=SYN, seq=1000))
    net.run(until=1)
    (i, j), = icmpnat.pairs(net.trace, "nat-a", "TCP SYN")
    a, b = net.trace.raw(i), net.trace.raw(j)
    diff = icmpnat.compare(a, b)
    assert set(diff["field"]) == {"time to live", "header checksum", "source address", "checksum"}
    old, new = struct.unpack_from("!H", a, 36)[0], struct.unpack_from("!H", b, 36)[0]
    assert icmpnat.incremental_checksum(old, a[12:16], b[12:16]) == new


def test_a_fresh_capture_in_the_real_lab_shows_the_same_facts(tmp_path):
    need_netns()
    need("tcpdump")
    from p2plab.netns.icmplab import run_icmp_nat

    trace, out = run_icmp_nat()
    assert out["ok"] and out["offload_off"]
    _check_icmp_nat(trace)
    live, shipped = recorded.real_run("icmp-nat", live=True), recorded.real_run("icmp-nat", live=False)
    assert live.facts() == shipped.facts()


def test_an_ordinary_user_captures_the_same_facts_rootless():
    need("ip", "nft", "unshare", "nsenter")
    from p2plab.netns import rootless

    ok, why = rootless.possible()
    if not ok:
        missing(f"rootless labs need unprivileged user namespaces: {why}")
    script = textwrap.dedent("""
        import json, pickle, sys
        from p2plab.netns.icmplab import run_icmp_nat
        trace, out = run_icmp_nat()
        sys.stdout.buffer.write(pickle.dumps((trace, out)).hex().encode() + b"\\n")
    """)
    res = subprocess.run([sys.executable, "-c", script], env={**os.environ, "P2PLAB_ROOTLESS": "1"},
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    import pickle

    trace, out = pickle.loads(bytes.fromhex(res.stdout.strip().splitlines()[-1]))
    assert out["ok"] and out["offload_off"], json.dumps(out, default=str)
    _check_icmp_nat(trace)


def test_cli_reads_the_recording_and_runs_the_real_lab():
    out = subprocess.run([sys.executable, "-m", "p2plab", "icmp-nat", "--format", "json"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["world"] == "recorded" and row["tcp_checksums_ok"] is True
    assert [h["answered by"] for h in row["traceroute"]] == ["192.168.1.1", "169.254.0.1", t.SERVER_IP]
    assert "quoted IP source address" in row["port_unreachable_rewritten"]
    need_netns()
    need("tcpdump")
    out = subprocess.run([sys.executable, "-m", "p2plab", "icmp-nat", "--world", "netns"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[netns] ICMP echo identifiers") and "checksums all correct" in out.stdout
