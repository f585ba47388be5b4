"""A small TCP for the simulator: enough of the handshake to show why TCP hole punching is hard.

Only connection set-up is modelled (RFC 9293 section 3.5): SYN, SYN-ACK, ACK, the *simultaneous
open* in which both sides send SYN and each answers the other's SYN with SYN-ACK, and RST. There
is no data transfer, window or retransmission of data; a SYN is retransmitted after 1 s, 2 s, ...
like a real stack's connect().

``run_tcp_punch`` has Alice and Bob each ``connect()`` to the other's public endpoint from the port
they registered with the rendezvous server, at the same time: a TCP hole punch (RFC 5128 section 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .addresses import Endpoint, fmt
from .packet import ACK, RST, SYN, TCP, Datagram

if TYPE_CHECKING:  # pragma: no cover
    from .sim import Host
    from .trace import Trace


class TcpStack:
    """The TCP part of one simulated host: connecting sockets and listeners."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.conns: dict[tuple[int, Endpoint], TcpConnection] = {}
        self.listeners: dict[int, Callable[[TcpConnection], None]] = {}
        host.tcp_handler = self.receive

    def connect(self, local_port: int, remote: Endpoint, retries: int = 3) -> TcpConnection:
        """Start an active open (send SYN) from ``local_port`` to ``remote``."""
        conn = TcpConnection(self, local_port, remote)
        self.conns[(local_port, remote)] = conn
        conn.send_syn(retries)
        return conn

    def listen(self, port: int, on_accept: Callable[[TcpConnection], None] | None = None) -> None:
        """Accept connections on ``port``."""
        self.listeners[port] = on_accept or (lambda c: None)

    def send(self, conn: TcpConnection, flags: int, seq: int, ack: int = 0) -> None:
        self.host.send(Datagram(self.host.ip, conn.local_port, conn.remote[0], conn.remote[1], b"", TCP,
                                flags=flags, seq=seq, ack=ack))

    def receive(self, pkt: Datagram) -> None:
        remote = (pkt.src, pkt.sport)
        conn = self.conns.get((pkt.dport, remote))
        if conn is not None and conn.state != "CLOSED":
            conn.segment(pkt)
            return
        if pkt.flags & SYN and not pkt.flags & ACK and pkt.dport in self.listeners:
            conn = TcpConnection(self, pkt.dport, remote)
            self.conns[(pkt.dport, remote)] = conn
            conn.state = "SYN-RECEIVED"
            conn.irs = pkt.seq
            self.send(conn, SYN | ACK, conn.iss, pkt.seq + 1)
            conn.on_established = self.listeners[pkt.dport]
            return
        if not pkt.flags & RST:  # no socket: the host answers with RST
            self.host.send(Datagram(self.host.ip, pkt.dport, pkt.src, pkt.sport, b"", TCP,
                                    flags=RST | ACK, ack=pkt.seq + 1))


class TcpConnection:
    """One TCP connection's handshake state: CLOSED, SYN-SENT, SYN-RECEIVED, ESTABLISHED."""

    def __init__(self, stack: TcpStack, local_port: int, remote: Endpoint) -> None:
        self.stack = stack
        self.local_port = local_port
        self.remote = remote
        self.state = "CLOSED"
        self.iss = stack.host.net.rng.randrange(2**32)
        self.irs = 0
        self.history: list[tuple[float, str]] = []
        self.on_established: Callable[[TcpConnection], None] | None = None
        self.error: str | None = None

    def _set(self, state: str, why: str) -> None:
        self.state = state
        self.history.append((round(self.stack.host.net.now, 9), f"{state}: {why}"))

    def send_syn(self, retries: int) -> None:
        self._set("SYN-SENT", f"SYN to {fmt(self.remote)}")
        self.stack.send(self, SYN, self.iss)
        self._retries = retries
        self._rto = 1.0
        self.stack.host.net.after(self._rto, self._retransmit)

    def _retransmit(self) -> None:
        if self.state != "SYN-SENT":
            return
        if self._retries <= 0:
            self.error = "timed out: no answer to SYN"
            self._set("CLOSED", self.error)
            return
        self._retries -= 1
        self._rto *= 2
        self.stack.send(self, SYN, self.iss)
        self.stack.host.net.after(self._rto, self._retransmit)

    def segment(self, pkt: Datagram) -> None:
        f = pkt.flags
        if f & RST:
            if self.state in ("SYN-SENT", "SYN-RECEIVED"):
                self.error = f"connection refused: RST from {fmt((pkt.src, pkt.sport))}"
                self._set("CLOSED", self.error)
            return
        if self.state == "SYN-SENT" and f & SYN and f & ACK:
            self.irs = pkt.seq
            self.stack.send(self, ACK, self.iss + 1, pkt.seq + 1)
            self._set("ESTABLISHED", "got SYN-ACK, sent ACK")
        elif self.state == "SYN-SENT" and f & SYN:
            # simultaneous open: both sent SYN; answer with SYN-ACK (RFC 9293, figure 8)
            self.irs = pkt.seq
            self.stack.send(self, SYN | ACK, self.iss, pkt.seq + 1)
            self._set("SYN-RECEIVED", "got a SYN while in SYN-SENT: simultaneous open, sent SYN-ACK")
        elif self.state == "SYN-RECEIVED" and f & ACK:
            self._set("ESTABLISHED", "got " + ("SYN-ACK" if f & SYN else "ACK"))
            if f & SYN:
                self.stack.send(self, ACK, self.iss + 1, pkt.seq + 1)
            if self.on_established:
                self.on_established(self)


