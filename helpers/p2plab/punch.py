"""Rendezvous and UDP hole punching, sans-I/O, and ``run_punch`` to try it in a world.

The procedure (RFC 5128 section 3.3, and Ford, Srisuresh and Kegel 2005):

1. Alice and Bob each send ``REGISTER`` to a rendezvous server S on the public internet, from the
   socket they will use for the peer. S sees each one's *public* endpoint (the NAT's mapping) and
   the private endpoint they report themselves.
2. S sends each peer the other's public and private endpoints (``PEER``).
3. Both send ``PUNCH`` packets to every candidate endpoint of the other, at the same time. Alice's
   outbound punch creates state in Alice's NAT that lets Bob's punches in, and vice versa.
4. Whoever receives a ``PUNCH`` answers ``ACK``; a peer that receives a ``PUNCH`` or an ``ACK`` has a
   direct path, stops punching and sends keepalives so the NAT mappings do not expire.

The messages are short text lines starting ``P2P1`` so you can read them in a hexdump.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .addresses import Endpoint, fmt
from .rendezvous_client import RendezvousClient
from .sansio import Addr, DatagramProtocol, Event
from .textmsg import TextMessages, parse_endpoint

if TYPE_CHECKING:  # pragma: no cover
    from .sim import Network
    from .trace import Trace

MAGIC = b"P2P1 "
RENDEZVOUS_PORT = 7000


_MESSAGES = TextMessages(MAGIC)
encode = _MESSAGES.encode  # encode("REGISTER", "alice", ...) -> bytes
decode = _MESSAGES.decode  # bytes -> (kind, fields), or None
_ep = parse_endpoint


class RendezvousServer(DatagramProtocol):
    """Introduces peers: remembers where each registered name was seen and tells the other."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: dict[str, tuple[Endpoint, Endpoint, str]] = {}  # name -> (public, private, wants)
        self.advertised: dict[str, Endpoint] = {}  # name -> endpoint it asked to be introduced with
        self.introduced: set[tuple[str, str]] = set()

    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        msg = decode(data)
        if msg is None:
            return
        kind, fields = msg
        if kind == "REGISTER" and len(fields) in (3, 4):
            name, private, wants = fields[0], _ep(fields[1]), fields[2]
            self.peers[name] = (addr, private, wants)
            # a 4th field is an endpoint the peer advertises instead of the one seen here: the external
            # endpoint its router granted by PCP/NAT-PMP (p2plab.portmap)
            if len(fields) == 4:
                self.advertised[name] = _ep(fields[3])
            self.emit("registered", name=name, public=addr, private=private, advertised=self.advertised.get(name))
            other = self.peers.get(wants)
            if other is not None and other[2] == name:
                for a, b in ((name, wants), (wants, name)):
                    pub_a, priv_a, _ = self.peers[a]
                    pub_b, priv_b, _ = self.peers[b]
                    self.send(encode("PEER", b, fmt(self.advertised.get(b, pub_b)), fmt(priv_b)), pub_a)
                self.introduced.add(tuple(sorted((name, wants))))
                self.emit("introduced", a=name, b=wants)


@dataclass
class PunchConfig:
    """Timing of the punching procedure (seconds)."""

    register_retry: float = 1.0
    punch_interval: float = 0.1
    give_up_after: float = 5.0
    keepalive_interval: float = 15.0
    start_delay: float = 0.0  # wait this long after learning the peer before punching
    try_private: bool = True
    advertise: Endpoint | None = None  # introduce me with this endpoint (a PCP/NAT-PMP mapping), not the one S sees


