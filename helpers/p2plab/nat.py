"""NAT behaviour as RFC 4787 names it, the classic presets, and a translation table.

RFC 4787 (BCP 127) describes a NAT by separate knobs instead of the old "cone" names:

* **mapping** - when does an inside endpoint get the *same* outside endpoint?
  ``endpoint-independent`` (one mapping for every destination), ``address-dependent`` (one per
  destination address), ``address-and-port-dependent`` (one per destination address and port).
* **filtering** - which outside senders may use a mapping to reach the inside?
  ``endpoint-independent`` (anyone), ``address-dependent`` (addresses the inside host has sent
  to), ``address-and-port-dependent`` (exact address:port endpoints it has sent to).
* **port allocation** - ``preserving`` (keep the inside port when free), ``sequential``, ``random``.
* a **mapping timeout** refreshed by outbound traffic, and **hairpinning**. A NAT may keep a UDP
  mapping that has never seen a reply for a shorter time (``unreplied_timeout``): Linux conntrack
  does (30 s unreplied, 120 s once a reply has come and the flow is still active after 2 s).

``NatTable`` applies a behaviour to packets; the simulator's NAT routers are built on it.
"""

from __future__ import annotations

import heapq
import itertools
import random
import zlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .addresses import Endpoint, fmt
from .errors import ConfigurationError, UnknownPresetError
from .packet import PROTO_NAMES, Datagram

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

EI, AD, APD = "endpoint-independent", "address-dependent", "address-and-port-dependent"
BEHAVIOURS = (EI, AD, APD)
ALLOCATIONS = ("preserving", "sequential", "random")
_SHORT = {"ei": EI, "eim": EI, "eif": EI, "ad": AD, "adm": AD, "adf": AD, "apd": APD, "apdm": APD, "apdf": APD}


def _behaviour(value: str, knob: str) -> str:
    v = str(value).strip().lower().replace("_", "-").replace(" ", "-")
    v = _SHORT.get(v, v)
    if v not in BEHAVIOURS:
        raise UnknownPresetError(
            f"unknown {knob} behaviour {value!r}. RFC 4787 names three: {', '.join(BEHAVIOURS)} "
            f"(short forms ei, ad, apd), e.g. {knob}='endpoint-independent'"
        )
    return v


_PROTOS = {"udp": 17, "tcp": 6}


@dataclass(frozen=True)
class PortForward:
    """A port-forwarding rule an administrator puts on a router: packets of ``proto`` arriving at the
    router's outside ``port`` go to the inside host ``to`` at ``to_port`` (the same port when 0)."""

    proto: str
    port: int
    to: str
    to_port: int = 0

    def __post_init__(self) -> None:
        proto = str(self.proto).strip().lower()
        if proto not in _PROTOS:
            raise ConfigurationError(f"a port forward is for 'udp' or 'tcp'; got {self.proto!r}, "
                                     "e.g. PortForward('udp', 5000, '192.168.1.10')")
        object.__setattr__(self, "proto", proto)
        for value, what in ((self.port, "port"), (self.to_port or 1, "to_port")):
            if not isinstance(value, int) or not 1 <= value <= 65535:
                raise ConfigurationError(f"{what} of a port forward must be a port number 1-65535; got {value!r}")
        object.__setattr__(self, "to_port", self.to_port or self.port)

    @property
    def proto_number(self) -> int:
        return _PROTOS[self.proto]

    def describe(self) -> str:
        return f"{self.proto.upper()} port {self.port} -> {self.to}:{self.to_port}"


def _forwards(value) -> tuple[PortForward, ...]:
    if isinstance(value, PortForward):
        value = (value,)
    out = []
    for f in value or ():
        out.append(f if isinstance(f, PortForward) else PortForward(*f))
    return tuple(out)


