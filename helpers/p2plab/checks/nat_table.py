"""Lab 02 - the NAT table: mapping and filtering behaviours as parameters (RFC 4787).

The learner writes a class ``Nat(mapping, filtering, public_ip="203.0.113.10", first_port=40000)``
with two methods:

* ``outbound(inside, remote) -> (public_ip, port)``: a packet from ``inside`` (ip, port) to
  ``remote`` leaves with this outside endpoint (creating a mapping when needed);
* ``inbound(outside_port, remote) -> (ip, port) | None``: a packet from ``remote`` to
  ``public_ip:outside_port`` is delivered to this inside endpoint, or dropped (None).

``check_nat(Nat)`` drives it against all nine mapping x filtering combinations and compares every
answer with ``p2plab.nat.NatTable``; ``check_nat_in_simulator(Nat)`` plugs it into a simulated NAT
router (``plug_in``) and runs a real hole punch through it.
"""

from __future__ import annotations

from typing import Any

from ..addresses import fmt
from ..nat import AD, APD, BEHAVIOURS, EI, NatBehavior, NatTable, classic_name
from ..packet import Datagram
from .common import check, endpoint, fail

LAB = "nat_table"
PUBLIC_IP = "203.0.113.10"
A, B = "192.168.1.10", "192.168.1.11"
S1, S2, STRANGER = "192.0.2.1", "192.0.2.2", "198.51.100.9"

# (inside, remote, what it tests)
OUTBOUND = [
    ((A, 5000), (S1, 3478), "a first packet"),
    ((A, 5000), (S1, 3479), "the same server address, another port"),
    ((A, 5000), (S2, 3478), "another server address"),
    ((B, 5000), (S1, 3478), "a second inside host"),
    ((A, 6000), (S1, 3478), "another inside port of the first host"),
    ((A, 5000), (S1, 3478), "the first destination again"),
]
# (index of the outbound whose mapping is targeted, or None = a port never mapped; remote; what)
INBOUND = [
    (0, (S1, 3478), "the server Alice sent to, answering"),
    (0, (S1, 9999), "the server's address, from a port Alice never sent to"),
    (0, (STRANGER, 4000), "a stranger Alice never sent to"),
    (3, (S1, 3478), "the server, answering the second inside host"),
    (None, (S1, 3478), "a port with no mapping"),
]
UNMAPPED_PORT = 12345

MAPPING_WHY = {
    EI: "with endpoint-independent mapping an inside endpoint keeps ONE outside port for every destination",
    AD: "with address-dependent mapping an inside endpoint gets one outside port per destination ADDRESS "
        "(any port of that address shares it)",
    APD: "with address-and-port-dependent mapping each destination (address AND port) needs its own mapping",
}
FILTER_WHY = {
    EI: "with endpoint-independent filtering anyone may send to an existing mapping",
    AD: "with address-dependent filtering only ADDRESSES the inside endpoint has sent to may use the "
        "mapping (any port of them)",
    APD: "with address-and-port-dependent filtering only the exact address AND port the inside endpoint has "
         "sent to may use the mapping",
}


def reference(mapping: str, filtering: str, public_ip: str = PUBLIC_IP, first_port: int = 40000) -> NatTable:
    """The NatTable that ``Nat(mapping, filtering)`` should behave like (sequential ports from first_port)."""
    return NatTable(NatBehavior(mapping, filtering, port_allocation="sequential", port_range=(first_port, 65535)),
                    [public_ip])


def _ref_out(table: NatTable, inside: tuple, remote: tuple) -> tuple[str, int]:
    pkt, _ = table.outbound(Datagram(inside[0], inside[1], remote[0], remote[1]), 0.0)
    return pkt.src, pkt.sport


def _ref_in(table: NatTable, port: int, remote: tuple) -> tuple[str, int] | None:
    pkt, _ = table.inbound(Datagram(remote[0], remote[1], PUBLIC_IP, port), 0.0)
    return None if pkt is None else (pkt.dst, pkt.dport)


def _name(m: str, f: str) -> str:
    c = classic_name(m, f)
    return f"mapping={m!r}, filtering={f!r}" + (f" ({c})" if c != "-" else "")


