"""The ``linux-masquerade`` preset is what the real lab's nftables masquerade does with the kernel's
defaults: 30 s for a UDP entry without a reply, 120 s once it is a stream, no hairpinning.

The timing test runs the same scenario, with the timeouts scaled down, through the simulator's
NatTable and through a real kernel NAT in the netns lab, and compares who gets in.
"""

from __future__ import annotations

import sys
import time

import pytest

from p2plab import topology
from p2plab.nat import APD, EI, NatTable, preset
from p2plab.packet import Datagram

from conftest import need_netns

pytestmark = pytest.mark.timeout(120)

# (name, Alice's inside port, server replies at once?, Alice sends again at, server sends "late" at)
SCENARIOS = [
    ("unreplied", 5000, False, None, 4.5),     # no reply: the short timer (3 s) ends it
    ("replied-quiet", 5001, True, None, 4.5),  # replied within 2 s, then quiet: still the short timer
    ("stream", 5002, True, 2.6, 7.5),           # still active after 2 s: the stream timer (8 s)
]
SHORT, STREAM = 3.0, 8.0
SCALED = dict(unreplied_timeout=SHORT, mapping_timeout=STREAM)


def test_preset_is_the_kernel_default():
    b = preset("linux-masquerade")
    assert (b.mapping, b.filtering, b.port_allocation) == (EI, APD, "preserving")
    assert (b.unreplied_timeout, b.mapping_timeout, b.inbound_refresh, b.hairpinning) == (30.0, 120.0, True, False)
    from p2plab.netns.nftables import sysctls

    s = sysctls(b)
    assert s["net/netfilter/nf_conntrack_udp_timeout"] == "30"
    assert s["net/netfilter/nf_conntrack_udp_timeout_stream"] == "120"


def test_kernel_defaults_are_30_and_120():
    """In a fresh network namespace (nothing set), the kernel's own defaults equal the preset."""
    need_netns()
    import os
    import subprocess

    from p2plab.netns import rootless

    ns = f"p2plab-test-ctdefaults-{os.getpid()}"  # made the way labs are: as root, or in this process's user namespace
    subprocess.run(rootless.wrap(["ip", "netns", "add", ns]), check=True)
    try:
        vals = []
        for name in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
            r = subprocess.run(rootless.wrap(["ip", "netns", "exec", ns, "cat", f"/proc/sys/net/netfilter/{name}"]),
                               capture_output=True, text=True)
            if r.returncode != 0:
                pytest.fail(f"cannot read {name} in a namespace (is nf_conntrack loaded?): {r.stderr}")
            vals.append(int(r.stdout))
    finally:
        subprocess.run(rootless.wrap(["ip", "netns", "del", ns]))
    b = preset("linux-masquerade")
    assert vals == [int(b.unreplied_timeout), int(b.mapping_timeout)]


def sim_outcomes() -> dict[str, bool]:
    nat = NatTable(preset("linux-masquerade", **SCALED), ["203.0.113.10"])
    server = ("192.0.2.1", 3478)
    got = {}
    for name, port, reply, again, late in SCENARIOS:
        t0 = 0.0
        nat.outbound(Datagram("192.168.1.10", port, *server), t0)
        if reply:
            nat.inbound(Datagram(*server, "203.0.113.10", port), t0 + 0.1)
        if again is not None:
            nat.outbound(Datagram("192.168.1.10", port, *server), t0 + again)
        delivered, _ = nat.inbound(Datagram(*server, "203.0.113.10", port), t0 + late)
        got[name] = delivered is not None
    return got