@dataclass(frozen=True)
class NatBehavior:
    """How a NAT maps and filters, in RFC 4787's terms. Build one directly or with ``preset(name)``."""

    mapping: str = EI
    filtering: str = APD
    port_allocation: str = "preserving"
    port_range: tuple[int, int] = (1024, 65535)
    mapping_timeout: float = 300.0
    inbound_refresh: bool = False
    hairpinning: bool = True
    name: str = "custom"
    # UDP only: how long a mapping lives until a reply has come in and the flow is still active 2 s
    # after it began (Linux conntrack's "stream" rule); then ``mapping_timeout``. None: always
    # ``mapping_timeout``.
    unreplied_timeout: float | None = None
    # Linux only: the router accepts unsolicited packets on its own input chain, so an early
    # packet from a peer leaves a conntrack entry that clashes with the later outbound mapping.
    conntrack_clash: bool = False
    # What the NAT does with an unsolicited inbound TCP SYN: "drop" silently (RFC 5382 REQ-4 asks
    # for that) or answer "rst" (some NATs do, which kills a TCP hole punch).
    tcp_unsolicited: str = "drop"
    # Rules an administrator adds (p2plab.forwarding): port forwards to inside hosts, and a "DMZ host"
    # that gets every unsolicited packet no mapping or forward claims.
    forwards: tuple[PortForward, ...] = ()
    dmz: str | None = None
    # static (one-to-one) NAT: (public address, inside address) pairs; each public address must be one of
    # the NAT's outside addresses, and is then used for that inside host only, in both directions.
    static: tuple[tuple[str, str], ...] = ()
    # An egress firewall on the router (a network that blocks UDP): None lets everything out; otherwise
    # only packets from the inside to one of these (proto, destination port) pairs may leave, e.g.
    # (("tcp", 443),) - only HTTPS-looking traffic. Replies on flows that left are let back in as usual.
    egress_only: tuple[tuple[str, int], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "forwards", _forwards(self.forwards))
        if self.egress_only is not None:
            rules = []
            for rule in self.egress_only:
                proto, port = (str(rule[0]).strip().lower(), rule[1]) if len(rule) == 2 else (None, None)
                if proto not in _PROTOS or not isinstance(port, int) or not 1 <= port <= 65535:
                    raise ConfigurationError(f"egress_only holds (proto, port) pairs with proto 'udp' or 'tcp' and "
                                             f"a port 1-65535, e.g. egress_only=(('tcp', 443),); got {rule!r}")
                rules.append((proto, port))
            object.__setattr__(self, "egress_only", tuple(rules))
        object.__setattr__(self, "static", tuple((str(p), str(i)) for p, i in self.static))
        taken: dict[tuple[str, int], PortForward] = {}
        for f in self.forwards:
            if (f.proto, f.port) in taken:
                raise ConfigurationError(
                    f"{f.proto.upper()} port {f.port} is already forwarded to {taken[f.proto, f.port].to}:"
                    f"{taken[f.proto, f.port].to_port}; one outside port leads to one inside host, so give "
                    f"{f.to} another outside port, e.g. PortForward('{f.proto}', {f.port + 1}, '{f.to}', {f.to_port})")
            taken[f.proto, f.port] = f
        object.__setattr__(self, "mapping", _behaviour(self.mapping, "mapping"))
        object.__setattr__(self, "filtering", _behaviour(self.filtering, "filtering"))
        if self.port_allocation not in ALLOCATIONS:
            raise UnknownPresetError(
                f"unknown port allocation {self.port_allocation!r}; use one of {', '.join(ALLOCATIONS)}"
            )
        if self.tcp_unsolicited not in ("drop", "rst"):
            raise UnknownPresetError(f"tcp_unsolicited must be 'drop' or 'rst'; got {self.tcp_unsolicited!r}")
        lo, hi = self.port_range
        if not (1 <= lo <= hi <= 65535):
            raise ConfigurationError(
                f"port_range {self.port_range} is not a range of 16-bit ports: use (low, high) with "
                "1 <= low <= high <= 65535, e.g. (1024, 65535)"
            )
        if self.unreplied_timeout is not None and self.unreplied_timeout <= 0:
            raise ConfigurationError(
                f"unreplied_timeout must be a positive number of seconds or None; got {self.unreplied_timeout}")
        if self.mapping_timeout <= 0:
            raise ConfigurationError(
                f"mapping_timeout must be a positive number of seconds (RFC 4787 asks for at least 120, "
                f"recommends 300); got {self.mapping_timeout}"
            )

    def egress_blocked(self, proto: int, dport: int) -> str | None:
        """Why the router's egress firewall drops an outbound packet (``proto`` number, destination
        port), or None when it may leave (always None without ``egress_only``)."""
        if self.egress_only is None:
            return None
        if any(_PROTOS[p] == proto and port == dport for p, port in self.egress_only):
            return None
        allowed = " and ".join(f"{p.upper()} to port {port}" for p, port in self.egress_only) or "nothing"
        what = PROTO_NAMES.get(proto, str(proto)).upper()
        return f"{self.name} firewall: only {allowed} may leave ({what} to port {dport} dropped)"

    @property
    def classic_name(self) -> str:
        """The RFC 3489 name, where one fits (those names describe only four combinations)."""
        return classic_name(self.mapping, self.filtering)

    def describe(self) -> str:
        """One line in words."""
        timeout = (f"timeout {self.unreplied_timeout:g} s unreplied, {self.mapping_timeout:g} s once replied"
                   if self.unreplied_timeout is not None else f"timeout {self.mapping_timeout:g} s")
        return (f"{self.name}: {self.mapping} mapping, {self.filtering} filtering, {self.port_allocation} ports, "
                f"{timeout}, hairpinning {'on' if self.hairpinning else 'off'}"
                f" (classic name: {self.classic_name})"
                + ("; egress firewall: only " + " and ".join(f"{p.upper()} to port {port}" for p, port in self.egress_only)
                   + " may leave" if self.egress_only is not None else ""))


