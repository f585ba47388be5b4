"""A TCP hole punch in the simulator: ``run_tcp_punch(nat_a, nat_b)``.

Alice and Bob each sit behind their own NAT (``p2plab.topology.punch``). Both connect from port
5000 to the rendezvous server (``p2plab.tcp.TcpRendezvous``), which tells each the public endpoint
the other's connection came from. Then both connect to that endpoint from port 5000 at once. With
``listen=True`` (the standard method, RFC 5128 section 3.4 and Ford et al. 2005) port 5000 also has a
listening socket, so a SYN from the other peer is accepted even when it arrives from a port the
peer's ``connect()`` does not expect (a symmetric NAT picks a new port per destination).
"""

from __future__ import annotations

from typing import Any

from .. import sim
from .. import topology as topo
from ..addresses import fmt
from ..nat import preset
from ..packet import TCP
from ..tcp import (
    PEER_PORT,
    RENDEZVOUS_PORT,
    TcpConnection,
    TcpPunchPeer,
    TcpPunchResult,
    TcpRendezvous,
    TcpStack,
)

__all__ = ["explain", "run_tcp_punch"]


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def run_tcp_punch(nat_a: Any = "port-restricted-cone", nat_b: Any = "port-restricted-cone",
                  bob_delay: float = 0.0, seed: int = 0, run_for: float = 10.0, *, listen: bool = True,
                  topology: topo.Topology | None = None) -> TcpPunchResult:
    """Punch a TCP connection between Alice (behind ``nat_a``) and Bob (behind ``nat_b``) in the simulator.

    ``listen=True`` gives each peer a listening socket on the port it connects from (the standard
    method); ``listen=False`` only ``connect()``s. ``bob_delay`` makes Bob connect to Alice that
    many seconds after the server introduced them. ``nat_a``/``nat_b`` are preset names or
    ``NatBehavior`` objects. Returns a ``TcpPunchResult`` whose ``reason`` says why, in words.
    """
    for nat in (nat_a, nat_b):
        preset(nat)  # a clear error for unknown names before anything is built
    if bob_delay < 0:
        from ..errors import ConfigurationError

        raise ConfigurationError(f"bob_delay is a number of seconds >= 0, e.g. 0.5; got {bob_delay!r}")
    net = sim.Network.build(topology or topo.punch(nat_a, nat_b), seed=seed)
    TcpRendezvous(TcpStack(net.host("server")), RENDEZVOUS_PORT)
    server = (topo.SERVER_IP, RENDEZVOUS_PORT)
    peers = {
        "alice": TcpPunchPeer(TcpStack(net.host("alice")), "alice", "bob", server, listen=listen),
        "bob": TcpPunchPeer(TcpStack(net.host("bob")), "bob", "alice", server, listen=listen, delay=bob_delay),
    }
    for p in peers.values():
        net.after(0.0, p.start)
    net.run(until=run_for)
    return explain(net, peers, _name(nat_a), _name(nat_b), "listen+connect" if listen else "connect")


def _path(c: TcpConnection | None) -> str:
    if c is None:
        return "no connect()"
    return " -> ".join(h.split(":")[0] for _, h in c.history)


def explain(net: sim.Network, peers: dict[str, TcpPunchPeer], nat_a: str, nat_b: str, method: str) -> TcpPunchResult:
    """Turn a finished simulated TCP punch into a ``TcpPunchResult`` with its reason in words."""
    a, b = peers["alice"], peers["bob"]
    df = net.trace.df
    tcp = df[df["protocol"] == "TCP"]
    to_peer = tcp[(tcp["action"] == "sent") & tcp["node"].isin(["alice", "bob"]) & (tcp["dst"] != topo.SERVER_IP)]
    packets = len(to_peer)
    direct = a.direct is not None and b.direct is not None
    how = {p.name: p.how for p in (a, b)}
    if direct:
        starts = [p.punch_started_at for p in (a, b) if p.punch_started_at is not None]
        t = max(a.connected_at, b.connected_at) - min(starts) if starts else None
        reason = _why_direct(net, peers, tcp)
    else:
        t = None
        reason = _why_not(net, peers, tcp)
    return TcpPunchResult(nat_a, nat_b, direct, a.events, b.events, reason, net.trace, how, packets, t, method,
                          "sim", {p.name: p.direct or p.outgoing for p in (a, b)})


