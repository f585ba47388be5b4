"""The simulated world: a deterministic, seeded, discrete-event network.

>>> from p2plab import sim, topology
>>> net = sim.Network.build(topology.punch("port-restricted-cone", "symmetric"), seed=1)
>>> sock = net.host("alice").udp_socket(5000)
>>> sock.sendto(b"hello", ("192.0.2.1", 7000))
>>> net.run(until=1.0)

Everything runs on a simulated clock (``net.now``, seconds) with one seeded random generator,
so the same seed gives the identical trace, byte for byte. Every packet is recorded at every
place it passes (``net.trace``), every NAT rewrite as a before/after pair of rows, and every drop
with its reason in plain words. Packets are light ``Datagram`` objects; real bytes (and scapy
packets) are made only when a trace is shown or saved.
"""

from __future__ import annotations

import functools
import heapq
import inspect
import ipaddress
import itertools
import random
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .addresses import Endpoint, check_endpoint, check_port, fmt, is_private, is_shared_cgn
from .errors import ConfigurationError, P2PLabError, TopologyError
from .nat import NatTable
from .packet import ACK, RST, SYN, TCP, UDP, Datagram
from .sansio import DatagramProtocol, Event
from .topology import INTERNET, Node, Topology
from .trace import Trace

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

EPHEMERAL = (49152, 65535)
_push = heapq.heappush


class Link:
    """The wire between a node and the node it sits behind: one-way latency, jitter and loss."""

    __slots__ = ("latency", "jitter", "loss")

    def __init__(self, latency: float = 0.010, jitter: float = 0.0, loss: float = 0.0) -> None:
        if latency < 0 or jitter < 0:
            raise ConfigurationError(f"latency and jitter are seconds >= 0, e.g. 0.010; got {latency}, {jitter}")
        if not 0 <= loss <= 1:
            raise ConfigurationError(f"loss is a probability from 0 to 1, e.g. 0.01; got {loss}")
        self.latency = latency
        self.jitter = jitter
        self.loss = loss


class SimNode:
    """Something packets pass: a host, a NAT router or the internet core."""

    kind = "node"

    def __init__(self, net: Network, name: str) -> None:
        self.net = net
        self.name = name
        self.parent: SimNode | None = None
        self.uplink: Link | None = None

    def receive(self, pkt: Datagram, from_node: SimNode | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}>"


class UdpSocket:
    """A UDP socket on a simulated host: ``sendto``, and ``on_datagram(data, addr)`` for receiving."""

    def __init__(self, host: Host, port: int, ip: str | None = None) -> None:
        self.host = host
        self.port = port
        self.ip = ip or host.ip
        self.on_datagram: Callable[[bytes, Endpoint], None] | None = None
        self.received: list[tuple[float, bytes, Endpoint]] = []
        self.closed = False

    @property
    def local_addr(self) -> Endpoint:
        return (self.ip, self.port)

    def sendto(self, data: bytes, addr: tuple[str, int] | str) -> None:
        """Send one datagram to ``(ip, port)``."""
        if self.closed:
            raise ConfigurationError(f"socket {fmt(self.local_addr)} on {self.host.name} is closed")
        ip, port = check_endpoint(addr, "destination")
        self.host.send(Datagram(self.ip, self.port, ip, port, bytes(data)))

    def deliver(self, data: bytes, addr: Endpoint) -> None:
        if self.on_datagram is not None:
            self.on_datagram(data, addr)
        else:
            self.received.append((self.host.net.now, data, addr))

    def close(self) -> None:
        self.closed = True
        self.host.sockets.pop((self.ip, self.port), None)