def classic_name(mapping: str, filtering: str) -> str:
    """RFC 3489's cone names for a mapping/filtering pair ('-' where none fits)."""
    if mapping == EI:
        return {EI: "full cone", AD: "restricted cone", APD: "port-restricted cone"}[filtering]
    if mapping == APD and filtering == APD:
        return "symmetric"
    if filtering == APD:
        return "symmetric (address-dependent mapping)"
    return "-"


PRESETS: dict[str, NatBehavior] = {
    "full-cone": NatBehavior(EI, EI, name="full-cone"),
    "restricted-cone": NatBehavior(EI, AD, name="restricted-cone"),
    "port-restricted-cone": NatBehavior(EI, APD, name="port-restricted-cone"),
    "symmetric": NatBehavior(APD, APD, port_allocation="random", port_range=(32768, 60999), name="symmetric"),
    # What the real lab's nftables masquerade does with the kernel's defaults: the port is kept, a UDP
    # entry lives 30 s until replied (nf_conntrack_udp_timeout) and 120 s as a stream
    # (nf_conntrack_udp_timeout_stream), replies refresh it too, and nothing hairpins.
    "linux-masquerade": NatBehavior(EI, APD, port_allocation="preserving", mapping_timeout=120.0,
                                    unreplied_timeout=30.0, inbound_refresh=True, hairpinning=False,
                                    name="linux-masquerade"),
}
# Networks with an egress firewall on top of a NAT. Kept apart from PRESETS, so the classic grids
# (matrix, the course's 5 x 5 tables) stay five by five; ``preset(name)`` finds them all the same.
FIREWALLED: dict[str, NatBehavior] = {
    # a hotel, office or campus network that lets only TCP to port 443 out (no UDP at all, so no STUN,
    # no UDP TURN, no hole punching); a port-restricted cone NAT behind the firewall
    "udp-blocked": NatBehavior(EI, APD, egress_only=(("tcp", 443),), name="udp-blocked"),
}
ALIASES = {
    "full": "full-cone", "fullcone": "full-cone", "restricted": "restricted-cone",
    "port-restricted": "port-restricted-cone", "portrestricted": "port-restricted-cone",
    "masquerade": "linux-masquerade", "linux": "linux-masquerade", "hard": "symmetric",
    "easy": "port-restricted-cone", "udpblocked": "udp-blocked", "tcp-443-only": "udp-blocked",
}