class PunchPeer(RendezvousClient):
    """One side of a hole punch (Alice or Bob). Events: ``peer`` (endpoints learned), ``connected``
    (direct path, with the endpoint that worked) or ``failed`` (with a reason)."""

    messages = _MESSAGES

    def __init__(self, name: str, peer: str, server: Endpoint, config: PunchConfig | None = None) -> None:
        super().__init__(name, server)
        self.peer_name = peer
        self.config = config or PunchConfig()
        self.candidates: list[Endpoint] = []
        self.connected: Endpoint | None = None
        self.punches_sent = 0
        self.started_at: float | None = None
        self.punch_started_at: float | None = None
        self.nonce = 0
        self._punch_head = encode("PUNCH", name, "")

    def register_fields(self) -> tuple[str, ...]:
        extra = (fmt(tuple(self.config.advertise)),) if self.config.advertise else ()
        return (*super().register_fields(), self.peer_name, *extra)

    def register_retry(self) -> float:
        return self.config.register_retry

    def message_received(self, kind: str, fields: list[str], addr: Addr) -> None:
        now = self.now
        if kind == "PEER" and self.state == "registering" and len(fields) == 3:
            public, private = _ep(fields[1]), _ep(fields[2])
            self.candidates = [public] + ([private] if self.config.try_private and private != public else [])
            self.state = "waiting"
            self.cancel_timers("register")
            self.emit("peer", public=public, private=private)
            self.set_timer(now + self.config.start_delay, "punch-start")
        elif kind == "PUNCH":
            self.send(encode("ACK", self.name, fields[1] if len(fields) > 1 else "0"), addr)
            self._connected(addr)
        elif kind == "ACK":
            self._connected(addr)

    def _connected(self, addr: Addr) -> None:
        if self.connected is not None or self.state == "failed":
            return
        self.connected = addr
        self.state = "connected"
        self.cancel_timers("punch")
        self.cancel_timers("give-up")
        self.set_timer(self.now + self.config.keepalive_interval, "keepalive")
        self.emit("connected", endpoint=addr, punches=self.punches_sent,
                  after=self.now - (self.punch_started_at if self.punch_started_at is not None else self.now))

    def on_timer(self, name: str, now: float) -> None:
        super().on_timer(name, now)  # "register": register again
        if name == "punch-start" and self.state == "waiting":
            self.state = "punching"
            self.punch_started_at = now
            self.set_timer(now + self.config.give_up_after, "give-up")
            self._punch()
        elif name == "punch" and self.state == "punching":
            self._punch()
        elif name == "give-up" and self.state == "punching":
            self.state = "failed"
            self.cancel_timers("punch")
            self.emit("failed", punches=self.punches_sent,
                      reason=f"no PUNCH or ACK from {self.peer_name} within {self.config.give_up_after:g} s "
                             f"after {self.punches_sent} punches to {', '.join(fmt(c) for c in self.candidates)}")
        elif name == "keepalive" and self.state == "connected":
            self.send(encode("KEEPALIVE", self.name), self.connected)
            self.set_timer(now + self.config.keepalive_interval, "keepalive")

    def _punch(self) -> None:
        self.nonce += 1
        message = self._punch_head + str(self.nonce).encode()  # == encode("PUNCH", name, nonce)
        for c in self.candidates:
            self.send(message, c)
        self.punches_sent += len(self.candidates)
        self.set_timer(self.now + self.config.punch_interval, "punch")


