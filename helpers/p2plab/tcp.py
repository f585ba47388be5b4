"""A small TCP for the simulator, and the two programs of a TCP hole punch that run on it.

Only what a hole punch needs is modelled (RFC 9293 section 3.5): SYN, SYN-ACK, ACK, the
*simultaneous open* in which both sides send SYN and each answers the other's SYN with SYN-ACK,
RST, and short data segments (so the rendezvous server can tell each peer where the other is).
There is no window and no retransmission of data; a SYN is retransmitted after 1 s, 2 s, 4 s ...
like a real stack's ``connect()``.

Sockets share a port only when every one of them asks for it (``reuse=True``), as ``SO_REUSEADDR``
and ``SO_REUSEPORT`` do on a real system; a connection to a 4-tuple that is already taken fails
like ``EADDRNOTAVAIL``.

The programs:

* ``TcpRendezvous`` - the server: peers connect to it, it notes the public endpoint each one came
  from and tells each the other's (lines ``REGISTER alice bob`` and ``PEER bob 198.51.100.20:5000``).
* ``TcpPunchPeer`` - a peer. With ``listen=True`` it does the standard TCP hole punch of Ford,
  Srisuresh and Kegel (2005) and RFC 5128: one local port both *listens* and *connects* (to the
  server, then to the other peer's public endpoint), so a SYN from the peer gets in either through
  its own ``connect()`` socket (simultaneous open) or through its listening socket. With
  ``listen=False`` it only ``connect()``s.

This module knows nothing about the simulated network: it needs a host object with ``ip``,
``send(datagram)``, ``tcp_handler`` and ``net.now``/``net.after``/``net.rng``.
``p2plab.scenarios.tcp.run_tcp_punch`` puts the programs on ``p2plab.sim`` hosts; the real lab
(``p2plab.netns.tcppunch``) does the same with the kernel's TCP and the same messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .addresses import Endpoint, fmt
from .errors import ConfigurationError
from .packet import ACK, PSH, RST, SYN, TCP, Datagram

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .trace import Trace

RENDEZVOUS_PORT = 7000
PEER_PORT = 5000


class TcpStack:
    """The TCP part of one host: connecting sockets, listeners and the connections they accept."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.conns: dict[tuple[int, Endpoint], TcpConnection] = {}
        self.listeners: dict[int, Callable[[TcpConnection], None]] = {}
        self._reuse: dict[int, bool] = {}  # port -> every socket bound to it asked for reuse
        host.tcp_handler = self.receive

    def _bind(self, port: int, reuse: bool, what: str) -> None:
        busy = port in self.listeners or any(
            p == port and c.state != "CLOSED" and not c.passive for (p, _), c in self.conns.items())
        if busy and not (reuse and self._reuse.get(port, False)):
            raise ConfigurationError(
                f"{self.host.name}: port {port} is already in use (EADDRINUSE), so a {what} cannot bind it. "
                "Two TCP sockets share a port only when both set SO_REUSEADDR/SO_REUSEPORT before bind(): "
                "pass reuse=True to every listen() and connect() on that port")
        self._reuse[port] = reuse if not busy else (reuse and self._reuse.get(port, False))

    def connect(self, local_port: int, remote: Endpoint, retries: int = 3, reuse: bool = False) -> TcpConnection:
        """Start an active open (send SYN) from ``local_port`` to ``remote``.

        If that 4-tuple is already a live connection (say the listener accepted the same peer a
        moment ago) the new connection is CLOSED at once with an ``EADDRNOTAVAIL`` error, as in Linux.
        """
        conn = TcpConnection(self, local_port, remote)
        old = self.conns.get((local_port, remote))
        if old is not None and old.state != "CLOSED":
            conn.error = (f"EADDRNOTAVAIL: {fmt((self.host.ip, local_port))} <-> {fmt(remote)} is already "
                          f"a connection ({old.state}{', accepted by the listener' if old.passive else ''})")
            conn._set("CLOSED", conn.error)
            return conn
        self._bind(local_port, reuse, "connect()ing socket")
        self.conns[(local_port, remote)] = conn
        conn.send_syn(retries)
        return conn

    def listen(self, port: int, on_accept: Callable[[TcpConnection], None] | None = None,
               reuse: bool = False) -> None:
        """Accept connections on ``port``; ``on_accept(conn)`` runs when one is ESTABLISHED."""
        self._bind(port, reuse, "listening socket")
        self.listeners[port] = on_accept or (lambda c: None)

    def send(self, conn: TcpConnection, flags: int, seq: int, ack: int = 0, payload: bytes = b"") -> None:
        self.host.send(Datagram(self.host.ip, conn.local_port, conn.remote[0], conn.remote[1], payload, TCP,
                                flags=flags, seq=seq, ack=ack))

    def receive(self, pkt: Datagram) -> None:
        """Demultiplex an arriving segment: a connection's exact 4-tuple first, then a listener."""
        remote = (pkt.src, pkt.sport)
        conn = self.conns.get((pkt.dport, remote))
        if conn is not None and conn.state != "CLOSED":
            conn.segment(pkt)
            return
        if pkt.flags & SYN and not pkt.flags & ACK and pkt.dport in self.listeners:
            conn = TcpConnection(self, pkt.dport, remote, passive=True)
            self.conns[(pkt.dport, remote)] = conn
            conn.irs = pkt.seq
            conn.on_established = self.listeners[pkt.dport]
            conn._set("SYN-RECEIVED", f"the listening socket got a SYN from {fmt(remote)}, sent SYN-ACK")
            self.send(conn, SYN | ACK, conn.iss, pkt.seq + 1)
            return
        if not pkt.flags & RST:  # no socket: the host answers with RST
            self.host.send(Datagram(self.host.ip, pkt.dport, pkt.src, pkt.sport, b"", TCP,
                                    flags=RST | ACK, ack=pkt.seq + 1))