def preset(name: str | NatBehavior, /, **changes) -> NatBehavior:
    """The NAT behaviour called ``name`` (see ``PRESETS``), optionally with some knobs changed.

    >>> preset("symmetric").mapping
    'address-and-port-dependent'
    """
    if isinstance(name, NatBehavior):
        return replace(name, **changes) if changes else name
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    key = ALIASES.get(key, key)
    if key in FIREWALLED:
        return replace(FIREWALLED[key], **changes) if changes else FIREWALLED[key]
    if key not in PRESETS:
        raise UnknownPresetError(
            f"unknown NAT preset {name!r}. Known presets: {', '.join([*PRESETS, *FIREWALLED])}. "
            f"Example: preset('port-restricted-cone'), or NatBehavior(mapping='endpoint-independent', "
            f"filtering='address-dependent') for your own."
        )
    return replace(PRESETS[key], **changes) if changes else PRESETS[key]


@dataclass
class Mapping:
    """One row of a translation table."""

    proto: int
    inside: Endpoint
    outside: Endpoint
    key: tuple
    created: float
    expires: float
    remotes: set[Endpoint] = field(default_factory=set)
    packets_out: int = 0
    packets_in: int = 0
    refreshed: float = 0.0  # when the timer was last restarted
    static: bool = False  # granted by a port mapping protocol (PCP/NAT-PMP): fixed lifetime, admits anyone


