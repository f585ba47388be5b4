"""``run_ice``: two ICE agents, a STUN server and a TURN server in the simulator, and a report.

>>> from p2plab.ice import run_ice
>>> r = run_ice("port-restricted-cone", "port-restricted-cone")
>>> r.success, r.direct, r.local_type, r.remote_type
(True, True, 'srflx', 'srflx')

The world is ``topology.punch(nat_a, nat_b)``: Alice (192.168.1.10) behind nat-a, Bob
(192.168.0.25) behind nat-b, and a server host (192.0.2.1, 192.0.2.2) running a STUN server on
UDP 3478 and a TURN server on UDP 3479 (its relay addresses are 192.0.2.1 ports 49152-65535).
Both agents use UDP port 5000. Alice is the controlling agent (she "offers"), Bob controlled.

Signaling is out of band: when an agent has gathered its candidates, its ufrag, password and
candidates reach the other agent ``signaling_delay`` seconds later (0 = instantly), like an SDP
offer/answer through a web server the NATs never see.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..addresses import fmt, is_private, is_shared_cgn
from ..sim import Network, ProtocolRunner
from ..stun.message import is_stun
from .agent import TR, IceAgent, IceConfig
from .candidates import RELAY, Candidate
from .checklist import FAILED, IN_PROGRESS, CandidatePair

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..trace import Trace

STUN_PORT = 3478
TURN_PORT = 3479
TURN_TLS_PORT = 443  # the lab's TURN server over TLS (netns world only): what a UDP-blocked network lets out
AGENT_PORT = 5000
TURN_USERS = {"alice": "alice-secret", "bob": "bob-secret"}

REPORT_COLUMNS = ["agent", "local", "remote", "local_type", "remote_type", "type", "priority", "state", "valid",
                  "nominated", "selected", "checks_sent", "in_checklist", "foundation", "why"]


def turn_available() -> bool:
    """True when the TURN client and server modules (``p2plab.turn``) can be imported."""
    try:
        from ..turn.client import TurnClient  # noqa: F401
        from ..turn.server import TurnServer  # noqa: F401
    except ImportError:
        return False
    return True


# The simulator's runner serves multi-address protocols (the TURN server's relay sockets) and
# ``poke()`` sends what an out-of-band call (signaling: ``set_remote``) queued.
_Runner = ProtocolRunner


@dataclass
class IceResult:
    """The outcome of one ICE run between Alice and Bob.

    ``local``/``remote`` are Alice's selected pair's candidates (``pair`` the pair itself),
    ``direct`` is True when neither is relayed, ``time`` the seconds from the start (gathering
    included) until both agents had a nominated pair. ``report`` has one dict per candidate pair
    of both agents (columns ``REPORT_COLUMNS``), ``df`` the same as a DataFrame.
    """

    nat_a: str
    nat_b: str
    success: bool
    direct: bool
    relayed: bool
    local: Candidate | None
    remote: Candidate | None
    pair: CandidatePair | None
    time: float | None
    reason: str
    report: list[dict[str, Any]] = field(default_factory=list, repr=False)
    candidates: dict[str, list[Candidate]] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list)
    gathering_time: float | None = None
    completed_at: dict[str, float | None] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    trace: Trace | None = field(default=None, repr=False)
    network: Network | None = field(default=None, repr=False)
    agents: dict[str, IceAgent] = field(default_factory=dict, repr=False)
    events: dict[str, list] = field(default_factory=dict, repr=False)

    @property
    def local_type(self) -> str | None:
        return self.local.type if self.local else None

    @property
    def remote_type(self) -> str | None:
        return self.remote.type if self.remote else None

    @property
    def time_to_nomination(self) -> float | None:
        return self.time

    @property
    def df(self) -> pd.DataFrame:
        """The pair report as a DataFrame (one row per candidate pair, both agents)."""
        import pandas as pd

        return pd.DataFrame(self.report, columns=REPORT_COLUMNS)

    def close(self, wait: float = 2.0) -> None:
        """Close both agents (``IceAgent.close``: TURN allocations deleted, timers stopped) and run
        the simulated network ``wait`` seconds more so the deletions reach the TURN server."""
        if self.network is None:
            return
        net = self.network
        for agent in self.agents.values():
            agent.close(net.now)
        for r in net.runners:
            if r.protocol in self.agents.values():
                r.poke()
        net.run(until=net.now + wait)

    def pairs(self, agent: str = "alice") -> list[dict[str, Any]]:
        """The report rows of one agent (e.g. for ``p2plab.viz.ice_pairs_table``)."""
        return [r for r in self.report if r["agent"] == agent]

    def candidates_df(self) -> pd.DataFrame:
        """Every gathered candidate of both agents as a DataFrame."""
        import pandas as pd

        rows = [{"agent": a, **c.as_dict()} for a, cs in self.candidates.items() for c in cs]
        return pd.DataFrame(rows)

    def as_dict(self) -> dict[str, Any]:
        return {"world": "sim", "nat_a": self.nat_a, "nat_b": self.nat_b, "success": self.success, "direct": self.direct,
                "relayed": self.relayed, "local": fmt(self.local.addr) if self.local else None,
                "remote": fmt(self.remote.addr) if self.remote else None, "local_type": self.local_type,
                "remote_type": self.remote_type,
                "relay_protocol": self.local.relay_protocol if self.local is not None and self.local.type == RELAY else None,
                "time": None if self.time is None else round(self.time, 6),
                "reason": self.reason, "seed": self.seed}

    def __str__(self) -> str:
        if not self.success:
            return f"{self.nat_a} x {self.nat_b}: ICE FAILED\n{self.reason}"
        how = "DIRECT" if self.direct else "RELAYED"
        return (f"{self.nat_a} x {self.nat_b}: {how} via {self.local_type}-{self.remote_type} "
                f"{fmt(self.local.addr)} -> {fmt(self.remote.addr)}, nominated after {self.time * 1000:.0f} ms\n"
                f"{self.reason}")


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def run_ice(nat_a: Any = "port-restricted-cone", nat_b: Any = "port-restricted-cone", seed: int = 0, *,
            turn: bool = True, stun: bool = True, signaling_delay: float = 0.0,
            config_a: IceConfig | None = None, config_b: IceConfig | None = None,
            bob_controlling: bool = False, alice_controlling: bool = True, tie_breakers: tuple[int, int] | None = None,
            settle: bool = True, run_for: float = 60.0, topology: Any = None, record: bool = True,
            consent: bool = False) -> IceResult:
    """Run ICE between Alice (controlling) and Bob in the simulator and explain every pair.

    ``turn=False`` (or a missing ``p2plab.turn``) runs without relayed candidates, ``stun=False``
    without server-reflexive ones. ``bob_controlling=True`` makes both agents controlling (a role
    conflict, repaired with ``tie_breakers=(alice, bob)``); ``alice_controlling=False`` with
    ``bob_controlling=False`` makes both controlled (the larger tie-breaker takes control). With ``settle`` the run goes on after
    nomination until the checks still in flight have an answer or time out, so every pair ends
    with a final state; ``time`` is still the time of nomination.

    ``consent``: keep RFC 7675 consent checks running on the selected pair (every 4-6 s) in
    agents built here (``config_a``/``config_b`` decide for themselves). Off by default (and
    keepalives with it) so a run's trace shows ICE alone; ``IceAgent`` itself has consent on
    unless told otherwise.
    After the run, ``result.close()`` ends both sessions and deletes their TURN allocations.
    """
    from .. import topology as topo

    t = topology or topo.punch(nat_a, nat_b)
    net = Network.build(t, seed=seed, record=record)
    server_ip = topo.SERVER_IP
    notes: list[str] = []
    stun_addr = (server_ip, STUN_PORT) if stun else None
    turn_addr = None
    if turn and turn_available():
        from ..stun.server import StunServer
        from ..turn.server import TurnServer

        turn_addr = (server_ip, TURN_PORT)
        if stun:
            net.runners.append(_Runner(net, net.host("server"), StunServer(), STUN_PORT))
        turn_server = TurnServer(dict(TURN_USERS), rng=random.Random(f"{seed}-turn"))
        net.runners.append(_Runner(net, net.host("server"), turn_server, TURN_PORT))
    else:
        if turn:
            notes.append("no relayed candidates: p2plab.turn (TurnClient/TurnServer) is not available")
        if stun:
            from ..stun.server import StunServer

            net.runners.append(_Runner(net, net.host("server"), StunServer(), STUN_PORT))

    tb = tie_breakers or (None, None)
    agents = {}
    for name, controlling, cfg, tie in (("alice", alice_controlling, config_a, tb[0]), ("bob", bob_controlling, config_b, tb[1])):
        cfg = cfg if cfg is not None else IceConfig(consent=consent, keepalive=None if not consent else TR)
        agents[name] = IceAgent(name, controlling=controlling, stun_server=stun_addr, turn_server=turn_addr,
                                turn_username=name if turn_addr else None,
                                turn_password=TURN_USERS[name] if turn_addr else None,
                                rng=random.Random(f"{seed}-{name}"), config=cfg, tie_breaker=tie)
    runners: dict[str, _Runner] = {}
    other = {"alice": "bob", "bob": "alice"}

    def deliver(to: str, params: dict[str, Any]) -> None:
        agents[to].set_remote(params["ufrag"], params["password"], params["candidates"], now=net.now)
        runners[to].poke()

    def on_event(ev) -> None:
        if ev.kind == "gathering-complete":
            params = {"ufrag": ev.ufrag, "password": ev.password, "candidates": list(ev.candidates)}
            net.after(signaling_delay, deliver, other[ev.agent], params)

    for name in ("alice", "bob"):
        r = runners[name] = _Runner(net, net.host(name), agents[name], AGENT_PORT)
        r.on_event = on_event
        for ev in list(r.events):  # emitted while starting, before on_event was set
            on_event(ev)
        net.runners.append(r)

    a, b = agents["alice"], agents["bob"]
    step = 0.05
    while net.now < run_for:
        net.run(until=min(run_for, net.now + step))
        if a.done and b.done and (not settle or (a.live_checks() == 0 and b.live_checks() == 0)):
            break
    return _explain(net, agents, runners, _name(nat_a), _name(nat_b), seed, notes)


# -- explaining -----------------------------------------------------------------------------------
def _payload(raw: bytes) -> bytes:
    if not raw:
        return b""
    if raw[0] >> 4 == 4:
        ihl = (raw[0] & 0x0F) * 4
        return raw[ihl + 8:] if raw[9] == 17 else b""
    return raw[48:] if raw[6] == 17 else b""


def _drops_by_tid(trace: Trace) -> dict[bytes, tuple[str, str]]:
    """The first drop (node, reason) of each STUN transaction ID seen dropped in the trace."""
    out: dict[bytes, tuple[str, str]] = {}
    df = trace.df
    for i in df.index[df["action"] == "dropped"]:
        data = _payload(trace.raw(int(i)))
        if len(data) >= 20 and is_stun(data):
            tid = bytes(data[8:20])
            if tid not in out:
                out[tid] = (str(df.at[i, "node"]), str(df.at[i, "reason"]))
    return out


def _explain_drop(remote: tuple[str, int], node: str, reason: str) -> str:
    ip = remote[0]
    if node == "internet" and is_private(ip):
        return "private address of another network"
    if node == "internet" and is_shared_cgn(ip):
        return "carrier-grade NAT address, meaningful only inside one provider's network"
    if "filtered" in reason:
        return f"{node} filtered them: {reason}"
    if "unsolicited" in reason:
        return f"{node} had no mapping for them: {reason}"
    return f"{node} dropped them: {reason}"


def _udp_blocked(net: Network) -> list[str]:
    """The NAT routers whose egress firewall lets no UDP out (the ``udp-blocked`` preset)."""
    out = []
    for node in net.nodes.values():
        b = getattr(node, "behavior", None)
        if b is not None and b.egress_only is not None and not any(p == "udp" for p, _ in b.egress_only):
            out.append(f"{node.name} ({b.name})")
    return out


def _explain(net: Network, agents: dict[str, IceAgent], runners: dict[str, _Runner], nat_a: str, nat_b: str,
             seed: int, notes: list[str]) -> IceResult:
    trace = net.trace if net.record_enabled else None
    drops = _drops_by_tid(trace) if trace is not None and len(trace) else {}
    for agent in agents.values():
        for p in agent.all_pairs():
            timed_out = p.state == FAILED and "never answered" in p.why
            if not (timed_out or p.state == IN_PROGRESS):
                continue
            hit = next((drops[t] for t in agent.pair_tids.get(id(p), []) if t in drops), None)
            if hit is None:
                continue
            why = _explain_drop(p.remote.addr, *hit)
            if p.state == FAILED:
                p.why = f"pair failed: checks to {fmt(p.remote.addr)} never answered ({why})"
            else:
                p.why = (f"{p.why or 'no answer yet when the run ended'}; checks to {fmt(p.remote.addr)} "
                         f"were lost ({why})")
    a, b = agents["alice"], agents["bob"]
    report = a.report() + b.report()
    for ag in agents.values():
        notes.extend(n for n in ag.notes if n not in notes)
    sel = a.selected
    ok = sel is not None and b.selected is not None
    when = max(a.completed_at, b.completed_at) if ok else None
    if ok:
        relayed = sel.local.type == RELAY or sel.remote.type == RELAY
        lost = [r for r in a.report() if r["state"] == FAILED]
        reason = (f"alice and bob agreed on {sel.local.type} {fmt(sel.local.addr)} <-> {sel.remote.type} "
                  f"{fmt(sel.remote.addr)}"
                  + (" through the TURN relay" if relayed else ", a direct path")
                  + f"; {len(lost)} of alice's {len(a.all_pairs())} pairs failed.")
        if relayed:
            reason += " No direct pair worked: " + "; ".join(
                sorted({r["why"] for r in lost if r["remote_type"] != RELAY and r["local_type"] != RELAY})[:3])
    else:
        relayed = False
        why = [f"{ag.name} ended {ag.state}" + (f": {ag.failed_reason}" if ag.failed_reason else "")
               for ag in agents.values()]
        failed = sorted({r["why"] for r in report if r["state"] == FAILED})
        reason = "no working pair. " + "; ".join(why) + (". " + " | ".join(failed[:4]) if failed else "")
        blocked = _udp_blocked(net)
        if blocked:
            reason = (f"{' and '.join(blocked)}: UDP is blocked (only TCP to port 443 may leave), so STUN, UDP "
                      f"TURN and every connectivity check were dropped there. A real agent falls back to TURN "
                      f"over TCP/TLS on port 443; the simulator has no TCP/TLS TURN, so run it in the real lab: "
                      f"python -m p2plab ice --world netns --nat-a {nat_a} --nat-b {nat_b}. " + reason)
    gathered = [ag.gathered_at for ag in agents.values() if ag.gathered_at is not None]
    return IceResult(
        nat_a=nat_a, nat_b=nat_b, success=ok, direct=ok and not relayed, relayed=ok and relayed,
        local=sel.local if ok else None, remote=sel.remote if ok else None, pair=sel if ok else None,
        time=when, reason=reason, report=report,
        candidates={n: list(ag.local_candidates) for n, ag in agents.items()}, notes=notes,
        gathering_time=max(gathered) if len(gathered) == 2 else None,
        completed_at={n: ag.completed_at for n, ag in agents.items()},
        roles={n: ag.role for n, ag in agents.items()}, seed=seed, trace=trace, network=net, agents=agents,
        events={n: list(r.events) for n, r in runners.items()})


__all__ = ["run_ice", "IceResult", "turn_available", "REPORT_COLUMNS", "STUN_PORT", "TURN_PORT", "AGENT_PORT"]