@dataclass
class TcpPunchResult:
    """Outcome of a simulated TCP hole punch."""

    nat_a: str
    nat_b: str
    direct: bool
    alice: list[tuple[float, str]]
    bob: list[tuple[float, str]]
    reason: str
    trace: Trace | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.nat_a} x {self.nat_b}: {'ESTABLISHED' if self.direct else 'FAILED'} - {self.reason}"


def run_tcp_punch(nat_a: Any = "port-restricted-cone", nat_b: Any = "port-restricted-cone",
                  bob_delay: float = 0.0, seed: int = 0, run_for: float = 10.0) -> TcpPunchResult:
    """Alice and Bob connect() to each other's public endpoint at once, from port 5000.

    Both know the other's public endpoint already (as a rendezvous server would have told them);
    with port-preserving NATs that is ``public_ip:5000``. ``bob_delay`` makes Bob start later.
    """
    from . import sim
    from . import topology as topo

    net = sim.Network.build(topo.punch(nat_a, nat_b), seed=seed)
    a, b = TcpStack(net.host("alice")), TcpStack(net.host("bob"))
    box: dict[str, TcpConnection] = {}
    net.after(0.0, lambda: box.__setitem__("a", a.connect(5000, (topo.BOB_NAT_IP, 5000))))
    net.after(bob_delay, lambda: box.__setitem__("b", b.connect(5000, (topo.ALICE_NAT_IP, 5000))))
    net.run(until=run_for)
    ca, cb = box["a"], box["b"]
    ok = ca.state == "ESTABLISHED" and cb.state == "ESTABLISHED"
    if ok:
        sides = [n for n, c in (("alice", ca), ("bob", cb)) if any("simultaneous open" in h for _, h in c.history)]
        path = "; ".join(f"{n}: " + " -> ".join(h.split(":")[0] for _, h in c.history)
                         for n, c in (("alice", ca), ("bob", cb)))
        if len(sides) == 2:
            how = "simultaneous open: both SYNs crossed, each side answered the other's SYN with SYN-ACK"
        elif sides:
            other = "bob" if sides[0] == "alice" else "alice"
            how = (f"{sides[0]}'s first SYN was dropped silently by a NAT, but it opened {sides[0]}'s own NAT: "
                   f"{other}'s SYN got in while {sides[0]} waited (simultaneous open on {sides[0]}'s side only)")
        else:
            how = "one SYN got through to a waiting peer and was answered with SYN-ACK"
        reason = f"{how} ({path})"
    else:
        reason = "; ".join(f"{n}: {c.error or 'still ' + c.state + ', no answer to its SYNs'}"
                           for n, c in (("alice", ca), ("bob", cb)))
    name = lambda x: x if isinstance(x, str) else getattr(x, "name", "custom")  # noqa: E731
    return TcpPunchResult(name(nat_a), name(nat_b), ok, ca.history, cb.history, reason, net.trace)
