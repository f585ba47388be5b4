"""Connection reversal, sans-I/O: when only one peer is behind a NAT, the NATed one calls.

RFC 5128 section 3.2 ("Connection Reversal") describes it: Bob has a public address, Alice sits
behind a NAT. Bob cannot reach Alice: her NAT drops his unsolicited packets. But Alice can reach
Bob. So the rendezvous server, which both keep in touch with, passes Bob's request on to Alice
("Bob wants to talk to you, he is at 198.51.100.9:6000"), and Alice opens the connection toward
Bob. Her own packet creates the NAT mapping that lets Bob's answers in. It works behind any NAT
(even a symmetric one), and never when both peers are behind NATs: then somebody has to punch.

Messages (text lines starting ``P2P1 REV``, readable in a hexdump):

* ``REGISTER name private-ip:port`` peer -> server; the server answers ``REGISTERED name public
  natted|public``: it compares the address it saw with the one the peer reported.
* ``CONNECT from to mode`` the caller asks to reach ``to`` (``mode`` is ``reversal`` or ``direct``);
  the server answers the caller ``DIAL to ip:port`` (call that endpoint yourself), ``WAIT to``
  (stay put, ``to`` will call you) or ``REFUSE to reason``, and sends ``to`` a ``REVERSE from ip:port``.
* ``HELLO name`` / ``HELLO-ACK name`` between the peers.

``ReversalServer`` and ``ReversalPeer`` never touch a socket; ``p2plab.scenarios.reversal`` runs them
in the simulator and ``p2plab.netns.reversal`` in the real Linux lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .addresses import Endpoint, fmt
from .errors import ConfigurationError
from .rendezvous_client import RendezvousClient
from .sansio import Addr, DatagramProtocol
from .textmsg import TextMessages, parse_endpoint

MAGIC = b"P2P1 REV "
SERVER_PORT = 7000
MODES = ("reversal", "direct")


_MESSAGES = TextMessages(MAGIC)
encode = _MESSAGES.encode  # encode("REGISTER", "alice", ...) -> bytes
decode = _MESSAGES.decode  # bytes -> (kind, fields), or None
_ep = parse_endpoint


def decide(caller_natted: bool, callee_natted: bool, mode: str = "reversal") -> str:
    """What the rendezvous server tells a caller: ``dial``, ``reverse`` or ``refuse``.

    >>> decide(caller_natted=False, callee_natted=True)
    'reverse'
    >>> decide(caller_natted=True, callee_natted=False)
    'dial'
    """
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "direct" or not callee_natted:
        return "dial"  # a public callee can simply be called (or the caller insists on trying)
    if not caller_natted:
        return "reverse"
    return "refuse"


class ReversalServer(DatagramProtocol):
    """The rendezvous: learns who is behind a NAT, and turns a call to a NATed peer around."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: dict[str, tuple[Endpoint, bool]] = {}  # name -> (seen endpoint, behind a NAT?)

    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        msg = decode(data)
        if msg is None:
            return
        kind, fields = msg
        seen = (addr[0], int(addr[1]))
        if kind == "REGISTER" and len(fields) == 2:
            name, private = fields[0], _ep(fields[1])
            natted = private != seen
            self.peers[name] = (seen, natted)
            self.send(encode("REGISTERED", name, fmt(seen), "natted" if natted else "public"), seen)
            self.emit("registered", name=name, seen=seen, private=private, natted=natted)
        elif kind == "CONNECT" and len(fields) == 3:
            caller, callee, mode = fields
            if caller not in self.peers or callee not in self.peers:
                self.send(encode("UNKNOWN", callee), seen)
                return
            (c_ep, c_nat), (t_ep, t_nat) = self.peers[caller], self.peers[callee]
            verdict = decide(c_nat, t_nat, mode if mode in MODES else "reversal")
            if verdict == "dial":
                self.send(encode("DIAL", callee, fmt(t_ep)), c_ep)
            elif verdict == "reverse":
                self.send(encode("WAIT", callee), c_ep)
                self.send(encode("REVERSE", caller, fmt(c_ep)), t_ep)
            else:
                self.send(encode("REFUSE", callee, "both-behind-nats"), c_ep)
            self.emit("decided", caller=caller, callee=callee, verdict=verdict, caller_natted=c_nat,
                      callee_natted=t_nat)


@dataclass
class ReversalConfig:
    """Timing (seconds)."""

    retry: float = 0.2  # REGISTER / CONNECT / HELLO resend interval
    give_up_after: float = 2.0  # after the server's answer, wait this long for the peer


