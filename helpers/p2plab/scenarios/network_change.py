"""When the network changes: Alice leaves Wi-Fi for the mobile network in the middle of a call.

>>> from p2plab.scenarios.network_change import run_network_change
>>> r = run_network_change(detect="interface")
>>> r.reconnected, r.new_pair_kind
(True, 'srflx-srflx')

The story, in simulated time:

1. Alice (behind her home NAT ``nat-a``) and Bob (behind ``nat-b``) run ICE (``p2plab.ice``) with
   consent freshness on (RFC 7675) and send each other a small "media" datagram every second.
2. At ``move_at`` Alice's laptop leaves the Wi-Fi: ``Network.move_host`` puts her behind the
   mobile carrier's NAT ``nat-mobile`` with a new address (100.64.7.10, carrier-grade NAT space).
   Her packets now leave through another NAT with another public address; Bob's NAT filters them.
   Bob's packets still go to Alice's old public address; ``nat-a`` forwards them to a LAN where
   nobody answers any more. The path is dead at once.
3. Somebody must notice. ``detect="consent"``: nobody tells the application; each agent notices
   only when its consent checks have gone unanswered for 30 s (RFC 7675 section 5.1) and emits
   ``consent-lost``. ``detect="interface"``: Alice's operating system reports the new interface
   and her application reacts at once (what mobile apps do).
4. Alice's application calls ``restart(gather=True)`` (RFC 8445 section 9, with candidates
   gathered again: the old ones describe a network she left). Her new candidates reach Bob through
   the signalling server (``signaling_delay``); Bob's application calls ``restart()`` and answers.
5. ICE checks run again and a new pair is selected; the media flows on the new path.

``NetworkChangeResult.steps`` gives the time of each step; ``timeline()`` as a DataFrame,
``figure()`` as a figure, ``window_trace()`` the packets around the restart for a ladder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..addresses import fmt
from ..errors import ConfigurationError
from ..ice.agent import IceAgent, IceConfig, IceStateError
from ..ice.candidates import RELAY
from ..ice.run import AGENT_PORT, STUN_PORT, TURN_PORT, TURN_USERS
from ..sim import Network, ProtocolRunner

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..trace import Trace

MOBILE_NAT_IP = "203.0.113.80"
MOBILE_LAN = "100.64.0.0/10"
MOBILE_IP = "100.64.7.10"
MEDIA_INTERVAL = 1.0
DETECT = ("consent", "interface", "none")


def topology(nat_a: str = "port-restricted-cone", nat_b: str = "port-restricted-cone",
             mobile_nat: str = "port-restricted-cone") -> Any:
    """``topology.punch(nat_a, nat_b)`` plus the mobile carrier's NAT that Alice will move behind."""
    from .. import topology as topo

    t = topo.punch(nat_a, nat_b)
    t.name = "network-change"
    t.add_nat("nat-mobile", MOBILE_NAT_IP, MOBILE_LAN, mobile_nat, lan_ip="100.64.0.1", latency=0.030)
    return t


@dataclass
class Step:
    """One moment of the story: when (simulated seconds), who, what."""

    name: str
    at: float
    who: str
    what: str


