"""Lab 01 - sockets: UDP between two simulated hosts, and the round-trip time.

``check_echo(start_echo)``: ``start_echo(host, port)`` binds a UDP socket on a simulated host and
sends every datagram back to its sender; it returns the socket.

``check_rtt(measure_rtt)``: ``measure_rtt(net, sock, server, count, interval)`` sends ``count``
pings from ``sock`` to the echo server at ``server``, one every ``interval`` simulated seconds, runs
the network and returns the round-trip times in seconds, in ping order, ``None`` for a lost ping.
"""

from __future__ import annotations

from typing import Any

from .. import sim
from ..topology import ALICE_PUBLIC_IP, BOB_PUBLIC_IP, Topology
from .common import check, close, fail, is_number

LAB = "sockets"
ECHO_PORT = 7


def network(alice_latency: float = 0.010, bob_latency: float = 0.010, jitter: float = 0.0, loss: float = 0.0,
            seed: int = 0) -> sim.Network:
    """Alice and Bob on public addresses with the given one-way link latencies (seconds)."""
    t = Topology("direct")
    t.add_host("alice", ALICE_PUBLIC_IP, latency=alice_latency, loss=loss)
    t.add_host("bob", BOB_PUBLIC_IP, latency=bob_latency, jitter=jitter)
    return sim.Network.build(t, seed=seed)


def reference_echo(host: sim.Host, port: int) -> sim.UdpSocket:
    sock = host.udp_socket(port)
    sock.on_datagram = lambda data, addr: sock.sendto(data, addr)
    return sock


@check(LAB, "the cell 'Exercise 1: an echo server', function start_echo")
def check_echo(start_echo: Any) -> str:
    net = network()
    bob = net.host("bob")
    sock = start_echo(bob, 9000)
    if sock is None or not hasattr(sock, "sendto"):
        fail("start_echo should return the socket it bound (the object host.udp_socket(port) gave you).")
    ports = {getattr(s, "port", None) for s in bob.sockets.values()}
    if 9000 not in ports:
        bound = ", ".join(str(p) for p in sorted(p for p in ports if p is not None)) or "none"
        fail(f"nothing is bound to port 9000 on bob (bound: {bound}): bind the socket to the port you are "
             "given, so clients know where to send.")
    alice = net.host("alice").udp_socket(5000)
    for msg in (b"hello bob", b"\x00\x01binary\xff"):
        alice.sendto(msg, (BOB_PUBLIC_IP, 9000))
    net.run(until=1.0)
    got = [data for _, data, _ in alice.received]
    df = net.trace.df
    bob_out = df[(df["node"] == "bob") & (df["direction"] == "out")]
    if not got:
        if bob_out.empty:
            fail("bob received the datagrams but sent nothing back: in on_datagram(data, addr), send the data "
                 "back with sock.sendto(...).")
        dst = sorted({f"{r.dst}:{r.dport}" for r in bob_out.itertuples()})
        fail(f"bob answered, but to {', '.join(dst)}, not to Alice's socket {ALICE_PUBLIC_IP}:5000: reply to "
             "the address each datagram came from (the addr argument of on_datagram).")
    if sorted(got) != sorted([b"hello bob", b"\x00\x01binary\xff"]):
        fail(f"Alice sent b'hello bob' and some binary bytes but got back {got!r}: an echo server returns "
             "exactly the bytes it received, unchanged (bytes, not text).")
    src = {addr for _, _, addr in alice.received}
    if src != {(BOB_PUBLIC_IP, 9000)}:
        fail(f"the replies came from {src}, not from the server's own socket: send the reply from the socket "
             "that received the request, or the client will not recognise it.")
    return "Alice sent two datagrams to bob:9000 and got both back, unchanged."


class _Spy:
    """Records when each payload left ``sock`` and when its echo came back."""

    def __init__(self, net: sim.Network, sock: sim.UdpSocket) -> None:
        self.sent: list[tuple[float, bytes]] = []
        self.back: dict[bytes, float] = {}
        orig_send, orig_deliver = sock.sendto, sock.deliver

        def sendto(data: bytes, addr: Any) -> None:
            self.sent.append((net.now, bytes(data)))
            orig_send(data, addr)

        def deliver(data: bytes, addr: Any) -> None:
            self.back.setdefault(bytes(data), net.now)
            orig_deliver(data, addr)

        sock.sendto = sendto  # type: ignore[method-assign]
        sock.deliver = deliver  # type: ignore[method-assign]

    def truth(self) -> list[float | None]:
        return [self.back[d] - t if d in self.back else None for t, d in self.sent]


def _run_case(measure_rtt: Any, count: int, interval: float, **netargs: Any) -> tuple[Any, list, _Spy]:
    net = network(**netargs)
    reference_echo(net.host("bob"), ECHO_PORT)
    sock = net.host("alice").udp_socket(5000)
    spy = _Spy(net, sock)
    got = measure_rtt(net, sock, (BOB_PUBLIC_IP, ECHO_PORT), count, interval)
    return got, spy.truth(), spy