class TcpConnection:
    """One TCP connection: CLOSED, SYN-SENT, SYN-RECEIVED, ESTABLISHED, and the lines it received."""

    def __init__(self, stack: TcpStack, local_port: int, remote: Endpoint, passive: bool = False) -> None:
        self.stack = stack
        self.local_port = local_port
        self.remote = remote
        self.passive = passive  # made by a listening socket
        self.state = "CLOSED"
        self.iss = stack.host.net.rng.randrange(2**32)
        self.irs = 0
        self.snd_nxt = self.iss + 1
        self.history: list[tuple[float, str]] = []
        self.on_established: Callable[[TcpConnection], None] | None = None
        self.on_data: Callable[[TcpConnection, bytes], None] | None = None
        self.on_closed: Callable[[TcpConnection], None] | None = None
        self.error: str | None = None
        self.syns_sent = 0

    def _set(self, state: str, why: str) -> None:
        self.state = state
        self.history.append((round(self.stack.host.net.now, 9), f"{state}: {why}"))
        if state == "ESTABLISHED" and self.on_established:
            self.on_established(self)
        if state == "CLOSED" and self.on_closed:
            self.on_closed(self)

    def send_syn(self, retries: int) -> None:
        self.syns_sent += 1
        self.stack.send(self, SYN, self.iss)
        self._retries = retries
        self._rto = 1.0
        self.stack.host.net.after(self._rto, self._retransmit)
        self._set("SYN-SENT", f"SYN to {fmt(self.remote)}")

    def _retransmit(self) -> None:
        if self.state != "SYN-SENT":
            return
        if self._retries <= 0:
            self.error = "timed out: no answer to SYN"
            self._set("CLOSED", self.error)
            return
        self._retries -= 1
        self._rto *= 2
        self.syns_sent += 1
        self.stack.send(self, SYN, self.iss)
        self.stack.host.net.after(self._rto, self._retransmit)

    def send_data(self, data: bytes) -> None:
        """Send one data segment (PSH/ACK) on an ESTABLISHED connection."""
        if self.state != "ESTABLISHED":
            raise ConfigurationError(f"cannot send on a connection in state {self.state}; wait for ESTABLISHED")
        self.stack.send(self, PSH | ACK, self.snd_nxt, self.irs + 1, data)
        self.snd_nxt += len(data)

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
            # simultaneous open: both sent SYN; answer with SYN-ACK (RFC 9293 section 3.5, figure 7)
            self.irs = pkt.seq
            self.stack.send(self, SYN | ACK, self.iss, pkt.seq + 1)
            self._set("SYN-RECEIVED", "got a SYN while in SYN-SENT: simultaneous open, sent SYN-ACK")
        elif self.state == "SYN-RECEIVED" and f & ACK:
            if f & SYN:
                self.stack.send(self, ACK, self.iss + 1, pkt.seq + 1)
            self._set("ESTABLISHED", "got " + ("SYN-ACK" if f & SYN else "ACK"))
            if pkt.payload:
                self._data(pkt)
        elif self.state == "ESTABLISHED" and pkt.payload:
            self._data(pkt)

    def _data(self, pkt: Datagram) -> None:
        self.stack.send(self, ACK, self.snd_nxt, pkt.seq + len(pkt.payload))
        if self.on_data:
            self.on_data(self, pkt.payload)