class Host(SimNode):
    """A computer with one address (a peer like Alice, or a server). Servers may have several."""

    kind = "host"

    def __init__(self, net: Network, name: str, ips: list[str]) -> None:
        super().__init__(net, name)
        self.ips = ips
        self.ip = ips[0]
        self.sockets: dict[Endpoint, UdpSocket] = {}  # (local ip, port) -> socket
        self.tcp_handler: Callable[[Datagram], None] | None = None
        self._next_ephemeral = EPHEMERAL[0]

    def udp_socket(self, port: int = 0, ip: str | None = None) -> UdpSocket:
        """Bind a UDP socket on ``ip`` (default: the host's first address); port 0 picks a free
        ephemeral port, 49152-65535."""
        port = check_port(port)
        ip = self.ip if ip is None else ip
        if ip not in self.ips:
            raise ConfigurationError(f"{self.name} has no address {ip}; it has {', '.join(self.ips)}")
        if port == 0:
            while (ip, self._next_ephemeral) in self.sockets:
                self._next_ephemeral += 1
            port = self._next_ephemeral
            self._next_ephemeral += 1
        if (ip, port) in self.sockets:
            raise ConfigurationError(f"port {port} on {self.name} ({ip}) is already bound; pick another or close that socket")
        sock = UdpSocket(self, port, ip)
        self.sockets[(ip, port)] = sock
        return sock

    def send(self, pkt: Datagram) -> None:
        net = self.net
        pkt.ident = next(net._ids)
        if pkt.src not in self.ips:
            pkt.src = self.ip
        net.record(self.name, "eth0", "out", pkt, "sent", "")
        if pkt.dst in self.ips:  # to itself
            net.after(0.0, self.receive, pkt, self)
            return
        net.transmit(self, self.parent, self.uplink, pkt)

    def receive(self, pkt: Datagram, from_node: SimNode | None) -> None:
        net = self.net
        if pkt.dst not in self.ips:
            net.record(self.name, "eth0", "in", pkt, "dropped", f"{self.name} is not {pkt.dst}: wrong host")
            return
        if pkt.proto != UDP:
            if self.tcp_handler is not None:
                net.record(self.name, "eth0", "in", pkt, "delivered", "")
                self.tcp_handler(pkt)
            else:
                net.record(self.name, "eth0", "in", pkt, "dropped",
                           f"no TCP listener on {self.name} port {pkt.dport}: the host answers with RST")
            return
        sock = self.sockets.get((pkt.dst, pkt.dport))
        if sock is None:
            net.record(self.name, "eth0", "in", pkt, "dropped",
                       f"port unreachable: nothing on {self.name} listens on UDP {pkt.dport}")
            return
        net.record(self.name, "eth0", "in", pkt, "delivered", "")
        sock.deliver(pkt.payload, (pkt.src, pkt.sport))


