"""Lab 08 - capstone: connect Alice and Bob across any pair of NATs, falling back to the relay.

The learner writes ``connect(w)``. ``w = capstone.world(nat_a, nat_b)`` is a fresh simulated network
(``topology.punch``: Alice behind ``nat_a``, Bob behind ``nat_b``) with a rendezvous server
(``w.rendezvous``, p2plab.punch's) and a TURN server (``w.turn_server``, users in ``w.credentials``)
on 192.0.2.1. ``connect`` does not know the NATs: it tries a hole punch, falls back to the TURN
relay when the punch fails, delivers ``w.message`` from Alice to Bob, and returns the path it used:
``"direct"`` or ``"relay"``.

``check_connect(connect)`` runs it for every ordered pair of NAT presets and checks: the message
reached a socket on Bob's host; it came from Alice's NAT (direct) or from the relay (relay), as
``connect`` said; and the path is direct exactly where p2plab's own punching works
(``p2plab.punch.run_punch``) - a relay costs money (lab 06), so it is the fallback, never the plan.
"""

from __future__ import annotations

import random
from typing import Any

from .. import sim, topology
from ..addresses import fmt
from ..matrix import DEFAULT_PRESETS
from ..punch import RENDEZVOUS_PORT, RendezvousServer, run_punch
from ..turn import TurnServer
from .common import check, fail, try_it

LAB = "capstone"
TURN_PORT = 3478
CREDENTIALS = {"alice": ("alice", "alice-secret"), "bob": ("bob", "bob-secret")}
PATHS = ("direct", "relay")