# -- the rendezvous messages (one text line each; the real lab sends the same bytes) ------------

def encode(kind: str, *fields: str) -> bytes:
    """``encode("PEER", "bob", "198.51.100.20:5000")`` -> ``b"PEER bob 198.51.100.20:5000\\n"``."""
    return (" ".join((kind, *fields)) + "\n").encode()


def decode(line: bytes) -> tuple[str, list[str]]:
    """The kind and fields of one message line (raises ConfigurationError on garbage)."""
    parts = line.decode(errors="replace").split()
    if not parts or parts[0] not in ("REGISTER", "PEER", "HELLO"):
        raise ConfigurationError(f"not a TCP rendezvous message: {line[:60]!r}; expected REGISTER, PEER or HELLO")
    return parts[0], parts[1:]


def parse_endpoint(text: str) -> Endpoint:
    ip, _, port = text.rpartition(":")
    if not ip or not port.isdigit():
        raise ConfigurationError(f"not an ip:port endpoint: {text!r}; write it like 203.0.113.10:5000")
    return ip, int(port)


class TcpRendezvous:
    """The rendezvous server: notes where each peer's connection came from and introduces the pair."""

    def __init__(self, stack: TcpStack, port: int = RENDEZVOUS_PORT) -> None:
        self.stack = stack
        self.seen: dict[str, Endpoint] = {}  # name -> public endpoint its connection came from
        self.wants: dict[str, str] = {}
        self._conns: dict[str, TcpConnection] = {}
        stack.listen(port, self._accepted)

    def _accepted(self, conn: TcpConnection) -> None:
        conn.on_data = self._line

    def _line(self, conn: TcpConnection, data: bytes) -> None:
        kind, fields = decode(data)
        if kind != "REGISTER" or len(fields) != 2:
            return
        name, peer = fields
        self.seen[name], self.wants[name], self._conns[name] = conn.remote, peer, conn
        if peer in self.seen and self.wants.get(peer) == name:
            self._conns[name].send_data(encode("PEER", peer, fmt(self.seen[peer])))
            self._conns[peer].send_data(encode("PEER", name, fmt(self.seen[name])))


class TcpPunchPeer:
    """One peer of a TCP hole punch; ``events`` says what happened, ``direct`` the connection it got.

    With ``listen=True`` (the standard method) the peer listens on ``port`` and connects from it to
    the server and then to the other peer; ``listen=False`` only connects. ``delay`` waits that many
    seconds after the server's introduction before connecting to the peer.
    """

    def __init__(self, stack: TcpStack, name: str, peer: str, server: Endpoint, *, port: int = PEER_PORT,
                 listen: bool = True, delay: float = 0.0, retries: int = 3) -> None:
        self.stack, self.name, self.peer, self.server, self.port = stack, name, peer, server, port
        self.listen, self.delay, self.retries = listen, delay, retries
        self.events: list[tuple[float, str]] = []
        self.peer_endpoint: Endpoint | None = None
        self.outgoing: TcpConnection | None = None  # the connect() toward the peer
        self.accepted: list[TcpConnection] = []  # what the listening socket accepted
        self.direct: TcpConnection | None = None
        self.how: str | None = None  # "connect" or "accept"
        self.punch_started_at: float | None = None
        self.connected_at: float | None = None

    def _note(self, text: str) -> None:
        self.events.append((round(self.stack.host.net.now, 9), text))

    def start(self) -> None:
        if self.listen:
            self.stack.listen(self.port, self._accept, reuse=True)
            self._note(f"listening on port {self.port} (SO_REUSEADDR/SO_REUSEPORT)")
        srv = self.stack.connect(self.port, self.server, reuse=True)
        srv.on_established = lambda c: c.send_data(encode("REGISTER", self.name, self.peer))
        srv.on_data = self._from_server

    def _from_server(self, conn: TcpConnection, data: bytes) -> None:
        kind, fields = decode(data)
        if kind == "PEER" and len(fields) == 2 and fields[0] == self.peer and self.peer_endpoint is None:
            self.peer_endpoint = parse_endpoint(fields[1])
            self._note(f"the server says {self.peer} is at {fields[1]}")
            self.stack.host.net.after(self.delay, self._punch)

    def _punch(self) -> None:
        if self.direct is not None:
            self._note(f"already connected to {self.peer} (the listener accepted it): no connect() needed")
            return
        self.punch_started_at = self.stack.host.net.now
        self.outgoing = self.stack.connect(self.port, self.peer_endpoint, self.retries, reuse=True)
        self.outgoing.on_established = lambda c: self._got(c, "connect")
        self.outgoing.on_closed = lambda c: self._note(f"connect() to {fmt(c.remote)} failed: {c.error}")
        if self.outgoing.state == "CLOSED":
            self._note(f"connect() to {fmt(self.peer_endpoint)} failed: {self.outgoing.error}")
        else:
            self._note(f"connect() from port {self.port} to {fmt(self.peer_endpoint)}: SYN sent")

    def _accept(self, conn: TcpConnection) -> None:
        self.accepted.append(conn)
        if self.peer_endpoint is not None and conn.remote[0] == self.peer_endpoint[0]:
            self._got(conn, "accept")
        else:
            self._note(f"the listener accepted {fmt(conn.remote)}, which is not {self.peer}")

    def _got(self, conn: TcpConnection, how: str) -> None:
        if self.direct is not None:
            return
        self.direct, self.how, self.connected_at = conn, how, self.stack.host.net.now
        if how == "accept":
            self._note(f"ESTABLISHED: the listening socket accepted {self.peer}'s connection from {fmt(conn.remote)}")
        elif any("simultaneous open" in h for _, h in conn.history):
            self._note(f"ESTABLISHED: connect() to {fmt(conn.remote)} completed by simultaneous open")
        else:
            self._note(f"ESTABLISHED: connect() to {fmt(conn.remote)} got a SYN-ACK")

    @property
    def state(self) -> str:
        """The state of the peer-to-peer attempt in one word."""
        if self.direct is not None:
            return "ESTABLISHED"
        if self.peer_endpoint is None:
            return "waiting for the server"
        return self.outgoing.state if self.outgoing is not None else "waiting to connect"