class NatRouter(SimNode):
    """A NAT router: an inside (LAN) side with private hosts, an outside (WAN) side, a translation table."""

    kind = "nat"

    def __init__(self, net: Network, spec: Node) -> None:
        super().__init__(net, spec.name)
        self.spec = spec
        self.behavior = spec.nat
        self.public_ips = list(spec.ips)
        self.lan = ipaddress.ip_network(spec.lan)
        self.lan_ip = spec.lan_ip
        self.table = NatTable(spec.nat, self.public_ips, random.Random(net.rng.random()), spec.name)
        self.table.explain = net.record_enabled
        self.children: dict[str, SimNode] = {}
        self._lan_memo: dict[str, bool] = {}
        self.portmap = None  # the router's PCP/NAT-PMP server (p2plab.portmap.PortMapServer) when spec.portmap
        self._portmap_timer: float | None = None
        if getattr(spec, "portmap", False):
            from .portmap import PortMapServer

            self.portmap = PortMapServer(self.public_ips[0], str(self.lan),
                                         port_free=lambda proto, port: self.table.port_free(proto, port),
                                         seed=int(net.rng.random() * 2**31))
            self.portmap.start(net.now, (self.lan_ip, PORTMAP_PORT))

    def _in_lan(self, ip: str) -> bool:
        hit = self._lan_memo.get(ip)
        if hit is None:
            if self.lan.version == 4 and ":" not in ip:  # integer compare: much cheaper than ipaddress
                n = int.from_bytes(socket.inet_aton(ip), "big")
                hit = (n & int(self.lan.netmask)) == int(self.lan.network_address)
            else:
                hit = ipaddress.ip_address(ip) in self.lan
            self._lan_memo[ip] = hit
        return hit

    def receive(self, pkt: Datagram, from_node: SimNode | None) -> None:
        net = self.net
        name = self.name
        if from_node is self.parent:  # from the outside
            if pkt.dst not in self.public_ips:
                net.record(name, "wan", "in", pkt, "dropped", f"{pkt.dst} is not an address of {name}")
                return
            if pkt.ttl <= 1:
                net.record(name, "wan", "in", pkt, "dropped", _TTL_EXPIRED)
                return
            new, note = self.table.inbound(pkt, net.now)
            if new is None:
                net.record(name, "wan", "in", pkt, "dropped", note)
                if pkt.proto == TCP and pkt.flags & SYN and self.behavior.tcp_unsolicited == "rst":
                    rst = Datagram(pkt.dst, pkt.dport, pkt.src, pkt.sport, b"", TCP, next(net._ids),
                                   flags=RST | ACK, ack=pkt.seq + 1)
                    net.record(name, "wan", "out", rst, "sent", f"{name} answers an unsolicited SYN with RST")
                    net.transmit(self, self.parent, self.uplink, rst)
                return
            new = _forwarded(pkt, new)
            child = self.children.get(new.dst)
            net.record_pair(name, ("wan", "in", pkt), ("lan", "out", new), note)
            if child is None:
                net.record(name, "lan", "out", new, "dropped", f"no host {new.dst} on {name}'s inside network")
                return
            net.transmit(self, child, child.uplink, new)
            return
        # from the inside
        dst = pkt.dst
        if dst in self.children and from_node is not self.children[dst]:
            net.record(name, "lan", "in", pkt, "forwarded", "same inside network: no translation")
            child = self.children[dst]
            net.transmit(self, child, child.uplink, pkt)
            return
        if dst in self.public_ips:  # hairpinning
            if not self.behavior.hairpinning:
                net.record(name, "lan", "in", pkt, "dropped",
                           f"hairpinning is off: {name} will not send a packet for its own outside address "
                           f"{fmt((dst, pkt.dport))} back inside")
                return
            out, note = self.table.outbound(pkt, net.now)
            back, note_in = self.table.inbound(out, net.now)
            if back is not None:
                back = _forwarded(pkt, back)
            if back is None:
                net.record_pair(name, ("lan", "in", pkt), ("wan", "out", out), note + " (hairpin)")
                net.record(name, "wan", "in", out, "dropped", note_in)
                return
            net.record_pair(name, ("lan", "in", pkt), ("lan", "out", back),
                            f"hairpin: {note}; then {note_in}")
            child = self.children.get(back.dst)
            if child is not None:
                net.transmit(self, child, child.uplink, back)
            return
        if dst == self.lan_ip and self.portmap is not None and pkt.proto == UDP and pkt.dport == PORTMAP_PORT:
            net.record(name, "lan", "in", pkt, "delivered", "to the router's port mapping server (PCP/NAT-PMP)")
            self.portmap.datagram_received(pkt.payload, (pkt.src, pkt.sport), net.now)
            self._portmap_pump()
            return
        if self._in_lan(dst):
            net.record(name, "lan", "in", pkt, "dropped", f"no host {dst} on {name}'s inside network {self.lan}")
            return
        if self.parent is None:
            net.record(name, "lan", "in", pkt, "dropped", f"{name} has no uplink")
            return
        if pkt.ttl <= 1:
            net.record(name, "lan", "in", pkt, "dropped", _TTL_EXPIRED)
            return
        if self.behavior.egress_only is not None:  # a network that blocks UDP (nat.FIREWALLED)
            blocked = self.behavior.egress_blocked(pkt.proto, pkt.dport)
            if blocked:
                net.record(name, "lan", "in", pkt, "dropped", blocked)
                return
        new, note = self.table.outbound(pkt, net.now)
        new = _forwarded(pkt, new)
        net.record_pair(name, ("lan", "in", pkt), ("wan", "out", new), note)
        net.transmit(self, self.parent, self.uplink, new)

    # -- the router's own port mapping server ---------------------------------------------------
    def _portmap_pump(self) -> None:
        net, srv = self.net, self.portmap
        for ev in srv.events():
            if ev.kind == "mapped":
                self.table.add_static(ev.proto, ev.internal, ev.external, ev.lifetime, net.now)
            elif ev.kind == "unmapped" and ev.why == "deleted":
                self.table.remove_static(ev.proto, ev.internal)
            # "unmapped ... expired": the table expires the mapping at the same moment by itself
        for data, addr in srv.datagrams_to_send():
            out = Datagram(self.lan_ip, PORTMAP_PORT, addr[0], addr[1], data, UDP, next(net._ids))
            child = self.children.get(addr[0])
            net.record(self.name, "lan", "out", out, "sent", "")
            if child is not None:
                net.transmit(self, child, child.uplink, out)
        at = srv.next_timer()
        if at is not None and at != self._portmap_timer:
            self._portmap_timer = at
            net.at(at, self._portmap_fire, at)

    def _portmap_fire(self, at: float) -> None:
        if self._portmap_timer != at:
            return
        self._portmap_timer = None
        self.portmap.handle_timer(self.net.now)
        self._portmap_pump()