@dataclass
class NetworkChangeResult:
    """What happened when Alice's network changed. Times are simulated seconds from the start.

    ``outage`` is the gap in Bob's received media: from the last datagram that arrived on the old
    path to the first on the new one (None when the call never recovered).
    """

    detect: str
    moved_at: float
    steps: list[Step]
    old_pair: str | None
    new_pair: str | None
    new_pair_kind: str | None
    reconnected: bool
    outage: float | None
    media: dict[str, dict[str, int]]
    trace: Trace | None = field(default=None, repr=False)
    network: Network | None = field(default=None, repr=False)
    agents: dict[str, IceAgent] = field(default_factory=dict, repr=False)

    def at(self, name: str) -> float | None:
        """The time of the first step called ``name`` (e.g. ``"consent-lost"``), or None."""
        return next((s.at for s in self.steps if s.name == name), None)

    @property
    def time_to_detect(self) -> float | None:
        t = self.at("restart")
        return None if t is None else t - self.moved_at

    @property
    def time_to_reconnect(self) -> float | None:
        """From the move to the moment both agents had selected a new pair."""
        t = self.at("reconnected")
        return None if t is None else t - self.moved_at

    def timeline(self) -> pd.DataFrame:
        """The steps as a DataFrame: time, seconds after the move, who, what."""
        import pandas as pd

        return pd.DataFrame([{"time": round(s.at, 3), "after_move": round(s.at - self.moved_at, 3), "step": s.name,
                              "who": s.who, "what": s.what} for s in self.steps],
                            columns=["time", "after_move", "step", "who", "what"])

    def summary(self) -> str:
        """A few lines: the old and new paths, how long each phase took, what the media lost."""
        lines = [f"network change detected by {self.detect}: alice moved at {self.moved_at:.1f} s",
                 f"old path: {self.old_pair}"]
        if self.reconnected:
            lines.append(f"new path: {self.new_pair} ({self.new_pair_kind})")
            lines.append(f"noticed after {self.time_to_detect:.3f} s, reconnected after {self.time_to_reconnect:.3f} s, "
                         f"media gap at bob {self.outage:.3f} s")
        else:
            lines.append("the call did not recover")
        for who, m in self.media.items():
            lines.append(f"{who}: sent {m['sent']} media datagrams, refused {m['refused']}, "
                         f"{m['received']} arrived at the other side")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def window_trace(self, before: float = 0.0, after: float = 1.0) -> Trace:
        """The packets from ``before`` s before Alice's restart to ``after`` s after the reconnection
        (for ``p2plab.viz.ladder``)."""
        if self.trace is None:
            raise ConfigurationError("this run kept no trace: run with record=True")
        start = (self.at("restart") or self.moved_at) - before
        stop = (self.at("reconnected") or self.steps[-1].at) + after
        return cut(self.trace, start, stop)

    def figure(self) -> Any:
        """A timeline of the steps (time across, one row per actor) with the media that arrived."""
        from .. import viz

        rows = {"alice": 2, "network": 1, "bob": 0}
        data: list[dict] = []
        for who, y in (("alice", 2), ("bob", 0)):
            got = [t for t, w in self._arrivals if w == who]
            data.append({"type": "scatter", "x": got, "y": [y - 0.25] * len(got), "mode": "markers",
                         "marker": {"symbol": "line-ns-open", "size": 8}, "name": f"media arriving at {who}"})
        data.append({"type": "scatter", "x": [s.at for s in self.steps], "y": [rows.get(s.who, 1) for s in self.steps],
                     "mode": "markers+text", "text": [s.name for s in self.steps], "textposition": "top center",
                     "hovertext": [f"{s.at:.3f} s: {s.what}" for s in self.steps], "name": "steps",
                     "marker": {"size": 10}})
        layout = {"title": {"text": f"Alice changes network (detected by {self.detect})"},
                  "xaxis": {"title": {"text": "simulated time (s)"}},
                  "yaxis": {"tickvals": [0, 1, 2], "ticktext": ["bob", "network", "alice"], "range": [-0.6, 2.8]},
                  "height": 360}
        text = "timeline: " + "; ".join(f"{s.at:.3f} s {s.name} ({s.who})" for s in self.steps)
        return viz.make_figure(data, layout, summary_text=text)

    _arrivals: list[tuple[float, str]] = field(default_factory=list, repr=False)


def cut(trace: Trace, start: float, stop: float) -> Trace:
    """The rows of ``trace`` from ``start`` to ``stop`` seconds, NAT before/after pairs kept together."""
    from ..trace import Trace

    times = list(trace.df["time"])
    keep = [i for i, t in enumerate(times) if start <= t <= stop]
    new_index = {old: k for k, old in enumerate(keep)}
    rows = []
    for i in keep:
        row = list(trace._rows[i])
        row[-1] = new_index.get(row[-1], -1) if row[-1] >= 0 else -1
        rows.append(tuple(row))
    return Trace(rows, [trace._packets[i] for i in keep], trace.world, dict(trace.meta, window=[start, stop]))


def _pair_text(pair: Any) -> str | None:
    if pair is None:
        return None
    return f"{pair.local.type} {fmt(pair.local.addr)} <-> {pair.remote.type} {fmt(pair.remote.addr)}"


