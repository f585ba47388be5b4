"""Port forwarding and the DMZ host in the simulator: ``run_forwarding(rule)``.

Alice runs a small echo service on 192.168.1.10:5000 behind her router (``p2plab.topology.one_nat``).
Bob, on the public internet, sends one datagram to her router's public address, port 8080, without
Alice having sent anything first. Whether it arrives depends only on the rules her router's
administrator added (``NatBehavior.forwards`` and ``NatBehavior.dmz``):

* ``rule="none"``: nothing; the NAT drops Bob's unsolicited packet;
* ``rule="forward"``: a port forward ``udp 8080 -> 192.168.1.10:5000``;
* ``rule="dmz"``: Alice is the DMZ host, so every unsolicited packet goes to her on the *same* port
  (8080, where nothing listens: the port must match the service);
* ``rule="static"``: static (one-to-one) NAT: the router has a second public address, 203.0.113.11,
  which is Alice's alone, every port, both ways; Bob knocks on 203.0.113.11:5000.

``cgn=True`` puts a carrier-grade NAT in front of Alice's router (``p2plab.topology.cgn``): the rule
is on her router, but Bob can only reach the carrier's public address, and the carrier's NAT has no
such rule. ``explain`` serves the real lab (``p2plab.netns.forwarding``) too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import sim
from .. import topology as topo
from ..errors import ConfigurationError
from ..nat import NatBehavior, PortForward, preset
from ..recorded import Echo, Hello
from ..trace import Trace

__all__ = ["FORWARD_PORT", "RULES", "SERVICE_PORT", "STATIC_IP", "ForwardingResult", "behavior_for", "explain",
           "run_forwarding", "target_for", "topology_for"]

RULES = ("none", "forward", "dmz", "static")
SERVICE_PORT, FORWARD_PORT, BOB_PORT = 5000, 8080, 6000
STATIC_IP, CGN_STATIC_IP = "203.0.113.11", "100.64.1.3"


@dataclass
class ForwardingResult:
    """Did Bob's unsolicited datagram reach Alice's service, and why."""

    rule: str
    nat: str
    cgn: bool
    reached: bool
    reply_from: str  # the endpoint Bob's reply came from ("" without a reply)
    reason: str
    world: str
    trace: Trace | None = None

    def row(self) -> dict[str, Any]:
        return {"world": self.world, "rule": self.rule, "nat": self.nat, "cgn": self.cgn, "reached": self.reached,
                "reply_from": self.reply_from, "reason": self.reason}

    def __repr__(self) -> str:
        where = "behind a carrier-grade NAT" if self.cgn else "with a public address on her router"
        return (f"forwarding ({self.world}), rule {self.rule}, alice {where}: "
                f"{'reached' if self.reached else 'not reached'}. {self.reason}")


def behavior_for(rule: str, nat: str | NatBehavior = "port-restricted-cone") -> NatBehavior:
    """Alice's router: the NAT preset plus the administrator's rule."""
    if rule not in RULES:
        raise ConfigurationError(f"rule must be one of {', '.join(RULES)}; got {rule!r}")
    if rule == "forward":
        return preset(nat, forwards=(PortForward("udp", FORWARD_PORT, topo.ALICE_IP, SERVICE_PORT),))
    if rule == "dmz":
        return preset(nat, dmz=topo.ALICE_IP)
    return preset(nat)


def topology_for(rule: str, nat: str | NatBehavior = "port-restricted-cone", cgn: bool = False) -> topo.Topology:
    """``one_nat`` (or ``cgn`` when ``cgn``) with Alice's router carrying the rule; for ``static`` the router
    gets a second outside address, Alice's alone."""
    b = behavior_for(rule, nat)
    if rule != "static":
        return topo.cgn(home_nat=b) if cgn else topo.one_nat(b)
    if not cgn:
        t = topo.Topology("one-nat-static")
        t.add_nat("nat-a", [topo.ALICE_NAT_IP, STATIC_IP], topo.ALICE_LAN, preset(b, static=((STATIC_IP, topo.ALICE_IP),)))
        t.add_host("alice", topo.ALICE_IP, behind="nat-a", latency=0.001)
        t.add_host("bob", topo.BOB_PUBLIC_IP)
        t.add_server("server", topo.SERVER_IP, topo.SERVER_ALT_IP)
        return t
    t = topo.Topology("cgn-static")
    t.add_nat("cgn", topo.ALICE_NAT_IP, "100.64.0.0/10", "port-restricted-cone", lan_ip="100.64.0.1")
    t.add_nat("nat-a", ["100.64.1.2", CGN_STATIC_IP], topo.ALICE_LAN, preset(b, static=((CGN_STATIC_IP, topo.ALICE_IP),)),
              behind="cgn", latency=0.002)
    t.add_host("alice", topo.ALICE_IP, behind="nat-a", latency=0.001)
    t.add_nat("nat-b", topo.BOB_NAT_IP, topo.BOB_LAN, "port-restricted-cone", latency=0.015)
    t.add_host("bob", topo.BOB_IP, behind="nat-b", latency=0.001)
    t.add_server("server", topo.SERVER_IP, topo.SERVER_ALT_IP)
    return t