PORTMAP_PORT = 5351  # PCP and NAT-PMP (RFC 6887 section 19.1, RFC 6886 section 3)
_TTL_EXPIRED = "TTL expired in transit: the packet crossed too many routers (a router sends ICMP time exceeded)"


def _forwarded(before: Datagram, after: Datagram) -> Datagram:
    """The translated packet as the router sends it on: one hop less to live than it arrived with."""
    if after is before:
        return before.rewrite(ttl=before.ttl - 1)
    after.ttl = before.ttl - 1
    return after


class Internet(SimNode):
    """The core: routes public addresses to whoever holds them; private ones go nowhere."""

    kind = "router"

    def __init__(self, net: Network) -> None:
        super().__init__(net, INTERNET)
        self.routes: dict[str, SimNode] = {}

    def receive(self, pkt: Datagram, from_node: SimNode | None) -> None:
        net = self.net
        to = self.routes.get(pkt.dst)
        if to is None:
            if is_private(pkt.dst):
                reason = (f"no route to {pkt.dst}: it is a private address (RFC 1918); it exists only inside "
                          f"some local network, and no router on the internet forwards it")
            elif is_shared_cgn(pkt.dst):
                reason = (f"no route to {pkt.dst}: it is carrier-grade NAT shared space (RFC 6598), "
                          f"meaningful only inside one provider's network")
            else:
                reason = f"no route to {pkt.dst}: no host in this network has that address"
            net.record(INTERNET, "core", "in", pkt, "dropped", reason)
            return
        if pkt.ttl <= 1:
            net.record(INTERNET, "core", "in", pkt, "dropped", _TTL_EXPIRED)
            return
        pkt = pkt.rewrite(ttl=pkt.ttl - 1)  # a router decrements the TTL (and so the IP checksum changes)
        net.record(INTERNET, "core", "out", pkt, "forwarded", "")
        net.transmit(self, to, to.uplink, pkt)


