"""The real Linux lab: namespaces, addresses, routes, isolation, exec/run_python, captures."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import time

import pytest

from p2plab import topology
from p2plab.errors import LabUnavailableError, TopologyError
from p2plab.netns import cleanup

from conftest import lab_namespaces, need, need_netns

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lab():
    need_netns()
    from p2plab.netns import Lab

    with Lab(topology.punch()) as lab:
        yield lab


def udp_exchange(lab, sender, dst, receiver, port=4000, sport=5000, bind=None, wait=1.0):
    """receiver listens on port; sender sends b'hello' from sport to dst:port. Returns what arrived (or None)."""
    listen = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"s.bind(('0.0.0.0',{port}))\n"
        "print('READY',flush=True)\n"
        f"s.settimeout({wait})\n"
        "try:\n"
        "    d,a=s.recvfrom(2048); print('GOT',a[0],a[1],d.decode())\n"
        "except OSError: print('NOTHING')\n"
    )
    import sys

    rx = lab.popen(receiver, [sys.executable, "-c", listen], text=True)
    assert rx.popen.stdout.readline().strip() == "READY"
    send = (f"import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{bind or '0.0.0.0'}',{sport}))\n"
            f"s.sendto(b'hello',('{dst}',{port}))\n")
    assert lab.exec(sender, [sys.executable, "-c", send]).returncode == 0
    out = rx.popen.stdout.read().strip()
    rx.wait(5)
    if out.startswith("GOT"):
        _, ip, p, data = out.split()
        return ip, int(p), data
    return None


def test_one_namespace_per_node_plus_core_with_short_unique_names(lab):
    assert set(lab.namespaces) == {"internet", "nat-a", "nat-b", "alice", "bob", "server"}
    listed = lab_namespaces()  # where this process's labs live: /run/netns as root, the user namespace without
    for ns in lab.namespaces.values():
        assert re.fullmatch(rf"p2plab-{lab.id}-[a-z0-9-]+", ns)
        assert ns in listed
    for itf in lab.interfaces:
        assert itf.name.startswith("p2plab-") and len(itf.name) <= 15


def test_addresses_and_routes(lab):
    r = lab.exec("alice", ["ip", "-4", "-o", "addr", "show"]).stdout
    assert "192.168.1.10/24" in r
    assert "via 192.168.1.1" in lab.exec("alice", ["ip", "route", "show", "default"]).stdout
    assert "203.0.113.10/32" in lab.exec("nat-a", ["ip", "-4", "-o", "addr"]).stdout
    assert "via 169.254.0.1" in lab.exec("nat-a", ["ip", "route", "show", "default"]).stdout
    core = lab.exec("internet", ["ip", "route"]).stdout
    assert "default" not in core
    for ip in ("203.0.113.10", "198.51.100.20", "192.0.2.1", "192.0.2.2"):
        assert ip in core
    for ns in ("internet", "nat-a", "nat-b"):
        assert lab.exec(ns, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"
    assert lab.exec("alice", ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "0"


def test_isolation_no_way_out_and_no_link_to_the_root_namespace(lab):
    """These commands send nothing: they ask the routing table and list links."""
    lab_ifaces = {i.name for i in lab.interfaces}
    for node in lab.namespaces:
        r = lab.exec(node, ["ip", "-o", "route", "get", "8.8.8.8"])
        if r.returncode == 0:  # it may only go to another lab namespace
            dev = r.stdout.split(" dev ")[1].split()[0]
            assert dev in lab_ifaces, (node, r.stdout)
        else:
            assert node == "internet"
        for line in lab.exec(node, ["ip", "-o", "-d", "link"]).stdout.splitlines():
            if "veth" in line:
                assert f"link-netns p2plab-{lab.id}-" in line, line
    assert "internet" in lab.namespaces and lab.exec("internet", ["ip", "route", "get", "8.8.8.8"]).returncode != 0
    root_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "p2plab-" not in root_links


def test_nat_translates_and_conntrack_shows_the_mapping(lab):
    got = udp_exchange(lab, "alice", "192.0.2.1", "server", port=3478, sport=5000)
    assert got == ("203.0.113.10", 5000, "hello")  # port preserved
    df = lab.conntrack("nat-a")
    assert list(df.columns[:8]) == ["proto", "inside", "outside", "remote", "created", "expires", "packets_out",
                                    "packets_in"]
    row = df[df["remote"] == "192.0.2.1:3478"].iloc[0]
    assert row["inside"] == "192.168.1.10:5000" and row["outside"] == "203.0.113.10:5000"
    assert row["kind"] == "mapping" and row["packets_out"] == 1
    with pytest.raises(TopologyError):
        lab.conntrack("alice")


def test_unsolicited_inbound_is_dropped(lab):
    assert udp_exchange(lab, "bob", "203.0.113.10", "alice", port=6000, wait=0.5) is None


def test_run_python_returns_values_and_raises_remote_errors(lab):
    from p2plab.netns.runner import encode_call  # noqa: F401 - importable in the namespace too

    def where_am_i(x):
        import socket

        return socket.gethostname() != "", x * 2

    assert lab.run_python("alice", where_am_i, 21) == (True, 42)

    def boom():
        raise ValueError("from the lab")

    with pytest.raises(ValueError, match="from the lab"):
        lab.run_python("bob", boom)
    assert lab.run_python("server", "result = 6 * 7") == 42
    with pytest.raises(TypeError):
        lab.run_python("alice", lambda: 1)


def test_exec_unknown_host_and_closed_lab():
    need_netns()
    from p2plab.netns import Lab

    with Lab(topology.direct()) as lab:
        with pytest.raises(TopologyError, match="alice"):
            lab.exec("carol", ["true"])
    with pytest.raises(LabUnavailableError):
        lab.exec("alice", ["true"])


def test_two_labs_at_once_do_not_collide():
    need_netns()
    from p2plab.netns import Lab

    with Lab(topology.punch()) as a, Lab(topology.punch("symmetric")) as b:
        assert a.id != b.id
        assert not set(a.namespaces.values()) & set(b.namespaces.values())
        assert not {i.name for i in a.interfaces} & {i.name for i in b.interfaces}
        assert udp_exchange(a, "alice", "192.0.2.1", "server", port=3478) == ("203.0.113.10", 5000, "hello")
        got = udp_exchange(b, "alice", "192.0.2.1", "server", port=3478)
        assert got[0] == "203.0.113.10" and 32768 <= got[1] <= 60999  # b's NAT is symmetric
    listed = " ".join(lab_namespaces())
    assert a.id not in listed and b.id not in listed


def test_cgn_nat_behind_nat():
    need_netns()
    from p2plab.netns import Lab

    with Lab(topology.cgn()) as lab:
        assert "via 100.64.0.1" in lab.exec("nat-a", ["ip", "route", "show", "default"]).stdout
        got = udp_exchange(lab, "alice", "192.0.2.1", "server", port=3478)
        assert got == ("203.0.113.10", 5000, "hello")  # translated twice, port kept both times
        home = lab.conntrack("nat-a")
        assert "100.64.1.2:5000" in set(home["outside"])
        carrier = lab.conntrack("cgn")
        assert ("100.64.1.2:5000", "203.0.113.10:5000") in set(zip(carrier["inside"], carrier["outside"]))


def test_capture_gives_a_netns_trace_like_the_simulators():
    need_netns()
    need("tcpdump")
    from p2plab.netns import Lab
    from p2plab.trace import COLUMNS

    with Lab(topology.punch(), capture=True) as lab:
        assert udp_exchange(lab, "alice", "192.0.2.1", "server", port=3478) is not None
        trace = lab.trace()
    assert trace.world == "netns"
    df = trace.df
    assert list(df.columns) == COLUMNS
    hello = df[df["summary"] == "UDP 'hello'"]
    assert list(hello["node"]) == ["alice", "nat-a", "nat-a", "internet", "internet", "server"]
    assert list(hello["interface"]) == ["eth0", "lan", "wan", "to-nat-a", "to-server", "eth0"]
    assert list(hello["action"]) == ["sent", "translated", "translated", "forwarded", "forwarded", "delivered"]
    before, after = hello.iloc[1], hello.iloc[2]
    assert (before["src"], after["src"]) == ("192.168.1.10", "203.0.113.10")
    assert before["pair"] == hello.index[2] and after["pair"] == hello.index[1]
    assert (df["time"] >= 0).all() and df["time"].is_monotonic_increasing
    assert trace.packet(int(hello.index[0])).src == "192.168.1.10"


def test_lab_start_is_fast():
    need_netns()
    from p2plab.netns import Lab

    t = time.perf_counter()
    with Lab(topology.punch()):
        pass
    assert time.perf_counter() - t < 2.0


def test_available_says_how_the_lab_runs_and_leaves_no_probe_behind():
    need_netns()
    from p2plab.netns import available, lab, rootless

    lab.forget()
    ok, why = available()
    assert ok and why.startswith("rootless" if rootless.wanted() else "as root") and "nft ran inside" in why
    assert not [n for n in cleanup.list_netns() if n.startswith("p2plab-probe")]


def test_topology_ip_ranges_used_by_the_lab_are_never_routable_outside():
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"):
        assert ipaddress.ip_network(net).is_private  # documentation ranges (RFC 5737)


@pytest.mark.parametrize("scenario", sorted(topology.SCENARIOS))
def test_isolation_in_every_scenario(scenario):
    """Every scenario the course builds: no route out (IPv4 or IPv6), no link to the root namespace."""
    need_netns()
    from p2plab.netns import Lab

    with Lab(topology.SCENARIOS[scenario]()) as lab:
        test_isolation_no_way_out_and_no_link_to_the_root_namespace(lab)
        for node in lab.namespaces:
            assert lab.exec(node, ["ip", "-6", "route", "get", "2001:4860:4860::8888"]).returncode != 0, node