class ReversalPeer(RendezvousClient):
    """A peer. With ``call=NAME`` it asks the server to connect it to NAME (the caller); without, it
    registers and answers what the server and other peers ask. Events: ``registered``,
    ``verdict`` (what the server said), ``connected`` (with ``peer`` endpoint and ``how``:
    ``dialled`` or ``accepted``), ``failed`` (with ``reason``)."""

    messages = _MESSAGES

    def __init__(self, name: str, server: Addr, call: str | None = None, mode: str = "reversal",
                 config: ReversalConfig | None = None) -> None:
        if mode not in MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        super().__init__(name, (server[0], int(server[1])))
        self.call = call
        self.mode = mode
        self.config = config or ReversalConfig()
        self.public: Endpoint | None = None
        self.natted: bool | None = None
        self.target: Endpoint | None = None  # whom we dial
        self.connected: Endpoint | None = None
        self.hellos_sent = 0

    def register_retry(self) -> float:
        return self.config.retry

    def _connect(self) -> None:
        self.send(encode("CONNECT", self.name, self.call or "", self.mode), self.server)
        self.set_timer(self.now + self.config.retry, "connect")

    def _dial(self, target: Endpoint) -> None:
        self.state = "dialling"
        self.target = target
        self._hello()
        self.set_timer(self.now + self.config.give_up_after, "give-up")

    def _hello(self) -> None:
        assert self.target is not None
        self.send(encode("HELLO", self.name), self.target)
        self.hellos_sent += 1
        self.set_timer(self.now + self.config.retry, "hello")

    def _done(self, peer: Endpoint, how: str) -> None:
        if self.connected is not None:
            return
        self.connected = peer
        self.state = "connected"
        self.cancel_timers()
        self.emit("connected", peer=peer, how=how, hellos=self.hellos_sent)

    def _fail(self, reason: str) -> None:
        if self.state in ("connected", "failed"):
            return
        self.state = "failed"
        self.cancel_timers()
        self.emit("failed", reason=reason, hellos=self.hellos_sent)

    def message_received(self, kind: str, fields: list[str], addr: Addr) -> None:
        src = (addr[0], int(addr[1]))
        from_server = src[0] == self.server[0]
        if kind == "REGISTERED" and from_server and self.state == "registering":
            self.cancel_timers("register")
            self.public, self.natted = _ep(fields[1]), fields[2] == "natted"
            self.state = "registered"
            self.emit("registered", public=self.public, natted=self.natted)
            if self.call:
                self.state = "asking"
                self._connect()
        elif kind == "UNKNOWN" and from_server and self.state == "asking":
            pass  # the callee has not registered yet: the connect timer asks again
        elif kind in ("DIAL", "WAIT", "REFUSE") and from_server and self.state == "asking":
            self.cancel_timers("connect")
            self.emit("verdict", verdict=kind.lower(), callee=fields[0])
            if kind == "DIAL":
                self._dial(_ep(fields[1]))
            elif kind == "WAIT":
                self.state = "waiting"
                self.set_timer(self.now + self.config.give_up_after, "give-up")
            else:
                self._fail(f"the server refused: {self.call} and {self.name} are both behind NATs, so neither "
                           "can accept the other's first packet; connection reversal needs one public side "
                           "(punch holes instead, RFC 5128 section 3.3)")
        elif kind == "REVERSE" and from_server and self.state in ("registered", "waiting"):
            self.emit("reverse", caller=fields[0], at=_ep(fields[1]))
            self._dial(_ep(fields[1]))
        elif kind == "HELLO":
            self.send(encode("HELLO-ACK", self.name), src)
            self._done(src, "accepted")
        elif kind == "HELLO-ACK" and self.state == "dialling":
            self._done(src, "dialled")

    def on_timer(self, name: str, now: float) -> None:
        super().on_timer(name, now)  # "register": register again
        if name == "connect" and self.state == "asking":
            self._connect()
        elif name == "hello" and self.state == "dialling":
            self._hello()
        elif name == "give-up":
            if self.state == "dialling":
                self._fail(f"no answer from {fmt(self.target)} after {self.hellos_sent} HELLOs in "
                           f"{self.config.give_up_after:g} s")
            elif self.state == "waiting":
                self._fail(f"{self.call} never called back within {self.config.give_up_after:g} s")


def make_peer(name: str, server: list | tuple, call: str | None = None, mode: str = "reversal",
              give_up_after: float = 2.0) -> ReversalPeer:
    """A ``ReversalPeer`` from JSON-friendly arguments (the real lab's runner builds it so)."""
    return ReversalPeer(name, (server[0], int(server[1])), call=call, mode=mode,
                        config=ReversalConfig(give_up_after=give_up_after))