def _compare(got: Any, truth: list, spy: _Spy, count: int, interval: float, case: str) -> None:
    if len(spy.sent) != count:
        fail(f"{case}: measure_rtt sent {len(spy.sent)} pings, but count was {count}: send exactly one ping per "
             "measurement.")
    payloads = [d for _, d in spy.sent]
    if len(set(payloads)) != len(payloads):
        fail(f"{case}: several pings carried the same bytes ({payloads[0]!r}), so a reply cannot tell which ping "
             "it answers: put a sequence number in each ping's payload.")
    times = [t for t, _ in spy.sent]
    if count > 1 and any(not close(b - a, interval, 1e-6) for a, b in zip(times, times[1:])):
        gaps = ", ".join(f"{(b - a) * 1000:g}" for a, b in zip(times, times[1:]))
        fail(f"{case}: pings left {gaps} ms apart, but interval was {interval * 1000:g} ms: schedule ping i at "
             "i x interval with net.after(...) or net.at(...), then run the network.")
    if not isinstance(got, (list, tuple)):
        fail(f"{case}: measure_rtt returned {type(got).__name__}; return a list with one RTT per ping.")
    got = list(got)
    if len(got) != count:
        lost = sum(x is None for x in truth)
        tip = " (use None for a ping whose reply never came)" if lost else ""
        fail(f"{case}: got {len(got)} values for {count} pings: return exactly one value per ping{tip}.")
    for i, (g, t) in enumerate(zip(got, truth)):
        if t is None:
            if g is not None:
                fail(f"{case}: ping {i} was lost on the way, yet you report {g!r} for it: a ping with no reply "
                     "has no RTT; put None there.")
            continue
        if g is None or not is_number(g):
            fail(f"{case}: ping {i} came back after {t * 1000:g} ms but you report {g!r}: record the simulated "
                 "time (net.now) when its reply arrives.")
    pairs = [(g, t) for g, t in zip(got, truth) if t is not None]
    if all(close(g, t, 1e-6) for g, t in pairs):
        return
    if all(abs(g) < 1e-12 for g, _ in pairs):
        fail(f"{case}: every RTT is 0: you computed them before the replies arrived. Run the network "
             "(net.run(...)) first, and take net.now inside on_datagram when each reply comes in.")
    if all(close(g, t * 1000, 1e-6) for g, t in pairs):
        fail(f"{case}: your values are 1000 times too large: they look like milliseconds; return seconds.")
    if all(close(g, t / 2, 1e-6) for g, t in pairs):
        fail(f"{case}: your values are half the true RTTs: that is the one-way delay; the round trip is from "
             "sending the ping to receiving its echo.")
    if all(0 <= g < 1e-3 for g, _ in pairs):
        fail(f"{case}: your RTTs are tiny ({pairs[0][0]:.2e} s): that looks like the computer's clock "
             "(time.time()). The simulator has its own clock: use net.now.")
    arrivals = sorted(spy.back.values())
    by_arrival = [a - t for a, (t, _) in zip(arrivals, spy.sent)]
    in_order = len(by_arrival) == len(got) and all(close(g, b, 1e-6) for g, b in zip(got, by_arrival) if g is not None)
    if in_order or sorted(round(g, 9) for g, _ in pairs) == sorted(round(t, 9) for _, t in pairs):
        fail(f"{case}: you paired replies with pings in the order the replies arrived, but with jitter a "
             "later ping's echo can overtake an earlier one: match each reply to its ping by the sequence number in the payload, not by arrival order.")
    i, (g, t) = next((i, p) for i, p in enumerate(zip(got, truth)) if p[1] is not None and not close(p[0], p[1], 1e-6))
    fail(f"{case}: ping {i}'s round trip took {t * 1000:g} ms (simulated) but you report {g * 1000:g} ms: RTT = "
         "time the echo arrives - time that ping was sent, both read from net.now.")


@check(LAB, "the cell 'Exercise 2: measure the round-trip time', function measure_rtt")
def check_rtt(measure_rtt: Any) -> str:
    got, truth, spy = _run_case(measure_rtt, 3, 0.1, alice_latency=0.005, bob_latency=0.020)
    _compare(got, truth, spy, 3, 0.1, "links of 5 ms and 20 ms")
    got, truth, spy = _run_case(measure_rtt, 8, 0.002, bob_latency=0.010, jitter=0.030, seed=3)
    _compare(got, truth, spy, 8, 0.002, "with jitter (replies overtake each other)")
    got, truth, spy = _run_case(measure_rtt, 6, 0.05, loss=0.3, seed=1)
    if all(t is not None for t in truth):  # pragma: no cover - the seed is chosen so that some are lost
        raise AssertionError("lossy case lost nothing")
    _compare(got, truth, spy, 6, 0.05, "on a lossy link")
    return ("RTTs right on plain links (50 ms), with jitter (matched by sequence number) and with loss "
            "(None for lost pings).")