def _drive(Nat: Any, m: str, f: str) -> None:
    nat = Nat(m, f, PUBLIC_IP, 40000)
    ref = reference(m, f)
    who = _name(m, f)
    ref_eps: list[tuple[str, int]] = []
    got_eps: list[tuple[str, int]] = []
    for i, (inside, remote, what) in enumerate(OUTBOUND):
        r = _ref_out(ref, inside, remote)
        raw = nat.outbound(inside, remote)
        g = endpoint(raw)
        if g is None:
            fail(f"outbound() returned {raw!r}; it should return the outside endpoint as a tuple "
                 f"(public_ip, port), e.g. ('{PUBLIC_IP}', 40000).")
        if g[0] != PUBLIC_IP:
            fail(f"outbound() rewrote the source to {g[0]}; a NAT puts its own public address there "
                 f"({PUBLIC_IP}, the public_ip it was created with).")
        earlier_ref = [j for j, e in enumerate(ref_eps) if e == r]
        earlier_got = [j for j, e in enumerate(got_eps) if e == g]
        ref_eps.append(r)
        got_eps.append(g)
        if earlier_ref == earlier_got:
            continue
        prev = OUTBOUND[earlier_got[0]] if earlier_got else None
        if not earlier_ref and earlier_got:
            if prev[0] != inside:
                fail(f"[{who}] your NAT gave {fmt(inside)} outside port {g[1]}, which already belongs to "
                     f"{fmt(prev[0])}: two inside endpoints on one outside port means replies cannot be told "
                     "apart. A new mapping needs a port no other mapping uses.")
            fail(f"[{who}] your NAT reused outside port {g[1]} for {fmt(inside)} -> {fmt(remote)} ({what}) after "
                 f"{fmt(prev[1])}: {MAPPING_WHY[m]}.")
        if earlier_ref and not earlier_got:
            if i == len(OUTBOUND) - 1:
                fail(f"[{who}] sending to {fmt(remote)} a second time got a new outside port {g[1]}: look up the "
                     "existing mapping before making a new one.")
            fail(f"[{who}] your NAT gave {fmt(inside)} a new outside port {g[1]} for {fmt(remote)} ({what}): "
                 f"{MAPPING_WHY[m]}. Which parts of (inside, remote) make up your mapping key?")
        fail(f"[{who}] for {fmt(inside)} -> {fmt(remote)} ({what}) your NAT reused the mapping of "
             f"{fmt(prev[0])} -> {fmt(prev[1])}, which it should not: {MAPPING_WHY[m]}.")
    for idx, remote, what in INBOUND:
        port_ref = UNMAPPED_PORT if idx is None else ref_eps[idx][1]
        port_got = UNMAPPED_PORT if idx is None else got_eps[idx][1]
        r = _ref_in(ref, port_ref, remote)
        raw = nat.inbound(port_got, remote)
        g = None if raw is None else endpoint(raw)
        if raw is not None and g is None:
            fail(f"inbound() returned {raw!r}; return the inside endpoint (ip, port) to deliver to, or None to "
                 "drop the packet.")
        if r == g:
            continue
        target = f"{PUBLIC_IP}:{port_got}"
        if idx is None:
            fail(f"[{who}] your NAT delivered a packet for {target}, a port it never mapped, to {fmt(g)}: with "
                 "no mapping there is nobody to deliver to - drop it (return None).")
        owner = OUTBOUND[idx][0]
        if r is None:
            fail(f"[{who}] your NAT let {what} ({fmt(remote)}) in through {target}: {FILTER_WHY[f]}. Remember "
                 "whom each mapping has sent to.")
        if g is None:
            if remote == OUTBOUND[idx][1]:
                fail(f"[{who}] your NAT dropped the answer of {fmt(remote)}, which {fmt(owner)} had just sent to: "
                     "a reply from a destination of the mapping must always get in.")
            fail(f"[{who}] your NAT dropped {what} ({fmt(remote)}) at {target}: {FILTER_WHY[f]}.")
        fail(f"[{who}] your NAT delivered a packet for {target} to {fmt(g)}, but that mapping belongs to "
             f"{fmt(r)}: translate back to the inside endpoint that owns the outside port.")


@check(LAB, "the cell 'Exercise: the NAT class', methods mapping_key, outbound and inbound of Nat")
def check_nat(Nat: Any) -> str:
    for m in BEHAVIOURS:
        for f in BEHAVIOURS:
            _drive(Nat, m, f)
    return ("all 9 mapping x filtering combinations behave like p2plab's NatTable "
            f"({len(OUTBOUND)} outbound and {len(INBOUND)} inbound packets each).")