class Network:
    """A simulated network: nodes, links, a clock, one seeded RNG and a trace of every packet.

    Build one from a ``Topology`` with ``Network.build(topology, seed=0)``.
    """

    def __init__(self, seed: int = 0, record: bool = True) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0.0
        self.record_enabled = record
        self._queue: list[tuple[float, int, Callable, tuple]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._rows: list[tuple] = []
        self._pkts: list[Datagram] = []
        self.internet = Internet(self)
        self.nodes: dict[str, SimNode] = {INTERNET: self.internet}
        self.topology: Topology | None = None
        self.hops = 0
        self.runners: list[ProtocolRunner] = []

    # -- building ------------------------------------------------------------------------
    @classmethod
    def build(cls, topology: Topology, seed: int = 0, record: bool = True) -> Network:
        """Make the simulated network that ``topology`` describes."""
        if not isinstance(topology, Topology):
            raise TopologyError(f"Network.build needs a p2plab.topology.Topology, e.g. topology.punch(); got {topology!r}")
        net = cls(seed, record)
        net.topology = topology
        for spec in topology.nodes.values():
            net._add(spec)
        return net

    def _add(self, spec: Node) -> SimNode:
        node: SimNode = NatRouter(self, spec) if spec.kind == "nat" else Host(self, spec.name, list(spec.ips))
        parent = self.nodes[spec.behind]
        node.parent = parent
        node.uplink = Link(spec.latency, spec.jitter, spec.loss)
        addrs = spec.ips
        if isinstance(parent, Internet):
            for ip in addrs:
                parent.routes[ip] = node
        else:
            assert isinstance(parent, NatRouter)
            for ip in addrs:
                parent.children[ip] = node
        self.nodes[spec.name] = node
        return node

    def move_host(self, name: str, behind: str, ip: str | None = None, latency: float | None = None) -> str:
        """Move host ``name`` behind another NAT (or onto the internet) now: a laptop leaving Wi-Fi
        for the mobile network. ``ip`` is its new address (default: it keeps its old one), which
        must lie in the new NAT's inside network. The host's sockets follow it, like sockets bound
        to the wildcard address: they keep their ports and take the new address. Packets already
        on their way to the old place arrive there and find nobody. Returns a one-line summary.
        """
        host = self.host(name)
        parent = self.nodes.get(behind)
        if parent is None or not isinstance(parent, (NatRouter, Internet)):
            nats = [n for n, v in self.nodes.items() if isinstance(v, NatRouter)]
            raise TopologyError(f"cannot move {name!r} behind {behind!r}: choose 'internet' or a NAT of this "
                                f"network ({', '.join(nats) or 'none'})")
        new_ip = ip or host.ip
        if isinstance(parent, NatRouter) and ipaddress.ip_address(new_ip) not in ipaddress.ip_network(parent.lan):
            raise TopologyError(f"{new_ip} is outside {behind}'s inside network {parent.lan}: give {name} an "
                                f"address there, e.g. ip='{next(ipaddress.ip_network(parent.lan).hosts())}'")
        old_parent, old_ip = host.parent, host.ip
        for ip_ in host.ips:
            if isinstance(old_parent, NatRouter):
                old_parent.children.pop(ip_, None)
            elif isinstance(old_parent, Internet):
                old_parent.routes.pop(ip_, None)
        host.ips = [new_ip] + [x for x in host.ips[1:] if x != new_ip]
        host.ip = new_ip
        for key, sock in list(host.sockets.items()):
            del host.sockets[key]
            sock.ip = new_ip
            host.sockets[(new_ip, sock.port)] = sock
        host.parent = parent
        if latency is not None:
            host.uplink = Link(latency)
        for ip_ in host.ips:
            if isinstance(parent, NatRouter):
                parent.children[ip_] = host
            else:
                parent.routes[ip_] = host
        return f"{name} moved from {old_parent.name if old_parent else '?'} ({old_ip}) to {behind} ({new_ip})"

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        node = self.nodes.get(name)
        if not isinstance(node, Host):
            hosts = [n for n, v in self.nodes.items() if isinstance(v, Host)]
            raise TopologyError(f"no host called {name!r}; this network has {', '.join(hosts)}")
        return node

    def nat(self, name: str) -> NatRouter:
        """The NAT router called ``name``."""
        node = self.nodes.get(name)
        if not isinstance(node, NatRouter):
            nats = [n for n, v in self.nodes.items() if isinstance(v, NatRouter)]
            raise TopologyError(f"no NAT called {name!r}; this network has {', '.join(nats) or 'no NATs'}")
        return node

    def nat_table(self, name: str) -> pd.DataFrame:
        """The translation table of NAT ``name`` right now, as a DataFrame."""
        return self.nat(name).table.table(self.now)

    # -- the clock -----------------------------------------------------------------------
    def after(self, delay: float, fn: Callable, *args: Any) -> None:
        """Call ``fn(*args)`` ``delay`` simulated seconds from now."""
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), fn, args))

    def at(self, when: float, fn: Callable, *args: Any) -> None:
        """Call ``fn(*args)`` at simulated time ``when``."""
        heapq.heappush(self._queue, (max(when, self.now), next(self._seq), fn, args))

    def run(self, until: float | None = None, max_events: int | None = None) -> Network:
        """Process events until the queue is empty, the clock reaches ``until`` or ``max_events`` ran."""
        q = self._queue
        pop = heapq.heappop
        limit = float("inf") if until is None else until
        budget = -1 if max_events is None else max_events
        while q and q[0][0] <= limit and budget != 0:
            t, _, fn, args = pop(q)
            self.now = t
            fn(*args)
            budget -= 1
        if until is not None and self.now < until and (not q or q[0][0] > until):
            self.now = until
        return self

    # -- moving packets --------------------------------------------------------------------
    def transmit(self, src: SimNode, dst: SimNode, link: Link, pkt: Datagram) -> None:
        self.hops += 1
        if link.loss and self.rng.random() < link.loss:
            self.record(src.name, "link", "out", pkt, "dropped", f"lost on the link {src.name} - {dst.name}")
            return
        delay = link.latency + self.rng.uniform(0, link.jitter) if link.jitter else link.latency
        if dst is self.internet and not self.record_enabled:
            # Fast path without a trace: the core forwards instantly, so go straight on to the
            # next node; the packet arrives at the same time as it would through a core event.
            to = self.internet.routes.get(pkt.dst)
            if to is None or pkt.ttl <= 1:
                return
            pkt.ttl -= 1  # safe in place: without a trace nothing else refers to this packet
            self.hops += 1
            nxt = to.uplink
            if nxt.loss and self.rng.random() < nxt.loss:
                return
            delay += nxt.latency + self.rng.uniform(0, nxt.jitter) if nxt.jitter else nxt.latency
            _push(self._queue, (self.now + delay, next(self._seq), to.receive, (pkt, dst)))
            return
        _push(self._queue, (self.now + delay, next(self._seq), dst.receive, (pkt, src)))

    def record(self, node: str, iface: str, direction: str, pkt: Datagram, action: str, reason: str) -> None:
        if self.record_enabled:
            self._rows.append((self.now, node, iface, direction, pkt.src, pkt.sport, pkt.dst, pkt.dport,
                               None, None, None, action, reason, pkt.ident, -1))
            self._pkts.append(pkt)

    def record_pair(self, node: str, before: tuple, after: tuple, note: str) -> None:
        if not self.record_enabled:
            return
        i = len(self._rows)
        (bi, bd, bp), (ai, ad, ap) = before, after
        self._rows.append((self.now, node, bi, bd, bp.src, bp.sport, bp.dst, bp.dport, None, None, None,
                           "translated", note, bp.ident, i + 1))
        self._rows.append((self.now, node, ai, ad, ap.src, ap.sport, ap.dst, ap.dport, None, None, None,
                           "translated", note, ap.ident, i))
        self._pkts.append(bp)
        self._pkts.append(ap)

    @property
    def trace(self) -> Trace:
        """Everything recorded so far, as a ``Trace``."""
        return Trace(list(self._rows), list(self._pkts), world="sim",
                     meta={"seed": self.seed, "topology": self.topology.name if self.topology else None})

    # -- applications ------------------------------------------------------------------------
    def run_protocol(self, host: str, protocol: DatagramProtocol, port: int = 0) -> ProtocolRunner:
        """Run a sans-I/O protocol on ``host``, bound to UDP ``port`` (0 = any)."""
        runner = ProtocolRunner(self, self.host(host), protocol, port)
        self.runners.append(runner)
        return runner