@dataclass
class PunchResult:
    """The outcome of one punch: direct or not, how many packets and how long, and why."""

    nat_a: str
    nat_b: str
    direct: bool
    packets: int
    time: float | None
    reason: str
    world: str = "sim"
    trace: Trace | None = field(default=None, repr=False)
    network: Network | None = field(default=None, repr=False)
    events: dict[str, list[Event]] = field(default_factory=dict, repr=False)
    portmap: dict[str, Any] | None = None  # what alice's port mapping request got (run_punch(portmap=...))

    def as_dict(self) -> dict[str, Any]:
        d = {"nat_a": self.nat_a, "nat_b": self.nat_b, "direct": self.direct, "packets": self.packets,
             "time": None if self.time is None else round(self.time, 6), "reason": self.reason,
             "world": self.world}
        if self.portmap is not None:
            d["portmap"] = self.portmap
        return d

    def __str__(self) -> str:
        head = "DIRECT" if self.direct else "NO DIRECT PATH"
        when = f" after {self.packets} punch packets in {self.time * 1000:.0f} ms" if self.direct else ""
        return f"{self.nat_a} x {self.nat_b}: {head}{when}\n{self.reason}"


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def run_punch(nat_a: Any = "port-restricted-cone", nat_b: Any = "port-restricted-cone", seed: int = 0,
              config_a: PunchConfig | None = None, config_b: PunchConfig | None = None,
              run_for: float = 8.0, topology: Any = None, record: bool = True,
              portmap: str | None = None) -> PunchResult:
    """Run a real punch between Alice and Bob in the simulator and explain the outcome.

    ``nat_a``/``nat_b`` are preset names or ``NatBehavior`` objects; ``topology`` overrides the
    default ``topology.punch(nat_a, nat_b)``. ``portmap="pcp"`` or ``"natpmp"``: Alice's router
    (``nat-a``) runs a port mapping server; before punching Alice asks it for a mapping of her port
    5000 and advertises the granted external endpoint at the rendezvous.
    """
    from dataclasses import replace

    from . import sim
    from . import topology as topo

    t = topology or topo.punch(nat_a, nat_b)
    if portmap is not None:
        from .portmap import check_protocol

        if str(portmap).strip().lower() == "upnp":
            from .errors import ConfigurationError

            raise ConfigurationError("UPnP IGD is not in the simulator (it speaks SSDP multicast and HTTP to the "
                                     "router, which the simulator does not model): use --world netns, where Debian's "
                                     "miniupnpd runs on the lab router, or --portmap pcp / natpmp here")
        portmap = check_protocol(portmap)
        t.nodes["nat-a"].portmap = True
    net = sim.Network.build(t, seed=seed, record=record)
    server = (topo.SERVER_IP, RENDEZVOUS_PORT)
    pm = None
    if portmap is not None:
        pm = map_port(net, portmap, "alice", 5000)
        if pm.get("external"):
            config_a = replace(config_a or PunchConfig(), advertise=tuple(pm["external"]))
    net.run_protocol("server", RendezvousServer(), RENDEZVOUS_PORT)
    ra = net.run_protocol("alice", PunchPeer("alice", "bob", server, config_a), 5000)
    rb = net.run_protocol("bob", PunchPeer("bob", "alice", server, config_b), 5000)
    net.run(until=net.now + run_for)
    res = explain(net, ra, rb, _name(nat_a), _name(nat_b))
    if pm is not None:
        res.portmap = pm
        res.reason = f"{portmap_sentence(pm)} {res.reason}"
    return res


def map_port(net: Network, protocol: str, host: str, port: int, lifetime: int = 7200,
             wait: float = 2.0) -> dict[str, Any]:
    """Ask ``host``'s router (its NAT's inside address) for a mapping of UDP ``port`` with PCP or
    NAT-PMP, running the simulation until the answer (at most ``wait`` s). Returns what happened:
    ``protocol``, ``ok``, ``external`` (ip, port) or None, ``lifetime``, ``result``, ``message``, ``warning``."""
    from .portmap import PORT, PortMapClient

    node = net.topology.nodes[host]
    gw = net.topology.nodes[node.behind].lan_ip if node.behind in net.topology.nodes else None
    out: dict[str, Any] = {"protocol": protocol, "ok": False, "external": None, "lifetime": None, "result": None,
                           "message": "", "warning": ""}
    if gw is None:
        out.update(result="NO_ROUTER", message=f"{host} is not behind a NAT: there is no router to ask")
        return out
    client = PortMapClient(protocol, (gw, PORT), port, lifetime=lifetime, client_ip=node.ip, initial_rto=0.25,
                           give_up_after=wait, seed=net.seed)
    runner = net.run_protocol(host, client)
    net.run(until=net.now + wait + 0.5)
    for ev in runner.events:
        if ev.kind == "mapped":
            out.update(ok=True, external=list(ev.external), lifetime=ev.lifetime, result="SUCCESS", warning=ev.warning)
        elif ev.kind == "failed":
            out.update(result=ev.result, message=ev.message)
    for sock in list(runner.sockets.values()):
        sock.close()
    return out


