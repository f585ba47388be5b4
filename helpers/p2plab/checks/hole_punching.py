"""Lab 04 - hole punching as a sans-I/O protocol.

The learner completes ``Puncher(name, peer, server, interval=0.1, give_up_after=5.0)``, a
``p2plab.sansio.DatagramProtocol`` that registers with the course's rendezvous server
(``p2plab.punch.RendezvousServer``), learns the peer's endpoints (``PEER``), punches them and
reports ``connected`` (``endpoint=``) or ``failed`` (``reason=``). Messages are p2plab.punch's
``P2P1 KIND ...`` lines (``punch.encode`` / ``punch.decode``).

``check_puncher(Puncher)`` first drives one Puncher by hand (no network: feed datagrams, fire
timers, read the outbox), then runs two of them in the simulator across cone NATs (must connect)
and with a symmetric NAT (must give up cleanly).
"""

from __future__ import annotations

from typing import Any

from .. import punch, sim, topology
from ..addresses import fmt
from .common import check, fail

LAB = "hole_punching"
SERVER = (topology.SERVER_IP, punch.RENDEZVOUS_PORT)
ME = ("192.168.1.10", 5000)
PEER_PUBLIC, PEER_PRIVATE = ("198.51.100.20", 5000), ("192.168.0.25", 5000)


class Driver:
    """Drives one sans-I/O protocol by hand: a clock, the outbox and the events, no sockets."""

    def __init__(self, proto: Any, local: tuple[str, int] = ME) -> None:
        self.p = proto
        self.now = 0.0
        self.sent: list[tuple[float, bytes, tuple]] = []
        self.events: list[Any] = []
        proto.start(0.0, local)
        self._collect()

    def _collect(self) -> None:
        for item in self.p.datagrams_to_send():
            self.sent.append((self.now, bytes(item[0]), (item[1][0], int(item[1][1]))))
        self.events.extend(self.p.events())

    def feed(self, data: bytes, addr: tuple, at: float) -> None:
        self.advance(at)
        self.now = at
        self.p.datagram_received(data, addr, at)
        self._collect()

    def advance(self, until: float) -> None:
        """Fire every timer due up to ``until``."""
        for _ in range(100000):
            t = self.p.next_timer()
            if t is None or t > until + 1e-12:
                break
            self.now = max(self.now, t)
            self.p.handle_timer(self.now)
            self._collect()
        self.now = max(self.now, until)

    def kinds(self, since: float = -1.0) -> list[tuple[str, tuple]]:
        out = []
        for t, data, addr in self.sent:
            msg = punch.decode(data)
            if t >= since and msg is not None:
                out.append((msg[0], addr))
        return out

    def event(self, kind: str) -> Any:
        return next((e for e in self.events if e.kind == kind), None)


def _peer_msg() -> bytes:
    return punch.encode("PEER", "bob", fmt(PEER_PUBLIC), fmt(PEER_PRIVATE))


def _new(Puncher: Any) -> Driver:
    return Driver(Puncher("alice", "bob", SERVER, interval=0.1, give_up_after=2.0))


def _unit_tests(Puncher: Any) -> None:
    d = _new(Puncher)
    if ("REGISTER", SERVER) not in d.kinds():
        fail("the Puncher did not send REGISTER to the server when it started: keep the given start() method.")
    d.feed(_peer_msg(), SERVER, 0.05)
    d.advance(0.06)
    punched = {addr for k, addr in d.kinds(0.05) if k == "PUNCH"}
    if not punched:
        fail("after the server's PEER message (the peer's public and private endpoints) your Puncher sent no "
             "PUNCH: that message is the starting signal - punch the peer's endpoints right away.")
    if PEER_PUBLIC not in punched:
        fail(f"your punches went to {', '.join(fmt(a) for a in punched)}, not to the peer's public endpoint "
             f"{fmt(PEER_PUBLIC)}: that is the mapping the server saw, the one most likely to work.")
    if PEER_PRIVATE not in punched:
        fail(f"you punch {fmt(PEER_PUBLIC)} but not the private endpoint {fmt(PEER_PRIVATE)}: when both peers "
             "sit behind the same NAT, only the private one works - punch every candidate.")
    d.advance(0.55)
    rounds = sum(1 for k, a in d.kinds(0.05) if k == "PUNCH" and a == PEER_PUBLIC)
    if rounds < 4:
        fail(f"with no answer for half a second your Puncher sent only {rounds} punch(es) to the peer: the first "
             "punches are usually dropped (the peer's NAT has no hole for you yet, or they get lost), so keep "
             "punching every `interval` seconds with a timer until you hear from the peer.")
    if rounds > 8:
        fail(f"{rounds} punches to one endpoint in half a second with interval=0.1: punch once per interval "
             "(set one timer at a time), not in a burst.")
    # a PUNCH arrives: answer ACK, connected
    d.feed(punch.encode("PUNCH", "bob", "1"), PEER_PUBLIC, 0.6)
    acks = [a for k, a in d.kinds(0.6) if k == "ACK"]
    if not acks:
        fail("a PUNCH from the peer arrived and your Puncher did not answer: reply with ACK, so the peer knows "
             "its punch got through (it may not have received yours).")
    if acks[0] != PEER_PUBLIC:
        fail(f"you sent the ACK to {fmt(acks[0])}, but the PUNCH came from {fmt(PEER_PUBLIC)}: answer the "
             "address the packet came from - that is the path that works.")
    ev = d.event("connected")
    if ev is None:
        fail("a PUNCH from the peer arrived, but your Puncher emitted no 'connected' event: "
             "self.emit('connected', endpoint=addr) tells the application the direct path is there.")
    if tuple(ev.data.get("endpoint", ())) != PEER_PUBLIC:
        fail(f"your 'connected' event says endpoint={ev.data.get('endpoint')!r}; give the endpoint the peer's "
             f"packet came from, {fmt(PEER_PUBLIC)}.")
    d.advance(2.0)
    late = [t for t, data, _ in d.sent if t > 0.6 and (punch.decode(data) or ("",))[0] == "PUNCH"]
    if late:
        fail(f"your Puncher kept punching after it was connected ({len(late)} more PUNCH): stop the punch "
             "timer once you hear from the peer (keepalives are fine, punches are noise).")
    # an ACK also means connected; and the endpoint is where it came from (symmetric peers)
    d = _new(Puncher)
    d.feed(_peer_msg(), SERVER, 0.05)
    other = (PEER_PUBLIC[0], 47123)
    d.feed(punch.encode("ACK", "bob", "1"), other, 0.2)
    ev = d.event("connected")
    if ev is None:
        fail("an ACK from the peer arrived but your Puncher did not report 'connected': an ACK means the peer "
             "got your punch, so the path works both ways.")
    if tuple(ev.data.get("endpoint", ())) != other:
        fail(f"the peer's ACK came from {fmt(other)} (not the port the server announced: its NAT gave it a new "
             f"port toward you) but you reported {ev.data.get('endpoint')!r}: the working endpoint is the "
             "address the packet came from.")
    # no answer at all: give up
    d = _new(Puncher)
    d.feed(_peer_msg(), SERVER, 0.05)
    d.advance(3.0)
    ev = d.event("failed")
    if ev is None:
        fail("with no answer at all your Puncher never gave up: after give_up_after seconds, emit "
             "self.emit('failed', reason='...') so the application can fall back to a relay.")
    if not 1.95 <= ev.time - 0.05 <= 2.25:
        fail(f"your Puncher gave up {ev.time - 0.05:.2f} s after it started punching; give_up_after was 2.0 s.")
    after = [t for t, data, _ in d.sent if t > ev.time + 1e-9 and (punch.decode(data) or ("",))[0] == "PUNCH"]
    if after:
        fail("your Puncher kept punching after it reported 'failed': cancel the punch timer when giving up.")


