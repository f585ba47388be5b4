"""Port forwarding and the DMZ host: the NAT model's administrator rules, their nftables form, the
real kernel, the CLI and the recording."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from p2plab import recorded, sim
from p2plab import topology as t
from p2plab.errors import ConfigurationError
from p2plab.nat import NatBehavior, NatTable, PortForward, preset
from p2plab.netns import nftables
from p2plab.packet import Datagram
from p2plab.scenarios.forwarding import run_forwarding

from conftest import need, need_netns


def test_a_port_forward_explains_bad_input():
    with pytest.raises(ConfigurationError, match="'udp' or 'tcp'"):
        PortForward("sctp", 80, "192.168.1.10")
    with pytest.raises(ConfigurationError, match="1-65535"):
        PortForward("udp", 70000, "192.168.1.10")
    with pytest.raises(ConfigurationError, match="rule must be one of none, forward, dmz"):
        run_forwarding("upnp")
    with pytest.raises(ConfigurationError, match="already forwarded to 192.168.1.10:8080; one outside port"):
        preset("full-cone", forwards=[("udp", 8080, "192.168.1.10"), ("udp", 8080, "192.168.1.11")])
    preset("full-cone", forwards=[("udp", 8080, "192.168.1.10"), ("tcp", 8080, "192.168.1.11")])  # TCP is another port
    f = PortForward("UDP", 8080, "192.168.1.10")
    assert (f.proto, f.to_port, f.describe()) == ("udp", 8080, "UDP port 8080 -> 192.168.1.10:8080")
    assert preset("symmetric", forwards=[("tcp", 22, "192.168.1.5")]).forwards == (PortForward("tcp", 22, "192.168.1.5"),)


def test_a_forward_admits_anyone_and_replies_leave_from_the_forwarded_port():
    table = NatTable(NatBehavior(forwards=(PortForward("udp", 8080, "192.168.1.10", 5000),)), ["203.0.113.10"])
    for remote in (("198.51.100.9", 6000), ("192.0.2.1", 1234)):
        inside, note = table.inbound(Datagram(remote[0], remote[1], "203.0.113.10", 8080, b"x"), 0.0)
        assert (inside.dst, inside.dport) == ("192.168.1.10", 5000) and "port forward" in note
        reply, _ = table.outbound(Datagram("192.168.1.10", 5000, remote[0], remote[1], b"y"), 0.1)
        assert (reply.src, reply.sport) == ("203.0.113.10", 8080)
    # a new flow of the same inside socket is ordinary NAT: port preservation gives it 5000, not 8080
    new, _ = table.outbound(Datagram("192.168.1.10", 5000, "192.0.2.99", 9, b"z"), 0.2)
    assert new.sport == 5000


def test_a_forwarded_port_is_never_given_to_a_dynamic_mapping():
    table = NatTable(preset("port-restricted-cone", forwards=[("udp", 8080, "192.168.1.10")]), ["203.0.113.10"])
    out, _ = table.outbound(Datagram("192.168.1.20", 8080, "192.0.2.1", 7000, b"x"), 0.0)
    assert out.sport != 8080


@pytest.mark.parametrize("rule,cgn,reached", [("none", False, False), ("forward", False, True), ("dmz", False, False),
                                              ("static", False, True), ("none", True, False), ("forward", True, False),
                                              ("dmz", True, False), ("static", True, False)])
def test_who_reaches_alices_service_in_the_simulator(rule, cgn, reached):
    res = run_forwarding(rule, cgn=cgn)
    assert res.reached is reached
    if reached:
        assert res.reply_from == ("203.0.113.11:5000" if rule == "static" else f"{t.ALICE_NAT_IP}:8080")
    if cgn:
        assert "cgn dropped it" in res.reason and "does not control" in res.reason
    if rule == "dmz" and not cgn:
        assert "192.168.1.10:8080" in res.reason and "keeps the port" in res.reason


def test_the_dmz_host_gets_what_nothing_else_claims_but_not_replies_of_others():
    net = sim.Network.build(t.same_nat(preset("port-restricted-cone", dmz="192.168.1.11")), seed=0)
    carol = net.host("carol").udp_socket(7777)
    alice = net.host("alice").udp_socket(5000)
    alice.sendto(b"hi", (t.SERVER_IP, 3478))
    srv = net.host("server").udp_socket(3478)
    srv.on_datagram = lambda d, src: srv.sendto(b"back", src)
    net.run(until=0.5)
    stranger = net.host("server").udp_socket(7777)
    stranger.sendto(b"knock", (t.ALICE_NAT_IP, 7777))
    net.run(until=1.0)
    assert [d for _, d, _ in alice.received] == [b"back"]  # the reply still goes to alice
    assert [d for _, d, _ in carol.received] == [b"knock"]  # the unsolicited packet goes to the DMZ host


def test_static_nat_is_one_host_every_port_both_ways_and_others_never_use_its_address():
    b = NatBehavior(static=(("203.0.113.11", "192.168.1.10"),))
    table = NatTable(b, ["203.0.113.10", "203.0.113.11"])
    out, note = table.outbound(Datagram("192.168.1.10", 4242, "192.0.2.1", 7000, b"x"), 0.0)
    assert (out.src, out.sport) == ("203.0.113.11", 4242) and "static NAT" in note
    inside, _ = table.inbound(Datagram("198.51.100.9", 1, "203.0.113.11", 22, b"y"), 0.1)
    assert (inside.dst, inside.dport) == ("192.168.1.10", 22)
    for host in range(20, 40):  # paired pooling never hands the static address to anyone else
        other, _ = table.outbound(Datagram(f"192.168.1.{host}", 5000, "192.0.2.1", 7000, b"z"), 0.2)
        assert other.src == "203.0.113.10"
    with pytest.raises(ConfigurationError, match="must be one of nat's outside addresses other than its first"):
        NatTable(b, ["203.0.113.11", "203.0.113.10"])
    text = nftables.nat_ruleset(preset("port-restricted-cone", static=[("203.0.113.11", "192.168.1.10")]), "w", "l",
                                ["203.0.113.10", "203.0.113.11"], "192.168.1.0/24")
    post = text.split("chain postrouting {")[1].splitlines()
    assert "snat ip to 203.0.113.11" in post[2] and "masquerade" in post[3]  # before the masquerade


def test_the_ruleset_has_the_forward_first_and_the_dmz_last():
    b = preset("port-restricted-cone", forwards=[("udp", 8080, "192.168.1.10", 5000)], dmz="192.168.1.11")
    text = nftables.nat_ruleset(b, "wan0", "lan0", ["203.0.113.10"], "192.168.1.0/24")
    pre = text.split("chain prerouting {")[1].split("\n  }")[0].strip().splitlines()
    assert "udp dport 8080 dnat ip to 192.168.1.10:5000" in pre[1]
    assert pre[-1].strip().startswith('iifname "wan0" ip daddr 203.0.113.10 ct state new') and "192.168.1.11" in pre[-1]
    assert "DMZ" not in nftables.nat_ruleset(preset("port-restricted-cone"), "w", "l", ["203.0.113.10"], "192.168.1.0/24")


@pytest.mark.parametrize("rule,cgn", [("none", False), ("forward", False), ("dmz", False), ("static", False),
                                      ("forward", True)])
def test_the_real_kernel_agrees_with_the_simulator(rule, cgn):
    need_netns()
    from p2plab.netns.forwarding import run_forwarding as real

    res, model = real(rule, cgn=cgn), run_forwarding(rule, cgn=cgn)
    assert res.world == "netns" and res.reached is model.reached
    assert res.reply_from == model.reply_from
    if rule == "forward":
        assert "udp dport 8080 dnat to 192.168.1.10:5000" in res.ruleset  # as nft lists what the kernel loaded
    if rule == "static":
        assert "ip daddr 203.0.113.11 dnat to 192.168.1.10" in res.ruleset
        assert "ip saddr 192.168.1.10 snat to 203.0.113.11" in res.ruleset
    if rule == "dmz":
        icmp = res.trace.df.query("node == 'alice' and protocol == 'ICMP'")
        assert icmp["summary"].str.contains("port unreachable").any()  # alice's kernel answers on port 8080


def test_cli():
    out = subprocess.run([sys.executable, "-m", "p2plab", "forward", "--world", "sim", "--rule", "forward", "--cgn",
                          "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["reached"] is False and row["cgn"] is True
    need_netns()
    out = subprocess.run([sys.executable, "-m", "p2plab", "forward", "--world", "netns", "--rule", "forward"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[netns] rule forward: REACHED")


def test_the_recording_matches_a_fresh_run(tmp_path):
    shipped = recorded.load("port-forward")
    assert recorded.outcome("port-forward")["ok"] is True
    rewrites = shipped.df.query("node == 'nat-a' and action == 'translated' and direction == 'out'")
    assert set(rewrites["dport"]) == {5000, 6000}  # in to alice's service, back out to bob
    need_netns()
    need("tcpdump")
    recorded.record(["port-forward"], out=tmp_path)
    fresh = recorded.load("port-forward", data=tmp_path)
    kinds = lambda tr: {s for s in recorded.shape(tr) if s[1] == "sent"}  # noqa: E731
    assert kinds(fresh) == kinds(shipped)
    assert recorded.outcome("port-forward", data=tmp_path)["ok"] is True