def portmap_sentence(pm: dict[str, Any]) -> str:
    """One sentence on what a port mapping request got."""
    name = {"pcp": "PCP", "natpmp": "NAT-PMP", "upnp": "UPnP IGD"}.get(pm.get("protocol"), str(pm.get("protocol")))
    if pm.get("ok"):
        ext = pm["external"]
        text = (f"alice's router granted her a {name} mapping {ext[0]}:{ext[1]} for {pm['lifetime']} s "
                "(endpoint-independent: anyone may send to it), and she advertised it at the rendezvous.")
        return text + (f" But {pm['warning']}." if pm.get("warning") else "")
    return f"alice asked her router for a {name} mapping and got none: {pm.get('message')}"



def explain(net: Network, ra: Any, rb: Any, nat_a: str, nat_b: str) -> PunchResult:
    """Turn what happened in a simulated punch into a PunchResult with a reason in words."""
    pa, pb = ra.protocol, rb.protocol
    ev = {"alice": ra.events, "bob": rb.events}
    packets = pa.punches_sent + pb.punches_sent
    conn = {p.name: e for p, evs in ((pa, ra.events), (pb, rb.events)) for e in evs if e.kind == "connected"}
    if "alice" in conn and "bob" in conn:
        start = min(x for x in (pa.punch_started_at, pb.punch_started_at) if x is not None)
        t = max(conn["alice"].time, conn["bob"].time) - start
        reason = (f"direct path: alice talks to bob at {fmt(pa.connected)}, bob to alice at {fmt(pb.connected)}. "
                  f"Each side's outbound punch opened its own NAT for the other's punches.")
        return PunchResult(nat_a, nat_b, True, packets, t, reason, "sim", net.trace if net.record_enabled else None, net, ev)
    return PunchResult(nat_a, nat_b, False, packets, None, _why_not(net, pa, pb), "sim",
                       net.trace if net.record_enabled else None, net, ev)


def _why_not(net: Network, pa: PunchPeer, pb: PunchPeer) -> str:
    reasons = []
    for me, other, nat in ((pa, pb, "nat-a"), (pb, pa, "nat-b")):
        if nat not in net.nodes:
            continue
        table = net.nat(nat).table
        maps = [m for m in table.mappings() + table.expired if m.inside == me.local_addr]
        seen_by_server = [m.outside for m in maps if any(r[1] == RENDEZVOUS_PORT for r in m.remotes)]
        toward_peer = [m.outside for m in maps if any(r[1] != RENDEZVOUS_PORT for r in m.remotes)]
        beh = net.nat(nat).behavior
        if seen_by_server and toward_peer and set(toward_peer) - set(seen_by_server):
            reasons.append(
                f"{nat} ({beh.mapping} mapping) gave {me.name} {fmt(seen_by_server[0])} toward the server but "
                f"{', '.join(fmt(x) for x in sorted(set(toward_peer) - set(seen_by_server)))} toward {other.name}, "
                f"so {other.name} punched a port that was never opened for it")
        if beh.conntrack_clash and seen_by_server and set(toward_peer) - set(seen_by_server):
            reasons.append(f"{nat}: an early packet from {other.name} left a conntrack entry on the router, "
                           f"so {me.name}'s mapping could not keep its port")
    if net.record_enabled:
        df = net.trace.df
        drops = df[(df["action"] == "dropped") & df["summary"].str.startswith("P2P PUNCH")]
        for node, reason in drops.groupby("node", sort=False)["reason"].first().items():
            if node != "internet":  # punches to a private candidate die there: expected, not the cause
                reasons.append(f"{node} dropped punches: {reason}")
    if not reasons:
        reasons.append(f"alice ended {pa.state}, bob ended {pb.state}")
    return "no direct path. " + " | ".join(reasons)