def target_for(rule: str, cgn: bool = False) -> tuple[str, int]:
    """Where Bob knocks: the router's public address, port 8080 (for static NAT: Alice's own public address,
    port 5000; behind CGN the only address Bob can reach is the carrier's)."""
    if rule == "static":
        return (topo.ALICE_NAT_IP if cgn else STATIC_IP), SERVICE_PORT
    return topo.ALICE_NAT_IP, FORWARD_PORT


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def run_forwarding(rule: str = "forward", nat: str | NatBehavior = "port-restricted-cone", cgn: bool = False,
                   seed: int = 0) -> ForwardingResult:
    """Bob knocks on Alice's router's public address, port 8080; does her service answer? (simulator)"""
    net = sim.Network.build(topology_for(rule, nat, cgn), seed=seed)
    net.run_protocol("alice", Echo(), SERVICE_PORT)
    bob = net.run_protocol("bob", Hello(target_for(rule, cgn), "knock knock"), BOB_PORT)
    net.run(until=1.0)
    events = [{"kind": e.kind, "time": e.time, **e.data} for e in bob.events]
    return explain(events, net.trace, rule, _name(nat), cgn, "sim")


def explain(bob_events: list[dict], trace: Trace | None, rule: str, nat: str, cgn: bool, world: str) -> ForwardingResult:
    """A ``ForwardingResult`` from Bob's events and the trace of either world."""
    reply = next((e for e in bob_events if e["kind"] == "reply"), None)
    tip, tport = target_for(rule, cgn)
    if reply is not None:
        peer = f"{reply['peer'][0]}:{reply['peer'][1]}"
        how = {"forward": f"the port forward sent it to {topo.ALICE_IP}:{SERVICE_PORT}",
               "dmz": f"the DMZ rule sent it to {topo.ALICE_IP}:{FORWARD_PORT}",
               "static": f"static NAT makes {STATIC_IP} alice's own address, every port"}.get(rule, "nothing stopped it")
        reason = (f"bob's datagram to {tip}:{tport} reached alice's service: {how}; "
                  f"the echo came back from {peer}, "
                  f"{'alice' + chr(39) + 's own public address' if rule == 'static' else 'the router' + chr(39) + 's public endpoint'}")
        return ForwardingResult(rule, nat, cgn, True, peer, reason, world, trace)
    why = "no answer"
    if trace is not None and len(trace):
        df = trace.df
        at_alice = df[(df["node"] == "alice") & (df["direction"] == "in") & (df["dport"] == FORWARD_PORT)
                      & (df["protocol"] == "UDP")]
        if len(at_alice):
            reason = (f"bob's datagram reached alice's computer, at {topo.ALICE_IP}:{FORWARD_PORT}, but not her "
                      f"service on port {SERVICE_PORT}: the DMZ rule keeps the port, and nothing listens on "
                      f"{FORWARD_PORT} (a real system answers with an ICMP port unreachable)")
            return ForwardingResult(rule, nat, cgn, False, "", reason, world, trace)
        drops = df[(df["action"] == "dropped") & (df["node"] != "internet") & (df["node"] != "bob")]
        if len(drops):
            row = drops.iloc[0]
            why = f"{row['node']} dropped it: {row['reason']}"
    if cgn:
        why += (f". The rule is on alice's own router (nat-a), but bob can only reach the carrier's address "
                f"{topo.ALICE_NAT_IP}; the carrier's NAT, which alice does not control, has no such rule")
    reason = f"bob's datagram to {tip}:{tport} did not reach alice's service: {why}"
    return ForwardingResult(rule, nat, cgn, False, "", reason, world, trace)