@functools.cache
def _takes_local(cls: type) -> bool:
    """Does ``cls.datagram_received`` accept ``local=`` (the address a datagram arrived on)?"""
    params = inspect.signature(cls.datagram_received).parameters
    return "local" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class ProtocolRunner:
    """Drives one sans-I/O protocol on a simulated host: delivers datagrams, fires timers, sends."""

    def __init__(self, net: Network, host: Host, protocol: DatagramProtocol, port: int = 0) -> None:
        self.net = net
        self.host = host
        self.protocol = protocol
        self.sockets: dict[Endpoint, UdpSocket] = {}
        self.events: list[Event] = []
        self.on_event: Callable[[Event], None] | None = None
        self._timer_at: float | None = None
        self._takes_local = _takes_local(type(protocol))
        self._multi = hasattr(protocol, "datagram_received_on")
        sock = self._bind((host.ip, port))
        self._main = sock
        protocol.start(net.now, sock.local_addr)
        self._pump()

    @property
    def local_addr(self) -> Endpoint:
        return next(iter(self.sockets))

    def _bind(self, addr: Endpoint) -> UdpSocket:
        ip, port = addr
        if ip not in self.host.ips:
            raise ConfigurationError(f"{self.host.name} has no address {ip}; it has {', '.join(self.host.ips)}")
        sock = self.host.udp_socket(port, ip)
        local = (ip, sock.port)
        sock.on_datagram = functools.partial(self._received, local=local)
        self.sockets[local] = sock
        return sock

    def _received(self, data: bytes, src: Endpoint, local: Endpoint) -> None:
        # protocols with several sockets (an RFC 5780 STUN server, a TURN relay) want to know which
        # local address received the datagram
        if self._multi:
            self.protocol.datagram_received_on(data, src, local, self.net.now)  # type: ignore[attr-defined]
        elif self._takes_local:
            self.protocol.datagram_received(data, src, self.net.now, local=local)  # type: ignore[call-arg]
        else:
            self.protocol.datagram_received(data, src, self.net.now)
        self._pump()

    def _send(self, data: bytes, dst: Endpoint, via: Endpoint | None) -> None:
        if getattr(dst, "transport", None) is not None:  # a TCP/TLS connection (p2plab.turn.stream.StreamClient)
            raise ConfigurationError(
                f"{type(self.protocol).__name__} wants a {dst.transport.upper()} connection to {dst[0]}:{dst[1]}, but "
                "the simulator carries only UDP datagrams: run TURN over TCP/TLS in the real lab "
                "(p2plab.ice.streams.IceDriver, python -m p2plab ice --world netns), or use turn_transport='udp'")
        if via is None:
            sock = self._main
            self.host.send(Datagram(sock.ip, sock.port, dst[0], dst[1], data))
            return
        via = (via[0], int(via[1]))
        sock = self.sockets.get(via) or self._bind(via)
        self.host.send(Datagram(via[0], sock.port, dst[0], dst[1], data))

    def _pump(self) -> None:
        p = self.protocol
        if self._multi:
            self._sync_sockets()
        for item in p.datagrams_to_send():
            if len(item) == 3:
                self._send(item[0], item[1], item[2])
            else:
                self._send(item[0], item[1], getattr(item, "via", None))
        events = p.events()
        if events:
            self.events.extend(events)
            if self.on_event is not None:
                for ev in events:
                    self.on_event(ev)
        at = p.next_timer()
        if at is not None and at != self._timer_at:
            self._timer_at = at
            self.net.at(at, self._fire, at)

    def _sync_sockets(self) -> None:
        """Open the sockets a multi-address protocol wants now (a TURN relay) and close the ones it dropped."""
        main = self._main.local_addr
        wanted = {(ip, int(port)) for ip, port in self.protocol.local_addresses()} | {main}  # type: ignore[attr-defined]
        for addr in [a for a in self.sockets if a not in wanted]:
            self.sockets.pop(addr).close()
        for addr in sorted(wanted - set(self.sockets)):
            self._bind(addr)

    def poke(self) -> None:
        """Send what the protocol queued after an out-of-band call (e.g. signaling: ``set_remote``)."""
        self._pump()

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Call a protocol method at the simulated time now and send what it queued, e.g.
        ``runner.call(client.create_permission, peer)``."""
        self.protocol.now = self.net.now
        result = fn(*args, **kwargs)
        self._pump()
        return result

    def _fire(self, at: float) -> None:
        if self._timer_at != at:
            return  # superseded
        self._timer_at = None
        self.protocol.handle_timer(self.net.now)
        self._pump()


def network(topology: Topology | str = "punch", seed: int = 0, **kwargs: Any) -> Network:
    """Shortcut: a simulated network of a named scenario ('direct', 'one-nat', 'punch', 'cgn', 'same-nat')."""
    from . import topology as topo

    if isinstance(topology, str):
        if topology not in topo.SCENARIOS:
            raise P2PLabError(f"unknown scenario {topology!r}; choose one of {', '.join(topo.SCENARIOS)}")
        topology = topo.SCENARIOS[topology](**kwargs)
    return Network.build(topology, seed=seed)