def _syn_drops(tcp, node: str) -> list[str]:
    drops = tcp[(tcp["node"] == node) & (tcp["action"] == "dropped") & (tcp["summary"] == "TCP SYN")]
    return list(dict.fromkeys(drops["reason"]))


def _why_direct(net: sim.Network, peers: dict[str, TcpPunchPeer], tcp) -> str:
    a, b = peers["alice"], peers["bob"]
    path = f"(alice: {_path(a.outgoing)}; bob: {_path(b.outgoing)})"
    acceptor = next((p for p in (a, b) if p.how == "accept"), None)
    if acceptor is not None:
        caller = b if acceptor is a else a
        nat = "nat-a" if acceptor is a else "nat-b"
        beh = net.nat(nat).behavior
        text = (f"{acceptor.name}'s listening socket accepted {caller.name}'s SYN from "
                f"{fmt(acceptor.direct.remote)}: {nat} ({beh.filtering} filtering) let it in, the listener "
                f"answered with SYN-ACK and {caller.name}'s connect() completed")
        mine = acceptor.outgoing
        if mine is not None and mine is not acceptor.direct and mine.state != "ESTABLISHED":
            other_nat = "nat-b" if acceptor is a else "nat-a"
            drops = _syn_drops(tcp, other_nat)
            why = f" ({other_nat}: {drops[0]})" if drops else ""
            text += (f". {acceptor.name}'s own connect() to {fmt(mine.remote)} never got through{why}; "
                     "without the listening socket there would be no connection")
        return f"{text} {path}"
    sides = [p.name for p in (a, b) if any("simultaneous open" in h for _, h in p.direct.history)]
    if len(sides) == 2:
        how = "simultaneous open: both SYNs crossed, each side answered the other's SYN with SYN-ACK"
    elif sides:
        other = "bob" if sides[0] == "alice" else "alice"
        how = (f"{sides[0]}'s first SYN was dropped silently by a NAT, but it opened {sides[0]}'s own NAT: "
               f"{other}'s SYN got in while {sides[0]} waited (simultaneous open on {sides[0]}'s side only)")
    else:
        how = "one SYN got through to a waiting peer and was answered with SYN-ACK"
    return f"{how} {path}"


def _why_not(net: sim.Network, peers: dict[str, TcpPunchPeer], tcp) -> str:
    reasons = []
    for me, other, nat in (("alice", "bob", "nat-a"), ("bob", "alice", "nat-b")):
        if nat not in net.nodes:
            continue
        table = net.nat(nat).table
        inside = (net.host(me).ip, PEER_PORT)
        maps = [m for m in table.mappings() + table.expired if m.inside == inside and m.proto == TCP]
        to_server = {m.outside for m in maps if any(r[1] == RENDEZVOUS_PORT for r in m.remotes)}
        to_peer = {m.outside for m in maps if any(r[1] != RENDEZVOUS_PORT for r in m.remotes)}
        if to_server and to_peer - to_server:
            beh = net.nat(nat).behavior
            reasons.append(
                f"{nat} ({beh.mapping} mapping) gave {me} {', '.join(map(fmt, sorted(to_server)))} toward the "
                f"server but {', '.join(map(fmt, sorted(to_peer - to_server)))} toward {other}, so {other}'s "
                f"SYNs went to a port that {me} never sent from")
    for nat in ("nat-a", "nat-b"):
        for why in _syn_drops(tcp, nat)[:1]:
            reasons.append(f"{nat} dropped SYNs: {why}")
    for p in peers.values():
        c = p.outgoing
        if c is None:
            reasons.append(f"{p.name}: {p.state}")
        else:
            reasons.append(f"{p.name}: {c.error or 'still ' + c.state + ', no answer to its SYNs'}")
    return "no direct path. " + " | ".join(reasons)
