"""Kernel NATs built from the presets behave as RFC 4787 says (real packets, real conntrack)."""

from __future__ import annotations

import sys

import pytest

from p2plab import topology
from p2plab.errors import LabUnavailableError
from p2plab.nat import AD, APD, NatBehavior

from conftest import need_netns

pytestmark = pytest.mark.timeout(120)

def alice_opens_and_listens(lab, dst=("192.0.2.1", 3478), port=5000, wait=1.5):
    """alice sends one packet from :port to dst, then reports every datagram arriving within ``wait``."""
    code = (
        "import socket,select,time,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        f"s.bind(('0.0.0.0',{port}))\n"
        f"s.sendto(b'open',('{dst[0]}',{dst[1]}))\n"
        "print('SENT',flush=True)\n"
        f"end=time.time()+{wait}\n"
        "while time.time()<end:\n"
        "    r,_,_=select.select([s],[],[],max(0,end-time.time()))\n"
        "    if r:\n"
        "        d,a=s.recvfrom(2048); print('GOT',a[0],a[1],d.decode(),flush=True)\n"
    )
    return lab.popen("alice", [sys.executable, "-c", code], text=True)


def send(lab, host, dst, sport, bind="0.0.0.0", payload="x"):
    code = (f"import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('{bind}',{sport}))\ns.sendto(b'{payload}',('{dst[0]}',{dst[1]}))\n")
    r = lab.exec(host, [sys.executable, "-c", code])
    assert r.returncode == 0, r.stderr


def who_gets_in(nat):
    """After alice sent to 192.0.2.1:3478, which outside senders reach her mapping 203.0.113.10:5000?"""
    need_netns()
    from p2plab.netns import Lab

    with Lab(topology.punch(nat)) as lab:
        p = alice_opens_and_listens(lab)
        assert p.popen.stdout.readline().strip() == "SENT"
        mapped = ("203.0.113.10", 5000)
        send(lab, "server", mapped, 3478, bind="192.0.2.1", payload="same-endpoint")
        send(lab, "server", mapped, 4000, bind="192.0.2.1", payload="same-address-other-port")
        send(lab, "server", mapped, 3478, bind="192.0.2.2", payload="other-address")
        send(lab, "bob", mapped, 5555, payload="stranger")
        out = p.popen.stdout.read()
        p.wait(5)
    return {line.split()[3] for line in out.splitlines() if line.startswith("GOT")}


@pytest.mark.parametrize("nat,expected", [
    ("full-cone", {"same-endpoint", "same-address-other-port", "other-address", "stranger"}),
    ("restricted-cone", {"same-endpoint", "same-address-other-port"}),
    ("port-restricted-cone", {"same-endpoint"}),
    ("linux-masquerade", {"same-endpoint"}),
    ("symmetric", set()),  # symmetric's mapping for 192.0.2.1:3478 is not port 5000
])
def test_filtering_follows_the_preset(nat, expected):
    assert who_gets_in(nat) == expected


def mapped_ports(nat):
    """alice sends from :5000 to two destinations; the server (two addresses) reports the source ports."""
    need_netns()
    from p2plab.netns import Lab

    code = (
        "import socket,select,time\n"
        "socks=[]\n"
        "for ip in ('192.0.2.1','192.0.2.2'):\n"
        "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((ip,3478)); socks.append(s)\n"
        "print('READY',flush=True)\n"
        "seen=[]\n"
        "end=time.time()+1.5\n"
        "while len(seen)<2 and time.time()<end:\n"
        "    r,_,_=select.select(socks,[],[],0.1)\n"
        "    for s in r:\n"
        "        d,a=s.recvfrom(2048); seen.append(a[1])\n"
        "print(*seen)\n"
    )
    with Lab(topology.punch(nat)) as lab:
        srv = lab.popen("server", [sys.executable, "-c", code], text=True)
        assert srv.popen.stdout.readline().strip() == "READY"
        lab.exec("alice", [sys.executable, "-c",
                           "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',5000))\n"
                           "s.sendto(b'a',('192.0.2.1',3478)); s.sendto(b'b',('192.0.2.2',3478))"])
        ports = [int(x) for x in srv.popen.stdout.read().split()]
        srv.wait(5)
    return ports


def test_port_preserving_endpoint_independent_mapping():
    assert mapped_ports("port-restricted-cone") == [5000, 5000]


def test_symmetric_mapping_depends_on_the_destination():
    a, b = mapped_ports("symmetric")
    assert a != b and all(32768 <= p <= 60999 for p in (a, b))


@pytest.mark.parametrize("hairpinning", [True, False])
def test_hairpinning_on_and_off(hairpinning):
    need_netns()
    from p2plab.netns import Lab

    with Lab(topology.same_nat("port-restricted-cone", hairpinning=hairpinning)) as lab:
        p = alice_opens_and_listens(lab, wait=1.0)
        assert p.popen.stdout.readline().strip() == "SENT"
        send(lab, "carol", ("203.0.113.10", 5000), 6000, payload="via-public-address")
        out = p.popen.stdout.read()
        p.wait(5)
    got = [line.split() for line in out.splitlines() if line.startswith("GOT")]
    if hairpinning:  # carol appears with her public endpoint, not her private address
        assert [g[1:] for g in got] == [["203.0.113.10", "6000", "via-public-address"]]
    else:
        assert got == []


def test_inexpressible_behaviour_raises_before_anything_is_built():
    need_netns()
    from p2plab.netns import Lab, cleanup

    before = cleanup.lab_namespaces()
    with pytest.raises(LabUnavailableError, match="address-dependent mapping"):
        Lab(topology.punch(NatBehavior(AD, APD, name="odd"))).start()
    assert cleanup.lab_namespaces() == before
    with Lab(topology.punch(NatBehavior(AD, APD, name="odd")), approximate=True) as lab:
        assert any("approximated" in n for n in lab.notes)