def run_network_change(detect: str = "consent", *, nat_a: str = "port-restricted-cone",
                       nat_b: str = "port-restricted-cone", mobile_nat: str = "port-restricted-cone",
                       move_at: float = 10.0, signaling_delay: float = 0.1, run_after: float = 45.0,
                       gather: bool = True, seed: int = 0, record: bool = True) -> NetworkChangeResult:
    """Run the network-change story (see the module docstring) and time each step.

    ``detect``: ``"consent"`` (the agents find out from RFC 7675 consent freshness, up to 30 s) or
    ``"interface"`` (Alice's application restarts ICE the moment her address changes) or
    ``"none"`` (the application never restarts ICE: consent is lost and the call stays dead).
    ``mobile_nat``: the behaviour of the carrier's NAT (a preset name; try ``"symmetric"``).
    ``run_after``: how long the simulation goes on after the move.
    ``gather=False``: Alice restarts ICE but keeps her old candidates (host, server-reflexive and
    relayed ones from the network she left), to see why a restart after a move must gather again.
    """
    if detect not in DETECT:
        raise ConfigurationError(f"detect must be one of {', '.join(DETECT)}, e.g. detect='consent'; got {detect!r}")
    if move_at < 2.0:
        raise ConfigurationError(f"move_at is when Alice moves, in seconds after the start; give the call time to "
                                 f"connect first: at least 2.0, e.g. move_at=10; got {move_at!r}")
    if signaling_delay < 0 or run_after <= 0:
        raise ConfigurationError("signaling_delay is >= 0 s and run_after > 0 s, e.g. signaling_delay=0.1, run_after=45")
    from .. import topology as topo
    from ..stun.server import StunServer
    from ..turn.server import TurnServer

    net = Network.build(topology(nat_a, nat_b, mobile_nat), seed=seed, record=record)
    server = net.host("server")
    net.runners.append(ProtocolRunner(net, server, StunServer(), STUN_PORT))
    net.runners.append(ProtocolRunner(net, server, TurnServer(dict(TURN_USERS), rng=random.Random(f"{seed}-turn")),
                                      TURN_PORT))
    stun_addr, turn_addr = (topo.SERVER_IP, STUN_PORT), (topo.SERVER_IP, TURN_PORT)
    agents = {name: IceAgent(name, controlling=name == "alice", stun_server=stun_addr, turn_server=turn_addr,
                             turn_username=name, turn_password=TURN_USERS[name],
                             rng=random.Random(f"{seed}-{name}"), config=IceConfig(consent=True))
              for name in ("alice", "bob")}
    steps: list[Step] = []
    arrivals: list[tuple[float, str]] = []
    media = {n: {"sent": 0, "refused": 0, "received": 0} for n in agents}
    other = {"alice": "bob", "bob": "alice"}
    state: dict[str, Any] = {"restarted": False, "old_pair": None}
    runners: dict[str, ProtocolRunner] = {}

    def step(name: str, who: str, what: str) -> None:
        steps.append(Step(name, round(net.now, 6), who, what))

    def signal(to: str, params: dict[str, Any], restart: bool) -> None:
        ag, r = agents[to], runners[to]
        if restart and to == "bob":  # the offer of an ICE restart: Bob restarts and answers
            step("offer-at-bob", "bob", "alice's new candidates reach bob through the signalling server; "
                                        "bob restarts ICE and answers")
            answer = r.call(ag.restart, net.now)
            r.call(ag.set_remote, params["ufrag"], params["password"], params["candidates"], net.now)
            net.after(signaling_delay, signal, "alice", answer, True)
            return
        if restart:
            step("answer-at-alice", "alice", "bob's answer (new ufrag/password) reaches alice; checks start")
        r.call(ag.set_remote, params["ufrag"], params["password"], params["candidates"], net.now)

    def alice_restart(why: str) -> None:
        if state["restarted"]:
            return
        state["restarted"] = True
        step("restart", "alice", f"alice's application calls restart(gather={gather}): {why}")
        new_addr = (net.host("alice").ip, AGENT_PORT)  # the socket's address after the move
        params = runners["alice"].call(agents["alice"].restart, net.now, gather, new_addr if gather else None)
        if not gather:  # no new gathering: the old candidates go to bob at once
            net.after(signaling_delay, signal, "bob", params, True)

    def on_event(ev: Any) -> None:
        who = ev.agent
        if ev.kind == "gathering-complete":
            params = {"ufrag": ev.ufrag, "password": ev.password, "candidates": list(ev.candidates)}
            if state["restarted"] and who == "alice":
                step("gathered", "alice", f"alice gathered {len(ev.candidates)} new candidates on the mobile network")
                net.after(signaling_delay, signal, "bob", params, True)
            elif not state["restarted"]:
                net.after(0.0, signal, other[who], params, False)
        elif ev.kind == "completed":
            if not state["restarted"]:
                if who == "alice":
                    state["old_pair"] = ev.pair
                if agents["alice"].selected is not None and agents["bob"].selected is not None:
                    step("connected", "network", f"ICE selected {_pair_text(agents['alice'].selected)}")
            elif agents["alice"].selected is not None and agents["bob"].selected is not None:
                step("reconnected", "network", f"ICE selected a new pair {_pair_text(agents['alice'].selected)}")
        elif ev.kind == "failed" and state["restarted"]:
            step("ice-failed", who, f"{who}: ICE failed after the restart: {ev.reason}")
        elif ev.kind == "consent-lost":
            step("consent-lost", who, f"{who}: {ev.why}")
            if who == "alice" and detect == "consent":
                net.after(0.0, alice_restart, "consent to send on the old pair was lost")
        elif ev.kind == "data":
            media[other[who]]["received"] += 1
            arrivals.append((net.now, who))

    for name in ("alice", "bob"):
        r = runners[name] = ProtocolRunner(net, net.host(name), agents[name], AGENT_PORT)
        net.runners.append(r)
        r.on_event = on_event
        for ev in list(r.events):
            on_event(ev)

    def tick(name: str, n: int) -> None:
        ag = agents[name]
        if ag.data_pair is not None or ag.state == "failed":
            try:
                runners[name].call(ag.send_data, f"media {name} #{n}".encode(), net.now)
                media[name]["sent"] += 1
            except IceStateError:
                media[name]["refused"] += 1
        net.after(MEDIA_INTERVAL, tick, name, n + 1)

    def move() -> None:
        note = net.move_host("alice", "nat-mobile", MOBILE_IP)
        step("moved", "alice", f"{note}: Wi-Fi off, mobile data on")
        if detect == "interface":
            alice_restart("the operating system reported a new address")

    net.at(1.0, tick, "alice", 1)
    net.at(1.0 + MEDIA_INTERVAL / 2, tick, "bob", 1)
    net.at(move_at, move)
    net.run(until=move_at + run_after)

    a = agents["alice"]
    reconnected = any(s.name == "reconnected" for s in steps)
    before = [t for t, w in arrivals if w == "bob" and t <= move_at]
    after = [t for t, w in arrivals if w == "bob" and t > move_at]
    outage = (after[0] - before[-1]) if reconnected and before and after else None
    if after:
        steps.append(Step("media-back", after[0], "bob", "the first media datagram on the new path reaches bob"))
    steps.sort(key=lambda s: s.at)
    new = a.selected if reconnected else None
    kind = f"{new.local.type}-{new.remote.type}" if new is not None else None
    res = NetworkChangeResult(
        detect=detect, moved_at=move_at, steps=steps, old_pair=_pair_text(state["old_pair"]),
        new_pair=_pair_text(new), new_pair_kind=kind, reconnected=reconnected,
        outage=None if outage is None else round(outage, 6), media=media,
        trace=net.trace if record else None, network=net, agents=agents)
    res._arrivals = arrivals
    return res


def relayed(result: NetworkChangeResult) -> bool:
    """Did the call come back on a relayed pair?"""
    a = result.agents.get("alice")
    return bool(a and a.selected and (a.selected.local.type == RELAY or a.selected.remote.type == RELAY))


__all__ = ["run_network_change", "NetworkChangeResult", "Step", "topology", "MOBILE_IP", "MOBILE_NAT_IP"]