# -- in the simulator ------------------------------------------------------------------------------
class LearnerTable:
    """Wraps a learner's ``Nat`` object so a simulated NAT router uses it as its translation table."""

    def __init__(self, nat: Any, public_ip: str, name: str = "nat") -> None:
        self.nat = nat
        self.public_ips = [public_ip]
        self.name = name
        self.behavior = None
        self.expired: list = []
        self.rows: list[dict] = []

    def outbound(self, pkt: Datagram, now: float) -> tuple[Datagram, str]:
        ip, port = self.nat.outbound((pkt.src, pkt.sport), (pkt.dst, pkt.dport))
        self.rows.append({"inside": fmt((pkt.src, pkt.sport)), "outside": fmt((ip, port)),
                          "remote": fmt((pkt.dst, pkt.dport)), "time": round(now, 6)})
        return pkt.rewrite(src=ip, sport=port), f"your NAT: {fmt((pkt.src, pkt.sport))} -> {fmt((ip, port))}"

    def inbound(self, pkt: Datagram, now: float) -> tuple[Datagram | None, str]:
        to = self.nat.inbound(pkt.dport, (pkt.src, pkt.sport))
        if to is None:
            return None, f"your NAT dropped it: inbound({pkt.dport}, {fmt((pkt.src, pkt.sport))}) returned None"
        return pkt.rewrite(dst=to[0], dport=to[1]), f"your NAT: {fmt((pkt.dst, pkt.dport))} -> {fmt(to)}"

    def mappings(self, now: float | None = None) -> list:
        return []

    def table(self, now: float | None = None):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["time", "inside", "remote", "outside"])


def plug_in(net: Any, nat_name: str, Nat: Any, mapping: str, filtering: str) -> Any:
    """Replace the translation table of simulated NAT ``nat_name`` by ``Nat(mapping, filtering, ...)``.

    Returns the learner's NAT object. The router's behaviour (hairpinning) is kept.
    """
    router = net.nat(nat_name)
    obj = Nat(mapping, filtering, router.public_ips[0], 40000)
    router.table = LearnerTable(obj, router.public_ips[0], nat_name)
    router.behavior = NatBehavior(mapping, filtering, name="yours")
    return obj


def punch_through(Nat: Any, mapping: str, filtering: str, other: str = "port-restricted-cone", seed: int = 0,
                  reference_nat: bool = False) -> Any:
    """Run the course's hole punch with Alice behind ``Nat(mapping, filtering)`` (or p2plab's own NAT with
    ``reference_nat=True``) and Bob behind ``other``; returns the PunchResult."""
    from .. import punch, sim, topology

    beh = NatBehavior(mapping, filtering, port_allocation="sequential", port_range=(40000, 65535), name="yours")
    net = sim.Network.build(topology.punch(beh, other), seed=seed)
    if not reference_nat:
        plug_in(net, "nat-a", Nat, mapping, filtering)
    server = (topology.SERVER_IP, punch.RENDEZVOUS_PORT)
    net.run_protocol("server", punch.RendezvousServer(), punch.RENDEZVOUS_PORT)
    ra = net.run_protocol("alice", punch.PunchPeer("alice", "bob", server), 5000)
    rb = net.run_protocol("bob", punch.PunchPeer("bob", "alice", server), 5000)
    net.run(until=6.0)
    return punch.explain(net, ra, rb, "yours" if not reference_nat else beh.name, other)


@check(LAB, "the cell 'Exercise: the NAT class' (check_nat must pass first)")
def check_nat_in_simulator(Nat: Any) -> str:
    lines = []
    for m, f in ((EI, APD), (EI, EI), (APD, APD), (AD, AD)):
        for other in ("port-restricted-cone", "symmetric"):
            mine = punch_through(Nat, m, f, other)
            ref = punch_through(Nat, m, f, other, reference_nat=True)
            if mine.direct != ref.direct:
                fail(f"with your NAT ({_name(m, f)}) for Alice and a {other} NAT for Bob, hole punching "
                     f"{'worked' if mine.direct else 'failed'}, but with p2plab's NAT it "
                     f"{'works' if ref.direct else 'fails'}. What happened: {mine.reason}")
            label = classic_name(m, f) if classic_name(m, f) != "-" else f"{m} mapping+filtering"
            lines.append(f"{label} x {other}: {'direct' if mine.direct else 'no direct path'}")
    return "hole punching through your NAT ends as through p2plab's: " + "; ".join(lines) + "."