class NatTable:
    """A NAT's translation table: applies a ``NatBehavior`` to packets going out and coming in.

    ``outbound(pkt, now)`` returns ``(translated_packet, note)``; ``inbound(pkt, now)`` returns
    ``(translated_packet, note)`` or ``(None, reason)`` when the packet is dropped.
    """

    def __init__(self, behavior: NatBehavior, public_ips: list[str], rng: random.Random | None = None,
                 name: str = "nat") -> None:
        if not public_ips:
            raise ConfigurationError("a NAT needs at least one outside (public) address")
        self.behavior = behavior
        self.public_ips = list(public_ips)
        self.rng = rng or random.Random(0)
        self.name = name
        self._by_key: dict[tuple, Mapping] = {}
        self._by_outside: dict[tuple[int, str, int], Mapping] = {}
        self._next_port: dict[str, int] = {ip: behavior.port_range[0] for ip in self.public_ips}
        self._local_conntrack: set[tuple[int, Endpoint, Endpoint]] = set()  # (proto, public ep, remote ep)
        self.expired: list[Mapping] = []
        self._deadlines: list[tuple[float, int, Mapping]] = []
        self._seq = itertools.count()
        self.log: list[str] = []
        self._static: dict[tuple[int, Endpoint], Mapping] = {}  # (proto, inside) -> PCP/NAT-PMP mapping
        # flows let in by a port forward or the DMZ rule: (proto, inside, remote) -> outside endpoint
        self._forward_flows: dict[tuple[int, Endpoint, Endpoint], Endpoint] = {}
        self._forwarded_ports = {(f.proto_number, f.port): f for f in behavior.forwards}
        self._static_in = dict(behavior.static)  # public address -> inside address
        self._static_out = {inside: public for public, inside in behavior.static}
        for public in self._static_in:
            if public not in self.public_ips or public == self.public_ips[0]:
                raise ConfigurationError(
                    f"static NAT address {public} must be one of {name}'s outside addresses other than its "
                    f"first ({self.public_ips[0]}, which all the other hosts share); outside addresses: "
                    f"{', '.join(self.public_ips)}")
        self._pool = [ip for ip in self.public_ips if ip not in self._static_in]
        self.explain = True  # False skips building notes and reasons (population runs without a trace)

    # -- mapping lookup -----------------------------------------------------------------
    def _key(self, proto: int, inside: Endpoint, remote: Endpoint) -> tuple:
        m = self.behavior.mapping
        if m == EI:
            return (proto, inside)
        if m == AD:
            return (proto, inside, remote[0])
        return (proto, inside, remote)

    STREAM_AFTER = 2.0  # Linux: a replied UDP flow becomes a "stream" if still active 2 s after it began

    def _timeout(self, m: Mapping, now: float) -> float:
        """How long ``m`` lives from ``now`` (see ``NatBehavior.unreplied_timeout``)."""
        b = self.behavior
        if b.unreplied_timeout is None or m.proto != 17:
            return b.mapping_timeout
        if m.packets_in and now >= m.created + self.STREAM_AFTER:
            return b.mapping_timeout
        return b.unreplied_timeout

    def _expire(self, now: float) -> None:
        # A heap of (deadline, seq, mapping); a refreshed mapping is pushed again at its new deadline.
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, m = heapq.heappop(heap)
            if m.expires > now:
                heapq.heappush(heap, (m.expires, next(self._seq), m))
                continue
            if self._by_key.get(m.key) is not m:
                continue
            del self._by_key[m.key]
            del self._by_outside[(m.proto, *m.outside)]
            self.expired.append(m)
            if m.static:
                self._static.pop((m.proto, m.inside), None)
                self.log.append(f"t={m.expires:.3f}s static mapping {fmt(m.inside)} -> {fmt(m.outside)} expired "
                                f"(its port mapping lifetime ended; noticed at t={now:.3f}s)")
                continue
            self.log.append(f"t={m.expires:.3f}s mapping {fmt(m.inside)} -> {fmt(m.outside)} expired "
                            f"(idle for {m.expires - m.refreshed:g} s; noticed at t={now:.3f}s)")

    def _pick_outside(self, proto: int, inside: Endpoint, remote: Endpoint) -> Endpoint:
        b = self.behavior
        # paired pooling: an inside host always uses the same outside address
        pool = self._pool
        ip = pool[0]
        if len(pool) > 1:
            ip = pool[zlib.crc32(inside[0].encode()) % len(pool)]
        lo, hi = b.port_range

        def free(port: int) -> bool:
            if (proto, ip, port) in self._by_outside:
                return False
            if (proto, port) in self._forwarded_ports and ip == self.public_ips[0]:
                return False  # reserved by a port forward
            return not (b.conntrack_clash and (proto, (ip, port), remote) in self._local_conntrack)

        if b.port_allocation == "preserving" and lo <= inside[1] <= hi and free(inside[1]):
            return ip, inside[1]
        if b.port_allocation == "random":
            for _ in range(64):
                port = self.rng.randint(lo, hi)
                if free(port):
                    return ip, port
        span = hi - lo + 1
        start = self._next_port[ip] if b.port_allocation != "preserving" else inside[1]
        for i in range(span):
            port = lo + (start - lo + i) % span
            if free(port):
                self._next_port[ip] = lo + (port - lo + 1) % span
                return ip, port
        raise ConfigurationError(f"NAT {self.name} has run out of ports on {ip} ({lo}-{hi} all mapped)")

    # -- static mappings (PCP / NAT-PMP) ------------------------------------------------------
    def port_free(self, proto: int, port: int, ip: str | None = None) -> bool:
        """Is outside ``port`` of ``ip`` (default: the first outside address) unused?"""
        return (proto, ip or self.public_ips[0], port) not in self._by_outside

    def add_static(self, proto: int, inside: Endpoint, outside: Endpoint, lifetime: float, now: float) -> Mapping:
        """Install a mapping a port mapping protocol granted: ``inside`` <-> ``outside`` for ``lifetime``
        seconds, not refreshed by traffic, used for every outbound packet of ``inside`` and admitting
        inbound packets from anyone (endpoint-independent filtering for this mapping only)."""
        self._expire(now)
        self.remove_static(proto, inside)
        taken = self._by_outside.get((proto, *outside))
        if taken is not None:
            raise ConfigurationError(f"NAT {self.name}: outside {fmt(outside)} is already mapped to {fmt(taken.inside)}")
        m = Mapping(proto, inside, outside, ("static", proto, inside), now, now + lifetime, static=True)
        self._by_key[m.key] = m
        self._by_outside[(proto, *outside)] = m
        self._static[(proto, inside)] = m
        heapq.heappush(self._deadlines, (m.expires, next(self._seq), m))
        self.log.append(f"t={now:.3f}s static mapping {fmt(inside)} -> {fmt(outside)} for {lifetime:g} s")
        return m

    def remove_static(self, proto: int, inside: Endpoint) -> Mapping | None:
        """Remove the static mapping of ``inside`` (deleted by its client), if there is one."""
        m = self._static.pop((proto, inside), None)
        if m is not None:
            self._by_key.pop(m.key, None)
            self._by_outside.pop((m.proto, *m.outside), None)
        return m

    # -- packets ------------------------------------------------------------------------
    def outbound(self, pkt: Datagram, now: float) -> tuple[Datagram, str]:
        """Translate a packet from the inside; creates or refreshes a mapping."""
        self._expire(now)
        inside = (pkt.src, pkt.sport)
        remote = (pkt.dst, pkt.dport)
        if self._static:
            sm = self._static.get((pkt.proto, inside))
            if sm is not None:
                sm.remotes.add(remote)
                sm.packets_out += 1
                note = f"static mapping {fmt(inside)} -> {fmt(sm.outside)} (granted by port mapping)" if self.explain else ""
                return pkt.rewrite(src=sm.outside[0], sport=sm.outside[1]), note
        if self._static_out and pkt.src in self._static_out:
            public = self._static_out[pkt.src]
            return (pkt.rewrite(src=public),
                    f"static NAT: {pkt.src} is always {public}" if self.explain else "")
        if self._forward_flows:
            fwd = self._forward_flows.get((pkt.proto, inside, remote))
            if fwd is not None:
                return (pkt.rewrite(src=fwd[0], sport=fwd[1]),
                        f"reply on a forwarded flow: {fmt(inside)} -> {fmt(fwd)}" if self.explain else "")
        key = self._key(pkt.proto, inside, remote)
        m = self._by_key.get(key)
        if self.behavior.conntrack_clash:
            # Linux NATs per connection (conntrack entry); a flow keeps its own mapping, and a new flow
            # whose reply tuple is already taken by a router-local entry cannot reuse the port.
            flow_key = (pkt.proto, inside, remote)
            if flow_key in self._by_key:
                m, key = self._by_key[flow_key], flow_key
            elif m is not None and remote not in m.remotes and (pkt.proto, m.outside, remote) in self._local_conntrack:
                m, key = None, flow_key
        if m is None:
            outside = self._pick_outside(pkt.proto, inside, remote)
            m = Mapping(pkt.proto, inside, outside, key, now, now)
            m.expires = now + self._timeout(m, now)
            self._by_key[key] = m
            self._by_outside[(pkt.proto, *outside)] = m
            heapq.heappush(self._deadlines, (m.expires, next(self._seq), m))
            note = f"new mapping {fmt(inside)} -> {fmt(outside)} ({self.behavior.mapping} mapping)" if self.explain else ""
            if self.explain and self.behavior.conntrack_clash and outside[1] != inside[1]:
                note += (f"; port {inside[1]} was taken by a conntrack entry the peer's early packet left "
                         f"on the router, so the NAT picked {outside[1]}")
        else:
            note = f"existing mapping {fmt(inside)} -> {fmt(m.outside)}" if self.explain else ""
        m.expires = now + self._timeout(m, now)
        m.refreshed = now
        m.remotes.add(remote)
        m.packets_out += 1
        return pkt.rewrite(src=m.outside[0], sport=m.outside[1]), note

    def inbound(self, pkt: Datagram, now: float) -> tuple[Datagram | None, str]:
        """Translate a packet from the outside, or drop it with a reason in plain words."""
        self._expire(now)
        remote = (pkt.src, pkt.sport)
        if self._static_in and pkt.dst in self._static_in:
            inside = self._static_in[pkt.dst]
            return (pkt.rewrite(dst=inside),
                    f"static NAT: {pkt.dst} is always {inside} (from {fmt(remote)})" if self.explain else "")
        if self._forwarded_ports or self.behavior.dmz:
            admitted = self._admin_rule(pkt, remote)
            if admitted is not None:
                return admitted
        m = self._by_outside.get((pkt.proto, pkt.dst, pkt.dport))
        if m is None:
            if self.behavior.conntrack_clash:
                self._local_conntrack.add((pkt.proto, (pkt.dst, pkt.dport), remote))
                return None, (f"unsolicited inbound: no mapping for {fmt((pkt.dst, pkt.dport))}; the router's "
                              f"own input accepted it from {fmt(remote)} and left a conntrack entry behind")
            return None, (f"unsolicited inbound: no mapping for {fmt((pkt.dst, pkt.dport))} from {fmt(remote)} "
                          f"under {self.behavior.filtering} filtering")
        f = EI if m.static else self.behavior.filtering
        allowed = (f == EI or (f == AD and any(r[0] == remote[0] for r in m.remotes))
                   or (f == APD and remote in m.remotes))
        if not allowed:
            if not self.explain:
                if self.behavior.conntrack_clash:
                    self._local_conntrack.add((pkt.proto, (pkt.dst, pkt.dport), remote))
                return None, ""
            pname = PROTO_NAMES.get(pkt.proto, str(pkt.proto))
            if self.behavior.conntrack_clash:
                self._local_conntrack.add((pkt.proto, (pkt.dst, pkt.dport), remote))
                return None, (f"not part of any connection through {fmt(m.outside)}: the router's own input "
                              f"accepted it from {fmt(remote)} and left a conntrack entry behind")
            seen = ", ".join(sorted(fmt(r) for r in m.remotes)) or "nobody"
            what = "address" if f == AD else "address and port"
            return None, (f"filtered: the {pname} mapping {fmt(m.outside)} -> {fmt(m.inside)} only admits "
                          f"the {what} it has sent to ({seen}), not {fmt(remote)} ({f} filtering)")
        m.packets_in += 1
        if self.behavior.inbound_refresh and not m.static:
            m.expires = now + self._timeout(m, now)
            m.refreshed = now
        return (pkt.rewrite(dst=m.inside[0], dport=m.inside[1]),
                (f"{'static ' if m.static else ''}mapping {fmt(m.outside)} -> {fmt(m.inside)}"
                 + (" (granted by port mapping: admits anyone)" if m.static else "")) if self.explain else "")

    def _admin_rule(self, pkt: Datagram, remote: Endpoint) -> tuple[Datagram, str] | None:
        """A port forward or the DMZ rule admits ``pkt``: rewrite it for the inside host (or None)."""
        f = self._forwarded_ports.get((pkt.proto, pkt.dport)) if pkt.dst == self.public_ips[0] else None
        if f is not None:
            inside, why = (f.to, f.to_port), f"port forward {f.describe()}"
        elif self.behavior.dmz and pkt.dst == self.public_ips[0]:
            m = self._by_outside.get((pkt.proto, pkt.dst, pkt.dport))
            if m is not None and self._filter_admits(m, remote):
                return None  # an ordinary mapping takes it (like an existing conntrack entry in Linux)
            inside, why = (self.behavior.dmz, pkt.dport), f"DMZ host {self.behavior.dmz} takes unsolicited packets"
        else:
            return None
        self._forward_flows[(pkt.proto, inside, remote)] = (pkt.dst, pkt.dport)
        return pkt.rewrite(dst=inside[0], dport=inside[1]), (f"{why} (from {fmt(remote)})" if self.explain else "")

    def _filter_admits(self, m: Mapping, remote: Endpoint) -> bool:
        f = self.behavior.filtering
        return (f == EI or (f == AD and any(r[0] == remote[0] for r in m.remotes))
                or (f == APD and remote in m.remotes))

    def mappings(self, now: float | None = None) -> list[Mapping]:
        """The live mappings (expired ones removed first when ``now`` is given)."""
        if now is not None:
            self._expire(now)
        return list(self._by_key.values())

    def table(self, now: float | None = None) -> pd.DataFrame:
        """The translation table as a DataFrame: inside, outside, remotes, created, expires, packets."""
        import pandas as pd

        rows = [
            {
                "proto": PROTO_NAMES.get(m.proto, m.proto),
                "inside": fmt(m.inside),
                "outside": fmt(m.outside),
                "remote": ", ".join(sorted(fmt(r) for r in m.remotes)),
                "created": round(m.created, 6),
                "expires": round(m.expires, 6),
                "packets_out": m.packets_out,
                "packets_in": m.packets_in,
            }
            for m in sorted(self.mappings(now), key=lambda m: (m.created, m.outside))
        ]
        cols = ["proto", "inside", "outside", "remote", "created", "expires", "packets_out", "packets_in"]
        return pd.DataFrame(rows, columns=cols)