@dataclass
class TcpPunchResult:
    """Outcome of a TCP hole punch (simulated, or in the real lab with ``world="netns"``).

    ``alice``/``bob`` are each peer's events ``(seconds, text)``; ``how`` says per peer whether its
    own ``connect()`` or its listening socket got the connection; ``packets`` counts the TCP
    segments the peers sent each other; ``time`` runs from the first SYN toward a peer until both
    were connected. In the simulator ``connections`` holds each peer's connection (the direct one,
    else its ``connect()`` attempt); in the real lab ``details`` holds what the server saw
    (``server_saw``), each peer's own report (``peers``) and the NATs' conntrack tables.
    """

    nat_a: str
    nat_b: str
    direct: bool
    alice: list[tuple[float, str]]
    bob: list[tuple[float, str]]
    reason: str
    trace: Trace | None = field(default=None, repr=False)
    how: dict[str, str | None] = field(default_factory=dict)
    packets: int | None = None
    time: float | None = None
    method: str = "listen+connect"
    world: str = "sim"
    connections: dict[str, Any] = field(default_factory=dict, repr=False)  # sim: name -> its TcpConnection
    details: dict[str, Any] = field(default_factory=dict, repr=False)  # netns: server_saw, peers, conntrack

    def as_dict(self) -> dict[str, Any]:
        """The JSON row of ``python -m p2plab punch --transport tcp --format json``."""
        return {"nat_a": self.nat_a, "nat_b": self.nat_b, "direct": self.direct, "packets": self.packets,
                "time": None if self.time is None else round(self.time, 6), "reason": self.reason,
                "world": self.world, "transport": "tcp", "method": self.method, "how": dict(self.how)}

    def events(self) -> pd.DataFrame:
        """Both peers' events in time order: time, peer, event."""
        import pandas as pd

        rows = sorted([(t, "alice", e) for t, e in self.alice] + [(t, "bob", e) for t, e in self.bob],
                      key=lambda row: row[0])
        return pd.DataFrame(rows, columns=["time", "peer", "event"])

    def __str__(self) -> str:
        head = "ESTABLISHED" if self.direct else "FAILED"
        return f"{self.nat_a} x {self.nat_b} ({self.method}): {head} - {self.reason}"


def __getattr__(name: str) -> Any:
    # ``from p2plab.tcp import run_tcp_punch`` keeps working; the runner lives in p2plab.scenarios.tcp
    # so that importing this module does not import the simulated world.
    if name == "run_tcp_punch":
        from .scenarios.tcp import run_tcp_punch

        return run_tcp_punch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