def kernel_outcomes() -> dict[str, bool]:
    need_netns()
    from p2plab.netns import Lab

    plan = repr([(n, p, r, a, late) for n, p, r, a, late in SCENARIOS])
    server_code = (
        "import socket,time\n"
        f"plan={plan}\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('192.0.2.1',3478)); s.settimeout(0.05)\n"
        "print('READY',flush=True)\n"
        "t0=None; seen={}\n"
        "end=time.time()+10\n"
        "while time.time()<end:\n"
        "    try:\n"
        "        d,a=s.recvfrom(100)\n"
        "    except socket.timeout:\n"
        "        d=None\n"
        "    now=time.time()\n"
        "    if d and d.decode() in [q[0] for q in plan] and d.decode() not in seen:\n"
        "        t0=t0 or now; seen[d.decode()]=a\n"
        "        if [r for n,p,r,x,l in plan if n==d.decode()][0]: time.sleep(0.1); s.sendto(b'reply',a)\n"
        "    for n,p,r,x,l in plan:\n"
        "        if t0 and n in seen and now-t0>=l:\n"
        "            s.sendto(('late-'+n).encode(),seen.pop(n)); plan=[q for q in plan if q[0]!=n]\n"
        "    if t0 and not plan: break\n"
    )
    alice_code = (
        "import socket,select,time\n"
        f"plan={plan}\n"
        "socks={}\n"
        "for n,p,r,a,l in plan:\n"
        "    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',p)); socks[s]=n\n"
        "t0=time.time()\n"
        "for s,n in socks.items(): s.sendto(n.encode(),('192.0.2.1',3478))\n"
        "again={s:[q[3] for q in plan if q[0]==n][0] for s,n in socks.items()}\n"
        "while time.time()<t0+9:\n"
        "    for s,a in list(again.items()):\n"
        "        if a is not None and time.time()-t0>=a: s.sendto(b'again',('192.0.2.1',3478)); again[s]=None\n"
        "    r,_,_=select.select(list(socks),[],[],0.05)\n"
        "    for s in r:\n"
        "        d,_=s.recvfrom(100); print(d.decode(),flush=True)\n"
    )
    with Lab(topology.punch(preset("linux-masquerade", **SCALED))) as lab:
        srv = lab.popen("server", [sys.executable, "-c", server_code], text=True)
        assert srv.popen.stdout.readline().strip() == "READY"
        time.sleep(0.2)
        alice = lab.popen("alice", [sys.executable, "-c", alice_code], text=True)
        out = alice.popen.stdout.read()
        alice.wait(15)
        srv.wait(15)
    lines = set(out.split())
    return {name: f"late-{name}" in lines for name, *_ in SCENARIOS}


def test_sim_outcomes_show_both_timers():
    assert sim_outcomes() == {"unreplied": False, "replied-quiet": False, "stream": True}


def test_sim_and_kernel_agree_on_the_timers():
    assert kernel_outcomes() == sim_outcomes()


def hairpin_outcome_kernel() -> bool:
    need_netns()
    from test_netns_nat import alice_opens_and_listens, send

    from p2plab.netns import Lab

    with Lab(topology.same_nat("linux-masquerade")) as lab:
        p = alice_opens_and_listens(lab, wait=1.0)
        assert p.popen.stdout.readline().strip() == "SENT"
        send(lab, "carol", ("203.0.113.10", 5000), 6000, payload="via-public-address")
        out = p.popen.stdout.read()
        p.wait(5)
    return "via-public-address" in out


def hairpin_outcome_sim() -> bool:
    from p2plab import sim

    net = sim.Network.build(topology.same_nat("linux-masquerade"), seed=0)
    alice = net.host("alice").udp_socket(5000)
    alice.sendto(b"open", ("192.0.2.1", 3478))  # alice's mapping 203.0.113.10:5000
    net.host("carol").udp_socket(6000).sendto(b"via-public-address", ("203.0.113.10", 5000))
    net.run()
    return b"via-public-address" in [d for _, d, _ in alice.received]


def test_no_hairpinning_in_the_sim():
    assert hairpin_outcome_sim() is False


def test_no_hairpinning_in_the_kernel_either():
    assert hairpin_outcome_kernel() is hairpin_outcome_sim() is False