class World:
    """One attempt: Alice behind one NAT, Bob behind another, a rendezvous server and a TURN server.

    ``w.net`` (the simulated network), ``w.alice`` / ``w.bob`` (hosts), ``w.rendezvous`` and
    ``w.turn_server`` (server addresses), ``w.credentials[name]`` ((username, password) for TURN),
    ``w.message`` (the bytes Alice must deliver to Bob), ``w.run(seconds)`` (advance the clock).
    """

    def __init__(self, nat_a: str, nat_b: str, seed: int = 0) -> None:
        self._nats = (nat_a, nat_b)  # connect() should not peek: it finds out by trying
        self.net = sim.Network.build(topology.punch(nat_a, nat_b), seed=seed)
        self.alice = self.net.host("alice")
        self.bob = self.net.host("bob")
        self.rendezvous = (topology.SERVER_IP, RENDEZVOUS_PORT)
        self.turn_server = (topology.SERVER_IP, TURN_PORT)
        self.credentials = dict(CREDENTIALS)
        self.message = f"hello bob, from alice ({seed})".encode()
        self.net.run_protocol("server", RendezvousServer(), RENDEZVOUS_PORT)
        self.turn = TurnServer(dict(CREDENTIALS.values()), rng=random.Random(f"{seed}-turn"))
        self.net.run_protocol("server", self.turn, TURN_PORT)
        self.arrivals: list[tuple[float, tuple[str, int], tuple[str, int], bool]] = []
        self._bob_receive = self.bob.receive
        self.bob.receive = self._watch  # type: ignore[method-assign]

    def _watch(self, pkt: Any, from_node: Any) -> None:
        if pkt.proto == sim.UDP and pkt.payload == self.message:
            bound = (pkt.dst, pkt.dport) in self.bob.sockets
            self.arrivals.append((self.net.now, (pkt.src, pkt.sport), (pkt.dst, pkt.dport), bound))
        self._bob_receive(pkt, from_node)

    def run(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass."""
        self.net.run(until=self.net.now + seconds)

    @property
    def delivered(self) -> list[tuple[str, int]]:
        """Where each copy of ``message`` that reached a socket on Bob's host came from."""
        return [src for _, src, _, bound in self.arrivals if bound]

    def __repr__(self) -> str:
        return (f"<World: alice {topology.ALICE_IP} and bob {topology.BOB_IP}, each behind a NAT; rendezvous "
                f"{fmt(self.rendezvous)}, TURN {fmt(self.turn_server)}; message {self.message!r}>")


def world(nat_a: str = "port-restricted-cone", nat_b: str = "port-restricted-cone", seed: int = 0) -> World:
    """A fresh network for one connection attempt."""
    return World(nat_a, nat_b, seed)


def path_of(src: tuple[str, int]) -> str:
    """Which path a datagram from ``src`` took to Bob: from the TURN server is the relay."""
    return "relay" if src[0] == topology.SERVER_IP else "direct"


_REFERENCE: dict[tuple[str, str], bool] = {}


def punch_works(nat_a: str, nat_b: str) -> bool:
    """Does p2plab's own hole punching get a direct path between these NATs (seed 0)?"""
    if (nat_a, nat_b) not in _REFERENCE:
        _REFERENCE[(nat_a, nat_b)] = run_punch(nat_a, nat_b, seed=0, record=False).direct
    return _REFERENCE[(nat_a, nat_b)]


def attempt(connect: Any, nat_a: str, nat_b: str, seed: int = 0) -> dict:
    """Run ``connect`` once; returns the world, the path it reported and where the message came from."""
    w = world(nat_a, nat_b, seed)
    path = connect(w)
    return {"world": w, "path": path, "delivered": w.delivered, "arrivals": list(w.arrivals)}


def _drops_at_bob_nat(w: World) -> list[str]:
    df = w.net.trace.df
    d = df[(df["action"] == "dropped") & (df["node"] == "nat-b") & (df["src"] == topology.SERVER_IP)]
    return list(d["reason"])


def _diagnose_missing(w: World, path: str, nat_a: str, nat_b: str) -> None:
    case = f"{nat_a} (alice) x {nat_b} (bob)"
    unbound = [a for a in w.arrivals if not a[3]]
    if unbound:
        _, src, dst, _ = unbound[0]
        fail(f"{case}: the message reached Bob's host at {fmt(dst)}, but no socket listens there. Send to the "
             "endpoint Bob's socket is bound to (or that his NAT maps to it).")
    if path == "direct":
        fail(f"{case}: you returned 'direct', but the message never reached Bob. After both sides report "
             "'connected', send w.message from Alice's punching socket to the endpoint her event names, then "
             "run the network a little (w.run(1.0)) so it arrives.")
    turn = w.turn
    if not turn.allocations:
        fail(f"{case}: you fell back to the relay, but Alice holds no allocation on the TURN server: run a "
             "TurnClient(w.turn_server, *w.credentials['alice']) on Alice and wait for its 'allocated' event.")
    if turn.stats.get("dropped-no-permission"):
        fail(f"{case}: the TURN server dropped {turn.stats['dropped-no-permission']} packet(s) for lack of a "
             "permission: Alice must create a permission for Bob's public IP (the rendezvous server's 'peer' event "
             "tells her) *before* data flows either way.")
    drops = _drops_at_bob_nat(w)
    if drops:
        fail(f"{case}: Bob's NAT dropped the relay's packets ({drops[0]}). Bob's NAT only admits addresses Bob has "
             "sent to: have Bob send a packet to Alice's relay address first (then Alice learns his mapping from the "
             "Data indication and sends to exactly that).")
    if not turn.stats.get("relayed-to-peer"):
        fail(f"{case}: nothing was relayed to Bob: after the permission, Alice sends w.message with "
             "turn_client.send_to(message, bob_endpoint) - and the runner must send it (runner.poke()), then the "
             "network must run (w.run(1.0)).")
    fail(f"{case}: the relay sent something toward Bob, but w.message never reached a socket on Bob's host: send "
         "it to the endpoint Bob's packet came from (the peer in Alice's 'data' event).")


@check(LAB, "the cell 'Exercise: connect', function connect")
def check_connect(connect: Any, presets: list[str] | None = None) -> str:
    names = list(presets or DEFAULT_PRESETS)
    order = [("port-restricted-cone", "port-restricted-cone"), ("symmetric", "symmetric")]
    pairs = [p for p in order if p[0] in names and p[1] in names]
    pairs += [(a, b) for a in names for b in names if (a, b) not in pairs]
    counts = {"direct": 0, "relay": 0}
    for a, b in pairs:
        out = attempt(connect, a, b)
        w, path = out["world"], out["path"]
        case = f"{a} (alice) x {b} (bob)"
        if path not in PATHS:
            fail(f"{case}: connect returned {path!r}; return 'direct' or 'relay', the path the message took.")
        if not out["delivered"]:
            _diagnose_missing(w, path, a, b)
        took = {path_of(src) for src in out["delivered"]}
        if path not in took:
            other = took.pop()
            fail(f"{case}: you returned {path!r}, but Bob got the message from "
                 f"{fmt(out['delivered'][0])}, i.e. via the {other} path. Report the path you actually used.")
        expected = "direct" if punch_works(a, b) else "relay"
        if path != expected:
            if expected == "direct":
                fail(f"{case}: you used the relay, but hole punching works for this pair (p2plab's own punch gets "
                     "through). Try the punch first and give it a few seconds; the relay is the fallback - it "
                     "costs money and adds delay (lab 06).")
            fail(f"{case}: you report 'direct', but hole punching cannot work for this pair.")
        counts[path] += 1
    return (f"all {len(pairs)} NAT pairs: {counts['direct']} direct, {counts['relay']} through the relay, and the "
            "message reached Bob every time.")


def table(connect: Any, presets: list[str] | None = None, with_ice: bool = True):
    """For a demo cell: your connect() for every pair of presets, as a DataFrame (with what p2plab's ICE
    chose alongside), or None if connect is not written yet."""
    import pandas as pd

    names = list(presets or DEFAULT_PRESETS)
    rows = []
    for a in names:
        for b in names:
            out = try_it(attempt, connect, a, b, _label=getattr(connect, "__name__", "connect"))
            if out is None:
                return None
            delivered = out["delivered"]
            row = {"alice's NAT": a, "bob's NAT": b, "path": out["path"], "arrived": bool(delivered),
                   "from": fmt(delivered[0]) if delivered else ""}
            if with_ice:
                from ..ice import run_ice

                res = run_ice(a, b, seed=0, record=False)
                row["ICE"] = "direct" if res.direct else ("relay" if res.relayed else "failed")
            rows.append(row)
    return pd.DataFrame(rows)


def try_pair(connect: Any, nat_a: str, nat_b: str, seed: int = 0) -> str | None:
    """For a demo cell: one attempt in words (never raises)."""
    out = try_it(attempt, connect, nat_a, nat_b, seed, _label=getattr(connect, "__name__", "connect"))
    if out is None:
        return None
    d = out["delivered"]
    where = f"bob got the message from {fmt(d[0])} ({path_of(d[0])})" if d else "the message never reached bob"
    return f"{nat_a} x {nat_b}: connect says {out['path']!r}; {where}"


__all__ = ["world", "World", "attempt", "check_connect", "table", "try_pair", "punch_works", "path_of", "PATHS"]
