"""Connection reversal in the simulator: ``run_reversal(nat)``.

Alice sits behind ``nat`` (``p2plab.topology.one_nat``), Bob has a public address, the rendezvous
server (``p2plab.reversal.ReversalServer``) listens on 192.0.2.1:7000. Bob wants to talk to Alice.
With ``mode="reversal"`` the server asks Alice to call Bob; with ``mode="direct"`` Bob calls the
public endpoint the server saw for Alice, which only a full cone NAT lets in. With ``bob_nat`` set,
Bob is behind a NAT of his own too (``p2plab.topology.punch``) and the server has to refuse.

``explain`` turns events and a trace from either world into a ``ReversalResult``; the real lab's
``p2plab.netns.reversal`` uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import sim
from .. import topology as topo
from ..addresses import fmt
from ..nat import NatBehavior, preset
from ..reversal import MODES, SERVER_PORT, ReversalPeer, ReversalServer
from ..trace import Trace

__all__ = ["ALICE_PORT", "BOB_PORT", "ReversalResult", "explain", "run_reversal", "topology_for"]

ALICE_PORT, BOB_PORT = 5000, 6000


@dataclass
class ReversalResult:
    """What happened when Bob asked to talk to Alice."""

    nat: str
    bob_nat: str | None
    mode: str
    direct: bool
    how: str  # "alice called bob" (reversal), "bob called alice" (direct), or "" when it failed
    verdict: str  # what the server told Bob: dial, wait or refuse
    reason: str
    world: str
    events: dict[str, list[dict]] = field(default_factory=dict)
    trace: Trace | None = None

    def row(self) -> dict[str, Any]:
        """The result as a JSON-friendly dict (what ``python -m p2plab reversal --format json`` prints)."""
        return {"world": self.world, "nat": self.nat, "bob_nat": self.bob_nat, "mode": self.mode,
                "direct": self.direct, "how": self.how, "verdict": self.verdict, "reason": self.reason}

    def __repr__(self) -> str:
        return (f"reversal ({self.world}), alice behind {self.nat}, bob "
                f"{'behind ' + self.bob_nat if self.bob_nat else 'public'}, mode {self.mode}: "
                f"{'connected. ' if self.direct else ''}{self.reason}")


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def topology_for(nat: str | NatBehavior, bob_nat: str | NatBehavior | None = None) -> topo.Topology:
    """Alice behind ``nat``; Bob public (``bob_nat=None``) or behind ``bob_nat``; the server public."""
    if bob_nat is None:
        return topo.one_nat(nat)
    return topo.punch(nat, bob_nat)


def run_reversal(nat: str | NatBehavior = "port-restricted-cone", mode: str = "reversal",
                 bob_nat: str | NatBehavior | None = None, seed: int = 0, run_for: float = 4.0) -> ReversalResult:
    """Bob asks the rendezvous server to connect him to Alice (behind ``nat``), in the simulator.

    ``mode`` is ``"reversal"`` (the server asks Alice to call Bob) or ``"direct"`` (Bob calls the
    endpoint the server saw for Alice). Returns a ``ReversalResult`` whose ``reason`` says why.
    """
    from ..errors import ConfigurationError

    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    preset(nat)
    if bob_nat is not None:
        preset(bob_nat)
    net = sim.Network.build(topology_for(nat, bob_nat), seed=seed)
    net.run_protocol("server", ReversalServer(), SERVER_PORT)
    server = (topo.SERVER_IP, SERVER_PORT)
    alice = net.run_protocol("alice", ReversalPeer("alice", server), ALICE_PORT)
    bob = net.run_protocol("bob", ReversalPeer("bob", server, call="alice", mode=mode), BOB_PORT)
    net.run(until=run_for)
    events = {name: [{"kind": e.kind, "time": e.time, **e.data} for e in r.events]
              for name, r in (("alice", alice), ("bob", bob))}
    return explain(events, net.trace, _name(nat), None if bob_nat is None else _name(bob_nat), mode, "sim")


def _first(events: list[dict], kind: str) -> dict | None:
    return next((e for e in events if e["kind"] == kind), None)


def explain(events: dict[str, list[dict]], trace: Trace | None, nat: str, bob_nat: str | None, mode: str,
            world: str) -> ReversalResult:
    """A ``ReversalResult`` from the peers' events (dicts with ``kind``) and the trace of the run."""
    a, b = events.get("alice", []), events.get("bob", [])
    verdict_ev = _first(b, "verdict")
    verdict = verdict_ev["verdict"] if verdict_ev else ""
    ca, cb = _first(a, "connected"), _first(b, "connected")
    direct = ca is not None and cb is not None
    how = ""
    if direct:
        if ca["how"] == "dialled":
            how = "alice called bob"
            reason = (f"the server saw that alice is behind a NAT and bob is not, so it told bob to wait and asked "
                      f"alice to call bob at {fmt(tuple(ca['peer']))}. Alice's HELLO created a mapping in nat-a "
                      f"for bob's endpoint, so bob's HELLO-ACK came back in (to {fmt(tuple(cb['peer']))}, as bob "
                      "saw her)")
        else:
            how = "bob called alice"
            reason = (f"bob called the endpoint the server had seen for alice, {fmt(tuple(cb['peer']))}, and nat-a "
                      f"({nat}) let his unsolicited HELLO in")
    else:
        fail_b, fail_a = _first(b, "failed"), _first(a, "failed")
        parts = []
        if verdict == "refuse" and fail_b:
            parts.append(fail_b["reason"])
        else:
            drops = _drops(trace)
            if drops:
                parts.append(drops)
            for name, f in (("bob", fail_b), ("alice", fail_a)):
                if f:
                    parts.append(f"{name}: {f['reason']}")
        reason = "no connection. " + " | ".join(parts or ["neither peer heard from the other"])
    return ReversalResult(nat, bob_nat, mode, direct, how, verdict, reason, world, events, trace)


def _drops(trace: Trace | None) -> str:
    if trace is None or not len(trace):
        return ""
    df = trace.df
    hello = df[(df["action"] == "dropped") & df["summary"].str.contains("HELLO", na=False)]
    hello = hello[hello["node"] != "internet"]
    if hello.empty:
        return ""
    row = hello.iloc[0]
    return f"{row['node']} dropped the HELLO to {row['dst']}:{row['dport']}: {row['reason']}"