def run(Puncher: Any, nat_a: str, nat_b: str, seed: int = 0, until: float = 8.0) -> dict:
    """Run two Punchers and the rendezvous server in the simulator; returns the network and events."""
    net = sim.Network.build(topology.punch(nat_a, nat_b), seed=seed)
    net.run_protocol("server", punch.RendezvousServer(), punch.RENDEZVOUS_PORT)
    ra = net.run_protocol("alice", Puncher("alice", "bob", SERVER), 5000)
    rb = net.run_protocol("bob", Puncher("bob", "alice", SERVER), 5000)
    net.run(until=until)

    def first(r: Any, kind: str) -> Any:
        return next((e for e in r.events if e.kind == kind), None)

    return {"net": net, "alice": ra, "bob": rb,
            "connected": {"alice": first(ra, "connected"), "bob": first(rb, "connected")},
            "failed": {"alice": first(ra, "failed"), "bob": first(rb, "failed")}}


def punch_with(Puncher: Any, nat_a: str, nat_b: str, seed: int = 0) -> str | None:
    """For demo cells: run your Puncher across two NATs and say what happened (never raises)."""
    from .common import try_it

    out = try_it(run, Puncher, nat_a, nat_b, seed, _label=getattr(Puncher, "__name__", "Puncher"))
    if out is None:
        return None
    c = out["connected"]
    if c["alice"] and c["bob"]:
        return (f"{nat_a} x {nat_b}: DIRECT. alice reaches bob at {fmt(c['alice'].endpoint)} (t={c['alice'].time:.3f} "
                f"s), bob reaches alice at {fmt(c['bob'].endpoint)} (t={c['bob'].time:.3f} s)")
    f = out["failed"]
    why = f["alice"].data.get("reason", "") if f["alice"] else "no event"
    return f"{nat_a} x {nat_b}: NO DIRECT PATH. alice: {why}"


CONE_PAIRS = [("port-restricted-cone", "port-restricted-cone"), ("restricted-cone", "port-restricted-cone"),
              ("full-cone", "symmetric"), ("port-restricted-cone", "full-cone")]


@check(LAB, "the cell 'Exercise: the Puncher', methods datagram_received and on_timer")
def check_puncher(Puncher: Any) -> str:
    _unit_tests(Puncher)
    for a, b in CONE_PAIRS:
        out = run(Puncher, a, b)
        c = out["connected"]
        if not (c["alice"] and c["bob"]):
            who = " and ".join(n for n in ("alice", "bob") if not c[n])
            fail(f"in the simulator, {a} (alice) x {b} (bob): {who} never reported 'connected', though p2plab's "
                 "own punching gets through here. Look at the trace: run(Puncher, ...)['net'].trace.")
    out = run(Puncher, "symmetric", "port-restricted-cone")
    if out["connected"]["alice"] or out["connected"]["bob"]:
        fail("symmetric (alice) x port-restricted-cone (bob) reported 'connected', which cannot happen: check "
             "that you only report 'connected' on a PUNCH or ACK from the peer.")
    if not (out["failed"]["alice"] and out["failed"]["bob"]):
        fail("symmetric x port-restricted-cone: one side neither connected nor gave up: both must emit "
             "'failed' after give_up_after seconds.")
    return (f"passes the by-hand tests and connects across {len(CONE_PAIRS)} NAT pairs in the simulator; "
            "symmetric x port-restricted-cone gives up cleanly.")
