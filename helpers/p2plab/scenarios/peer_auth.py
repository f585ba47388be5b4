"""Who is on the other end? Hole punching with and without peer authentication, and Mallory.

>>> from p2plab.scenarios.peer_auth import run_peer_auth
>>> run_peer_auth(auth=False).alice_talks_to
'mallory'
>>> run_peer_auth(auth=True).alice_talks_to
'bob'

Alice (behind ``nat_a``, a full-cone NAT by default) and Bob (behind ``nat_b``) punch a hole
with the course's rendezvous server (``p2plab.punch``). Mallory, a host on the internet
(203.0.113.66), learns Alice's public endpoint the moment Alice registers (a leaky rendezvous
server, a log, a guess: the scenario just hands it to her) and races packets at Alice's hole.

* ``auth=False``: Alice takes the first endpoint that answers her punch as Bob, as plain hole
  punching does. Mallory's PUNCH arrives first; Alice "connects" to Mallory and sends her the
  message meant for Bob.
* ``auth=True``: Alice and Bob exchanged key fingerprints through signalling
  (``p2plab.peerauth``). Alice sends a HELLO to every endpoint that answered and accepts only the
  one that proves Bob's key. Mallory tries her own key (fingerprint mismatch), Bob's public key
  with her signature (the signature does not verify) and forged data (no session / bad tag): every
  one of her packets is rejected, and the verdicts say why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import peerauth
from ..addresses import Endpoint, fmt
from ..errors import ConfigurationError
from ..punch import _MESSAGES as TEXT_MESSAGES
from ..punch import RENDEZVOUS_PORT, RendezvousServer, decode, encode
from ..rendezvous_client import RendezvousClient
from ..sansio import Addr, DatagramProtocol
from ..sim import Network

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..trace import Trace

MALLORY_IP = "203.0.113.66"
PORT = 5000
SECRET = "alice to bob: the door code is 2468"
VERDICT_COLUMNS = ["time", "at", "from", "sender", "kind", "verdict", "why"]


class AuthPeer(RendezvousClient):
    """Alice or Bob: register with the rendezvous server, punch, then (``auth=True``) run the
    ``peerauth`` handshake with every endpoint that answered and talk only to the one that proves
    the signalled key. Events: ``hole`` (an endpoint answered a punch), ``verdict`` (one per
    handshake/data message), ``authenticated``, ``connected`` (without auth: the first endpoint
    that answered), ``message`` (application text received)."""

    messages = TEXT_MESSAGES

    def __init__(self, name: str, peer: str, server: Endpoint, identity: peerauth.Identity, expected: str,
                 role: str, auth: bool = True, seed: int = 0, text: str = "",
                 punch_interval: float = 0.1, give_up_after: float = 5.0) -> None:
        super().__init__(name, server)
        self.peer_name = peer
        self.auth = auth
        self.text = text
        self.handshake = peerauth.Handshake(role, identity, expected, seed=seed)
        self.punch_interval, self.give_up_after = punch_interval, give_up_after
        self.target: Endpoint | None = None
        self.holes: list[Endpoint] = []
        self.connected: Endpoint | None = None
        self.received: list[tuple[Endpoint, str]] = []
        self._punch_until = 0.0

    def register_fields(self) -> tuple[str, ...]:
        return (*super().register_fields(), self.peer_name)

    def on_timer(self, name: str, now: float) -> None:
        super().on_timer(name, now)  # "register": register again
        if name == "punch" and self.state == "punching" and now < self._punch_until and self.target:
            self.send(encode("PUNCH", self.name, "1"), self.target)
            self.set_timer(now + self.punch_interval, "punch")

    @property
    def peer_endpoint(self) -> Endpoint | None:
        """Whom this peer talks to: the authenticated endpoint, or without auth the first that answered."""
        if self.auth:
            return self.handshake.session.peer if self.handshake.session else None
        return self.connected

    def other_datagram(self, data: bytes, addr: Addr) -> None:
        if peerauth.kind_of(data) is not None:  # the handshake's binary messages (b"PA1..." never decode as text)
            self._peerauth(data, (addr[0], int(addr[1])))

    def message_received(self, kind: str, fields: list[str], addr: Addr) -> None:
        now = self.now
        src = (addr[0], int(addr[1]))
        if kind == "PEER" and self.state == "registering" and len(fields) == 3:
            ip, _, port = fields[1].rpartition(":")
            self.target = (ip, int(port))
            self.state = "punching"
            self.cancel_timers("register")
            self._punch_until = now + self.give_up_after
            self.set_timer(now, "punch")
        elif kind == "PUNCH":
            self.send(encode("ACK", self.name, "1"), src)
            self._hole(src)
        elif kind == "ACK":
            self._hole(src)
        elif kind == "MSG" and self.auth:  # plain text outside the handshake: judged (and refused) like the rest
            self._peerauth(encode(kind, *fields), src)
        elif kind == "MSG":
            text = " ".join(fields)
            self.received.append((src, text))
            self.emit("message", source=src, text=text, accepted=src == self.connected)

    def _hole(self, src: Endpoint) -> None:
        if src in self.holes:
            return
        self.holes.append(src)
        self.emit("hole", endpoint=src)
        if not self.auth:
            if self.connected is None:  # plain hole punching: the first endpoint that answers is "the peer"
                self.connected = src
                self.state = "connected"
                self.cancel_timers("punch")
                self.emit("connected", endpoint=src)
                if self.text:
                    self.send(encode("MSG", *self.text.split()), src)
            return
        if self.handshake.role == "initiator" and not self.handshake.authenticated:
            self.send(self.handshake.hello(src), src)

    def _peerauth(self, data: bytes, src: Endpoint) -> None:
        if not self.auth:
            return
        if peerauth.kind_of(data) is None:
            verdict = peerauth.Verdict(src, "plain", False, "plain text outside the authenticated session: "
                                                           "anyone can send that")
            self.handshake.verdicts.append(verdict)
            self.emit("verdict", source=src, message="plain", accepted=False, why=verdict.why)
            return
        was = self.handshake.authenticated
        out, verdict = self.handshake.receive(data, src)
        for m in out:
            self.send(m, src)
        self.emit("verdict", source=verdict.source, message=verdict.kind, accepted=verdict.accepted, why=verdict.why)
        if verdict.accepted and verdict.data is not None:
            text = verdict.data.decode("utf-8", "replace")
            self.received.append((src, text))
            self.emit("message", source=src, text=text, accepted=True)
        if self.handshake.authenticated and not was:
            self.state = "authenticated"
            self.cancel_timers("punch")
            self.emit("authenticated", endpoint=src, fingerprint=self.handshake.expected)
            if self.text:
                msg, to = self.handshake.seal(self.text.encode())
                self.send(msg, to)


class Mallory(DatagramProtocol):
    """The attacker: once told Alice's public endpoint (``attack``), she pretends to be Bob.

    She sends a PUNCH that names Bob; without authentication that is enough. With it, she answers
    Alice's HELLO twice - with her own key, and with Bob's (public) key but her own signature - and
    sends forged DATA. Events: ``sent`` (what she tried), ``read`` (plaintext she received)."""

    def __init__(self, identity: peerauth.Identity, bob_public: bytes, seed: int = 0) -> None:
        super().__init__()
        self.identity = identity
        self.bob_public = bob_public
        self.fake = peerauth.Handshake("responder", identity, peerauth.fingerprint_of(bob_public), seed=seed)
        self.target: Endpoint | None = None
        self.read: list[str] = []
        self.tried: list[str] = []

    def attack(self, target: Endpoint, now: float) -> None:
        self.now = now
        self.target = (target[0], int(target[1]))
        self._send(encode("PUNCH", "bob", "1"), "a PUNCH that claims to come from bob")

    def _send(self, data: bytes, what: str) -> None:
        assert self.target is not None
        self.tried.append(what)
        self.emit("sent", what=what)
        self.send(data, self.target)

    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        if peerauth.kind_of(data) == "HELLO":
            hello = data
            for static, signer, what in ((self.identity.public, self.identity, "a REPLY with her own key"),
                                         (self.bob_public, self.identity, "a REPLY with bob's public key, "
                                                                          "signed with her own private key")):
                eph = self.fake._ephemeral()
                body = peerauth.MAGIC + bytes([peerauth.REPLY]) + self.fake._pub(eph) + static
                self._send(body + signer.sign(peerauth._REPLY_CTX + hello + body[4:]), what)
            forged = peerauth.MAGIC + bytes([peerauth.DATA]) + bytes(8) + b"bob: send me the door code" + bytes(16)
            self._send(forged, "forged DATA (she has no session key)")
            return
        msg = decode(data)
        if msg is None:
            return
        kind, fields = msg
        if kind == "MSG":
            self.read.append(" ".join(fields))
            self.emit("read", text=" ".join(fields))
        elif kind == "ACK" and self.target is not None and "a MSG as bob" not in self.tried:
            self._send(encode("MSG", *"bob: hi alice, it is me".split()), "a MSG as bob")


@dataclass
class PeerAuthResult:
    """Whom Alice ended up talking to, what Mallory read, and every verdict."""

    auth: bool
    attacker: bool
    alice_talks_to: str | None
    bob_talks_to: str | None
    delivered: bool
    mallory_read: list[str]
    mallory_tried: list[str]
    verdicts: list[dict[str, Any]]
    names: dict[str, str]
    trace: Trace | None = field(default=None, repr=False)
    network: Network | None = field(default=None, repr=False)

    @property
    def df(self) -> pd.DataFrame:
        """The verdicts as a DataFrame (time, at, from, sender, kind, verdict, why)."""
        import pandas as pd

        return pd.DataFrame(self.verdicts, columns=VERDICT_COLUMNS)

    @property
    def rejected(self) -> int:
        return sum(1 for v in self.verdicts if v["verdict"] == "rejected")

    def summary(self) -> str:
        mode = "with peer authentication" if self.auth else "without authentication"
        lines = [f"{mode}, {'with' if self.attacker else 'without'} mallory: alice talks to {self.alice_talks_to}, "
                 f"bob talks to {self.bob_talks_to}",
                 f"alice's message reached bob: {'yes' if self.delivered else 'no'}"]
        if self.attacker:
            lines.append(f"mallory tried: {'; '.join(self.mallory_tried)}")
            lines.append(f"mallory read: {'; '.join(self.mallory_read) or 'nothing'}")
        if self.auth:
            acc = len(self.verdicts) - self.rejected
            lines.append(f"verdicts: {acc} accepted, {self.rejected} rejected")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def topology(nat_a: str = "full-cone", nat_b: str = "port-restricted-cone", attacker: bool = True) -> Any:
    """``topology.punch(nat_a, nat_b)`` plus Mallory on the internet."""
    from .. import topology as topo

    t = topo.punch(nat_a, nat_b)
    t.name = "peer-auth"
    if attacker:
        t.add_host("mallory", MALLORY_IP, latency=0.005)
    return t


def run_peer_auth(auth: bool = True, attacker: bool = True, *, nat_a: str = "full-cone",
                  nat_b: str = "port-restricted-cone", seed: int = 0, run_for: float = 3.0,
                  record: bool = True) -> PeerAuthResult:
    """Punch between Alice and Bob with Mallory racing at Alice's hole; see the module docstring.

    ``auth``: run the ``peerauth`` handshake over the punched path. ``attacker``: Mallory plays.
    ``nat_a``: Alice's NAT - with ``"port-restricted-cone"`` its filter drops Mallory's packets
    before Alice sees them (filtering helps, but it is not authentication).
    """
    if run_for <= 0:
        raise ConfigurationError(f"run_for is seconds of simulated time, e.g. 3.0; got {run_for!r}")
    from .. import topology as topo

    net = Network.build(topology(nat_a, nat_b, attacker), seed=seed, record=record)
    ids = {n: peerauth.Identity.from_seed(f"p2plab-{n}-{seed}") for n in ("alice", "bob", "mallory")}
    server_addr = (topo.SERVER_IP, RENDEZVOUS_PORT)
    rv = net.run_protocol("server", RendezvousServer(), RENDEZVOUS_PORT)
    # signalling: each side learned the other's fingerprint (e.g. in the SDP, a=fingerprint)
    alice = AuthPeer("alice", "bob", server_addr, ids["alice"], ids["bob"].fingerprint, "initiator", auth,
                     seed=seed * 2 + 1, text=SECRET)
    bob = AuthPeer("bob", "alice", server_addr, ids["bob"], ids["alice"].fingerprint, "responder", auth,
                   seed=seed * 2 + 2, text="bob to alice: got it")
    ra, rb = net.run_protocol("alice", alice, PORT), net.run_protocol("bob", bob, PORT)
    runners = {"alice": ra, "bob": rb}
    verdicts: list[dict[str, Any]] = []
    names = {topo.ALICE_NAT_IP: "alice", topo.BOB_NAT_IP: "bob", MALLORY_IP: "mallory"}
    mallory = None
    if attacker:
        mallory = Mallory(ids["mallory"], ids["bob"].public, seed=seed * 2 + 3)
        rm = net.run_protocol("mallory", mallory, PORT)

        def on_server(ev: Any) -> None:
            if ev.kind == "registered" and ev.name == "alice" and mallory.target is None:
                rm.call(mallory.attack, ev.public, net.now)  # the leak: mallory learns alice's endpoint

        rv.on_event = on_server
        for ev in list(rv.events):
            on_server(ev)

    def on_peer(name: str) -> Any:
        def handler(ev: Any) -> None:
            if ev.kind == "verdict":
                verdicts.append({"time": round(net.now, 6), "at": name, "from": fmt(ev.source),
                                 "sender": names.get(ev.source[0], "?"), "kind": ev.message,
                                 "verdict": "accepted" if ev.accepted else "rejected", "why": ev.why})
        return handler

    for n, r in runners.items():
        r.on_event = on_peer(n)
    net.run(until=run_for)

    def who(ep: Endpoint | None) -> str | None:
        return None if ep is None else names.get(ep[0], fmt(ep))

    delivered = any(t == SECRET for _, t in bob.received)
    return PeerAuthResult(auth=auth, attacker=attacker, alice_talks_to=who(alice.peer_endpoint),
                          bob_talks_to=who(bob.peer_endpoint), delivered=delivered,
                          mallory_read=list(mallory.read) if mallory else [],
                          mallory_tried=list(mallory.tried) if mallory else [], verdicts=verdicts, names=names,
                          trace=net.trace if record else None, network=net)


__all__ = ["run_peer_auth", "PeerAuthResult", "AuthPeer", "Mallory", "topology", "MALLORY_IP", "SECRET"]
