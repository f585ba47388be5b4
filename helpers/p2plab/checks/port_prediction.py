"""Lab 05 - port prediction: the birthday-paradox attack on a hard (symmetric) NAT.

Alice sits behind a symmetric NAT that picks a random outside port for every new destination;
Bob sits behind an easy (endpoint-independent mapping) NAT. Alice opens ``n_open`` sockets that all
send to Bob's public endpoint: ``n_open`` random holes in her NAT, each open only to Bob. Bob
probes random ports of Alice's NAT; a probe that lands on one of the holes gets through.

The learner writes ``probe_ports(rng, n, low, high)``, ``success_probability(n_open, n_probes,
space)`` and ``birthday_trial(seed, n_open, n_probes)`` (in the simulator, built by ``world``).
"""

from __future__ import annotations

import random
from typing import Any

from .. import sim, topology
from .common import check, close, fail, is_number, try_it

LAB = "port_prediction"
LOW, HIGH = 32768, 60999  # the symmetric preset's port range (Linux's default ephemeral range)
SPACE = HIGH - LOW + 1


class World:
    """The lab's network: Alice behind a symmetric NAT, Bob behind a port-restricted cone NAT."""

    def __init__(self, seed: int = 0, record: bool = False) -> None:
        self.net = sim.Network.build(topology.punch("symmetric", "port-restricted-cone"), seed=seed, record=record)
        self.alice = self.net.host("alice")
        self.bob = self.net.host("bob")
        self.bob_socket = self.bob.udp_socket(5000)
        self.bob_public = (topology.BOB_NAT_IP, 5000)  # what STUN told Bob (his NAT keeps the port)
        self.alice_nat_ip = topology.ALICE_NAT_IP
        self.low, self.high = LOW, HIGH

    def __repr__(self) -> str:
        return (f"<World: alice behind symmetric NAT {self.alice_nat_ip} (ports {self.low}-{self.high}), "
                f"bob's socket {self.bob_socket.local_addr} seen as {self.bob_public[0]}:{self.bob_public[1]}>")


def world(seed: int = 0, record: bool = False) -> World:
    """A fresh lab network (``record=False`` keeps thousands of probes fast)."""
    return World(seed, record)


def exact_probability(n_open: int, n_probes: int, space: int = SPACE) -> float:
    """P(at least one of ``n_probes`` distinct random ports hits one of ``n_open`` open ones)."""
    from ..viz.charts import port_guess_probability

    return port_guess_probability(n_probes, open_ports=n_open, port_space=space)


def approx_probability(n_open: int, n_probes: int, space: int = SPACE) -> float:
    return 1.0 - (1.0 - n_open / space) ** n_probes


def reference_trial(seed: int, n_open: int, n_probes: int) -> int | None:
    w = world(seed)
    socks = [w.alice.udp_socket() for _ in range(n_open)]
    for s in socks:
        s.sendto(b"open", w.bob_public)
    ports = random.Random(seed).sample(range(w.low, w.high + 1), n_probes)
    for i, p in enumerate(ports):
        w.net.at(0.1, w.bob_socket.sendto, str(i).encode(), (w.alice_nat_ip, p))
    w.net.run(until=1.0)
    hits = [int(d) for s in socks for _, d, _ in s.received]
    return min(hits) if hits else None


@check(LAB, "the cell 'Exercise 1: choose the ports to probe', function probe_ports")
def check_probe_ports(probe_ports: Any) -> str:
    a = probe_ports(random.Random(1), 500, LOW, HIGH)
    if not isinstance(a, (list, tuple)) or not all(isinstance(p, int) for p in a):
        fail(f"probe_ports returned {type(a).__name__}; return a list of port numbers (ints).")
    if len(a) != 500:
        fail(f"asked for 500 ports, got {len(a)}: return exactly n ports.")
    if any(not LOW <= p <= HIGH for p in a):
        bad = next(p for p in a if not LOW <= p <= HIGH)
        fail(f"port {bad} is outside {LOW}-{HIGH}: a probe there can never hit. Include both ends, exclude "
             "everything else.")
    if len(set(a)) != len(a):
        fail(f"{len(a) - len(set(a))} of your 500 ports are repeats: probing a port twice wastes a probe. Draw "
             "without replacement (random.sample), so every probe is a new chance.")
    if a != probe_ports(random.Random(1), 500, LOW, HIGH):
        fail("two calls with random.Random(1) gave different ports: draw from the rng you are given (not the "
             "random module's global one) so every run of the notebook is the same.")
    if a == probe_ports(random.Random(2), 500, LOW, HIGH):
        fail("different rng seeds gave the same ports: the probes must be random, or a NAT that happens to "
             "avoid your fixed list defeats you every time.")
    if sorted(a) == a:
        fail("your ports come out in increasing order: a scan from one end is fine on average, but random order "
             "matters when the NAT's ports are not uniform - shuffle them.")
    try:
        every = probe_ports(random.Random(3), 10, 1000, 1009)
    except ValueError as exc:
        fail(f"asking for all 10 ports of 1000-1009 raised ValueError ({exc}): is `high` included? "
             "range(low, high) stops before high.")
    if sorted(every) != list(range(1000, 1010)):
        fail("asking for all 10 ports of 1000-1009 did not give each of them once.")
    return "distinct, in range, random and reproducible."


@check(LAB, "the cell 'Exercise 2: the formula', function success_probability")
def check_probability(success_probability: Any) -> str:
    for n, k, space in ((256, 1024, 65536), (256, 174, 65536), (1, 1, 100), (16, 50, 100), (256, 2048, SPACE),
                        (10, 0, 1000)):
        got = success_probability(n, k, space)
        if not is_number(got):
            fail(f"success_probability returned {got!r}; return a probability, a number from 0 to 1.")
        want = exact_probability(n, k, space)
        if close(got, want, 1e-9):
            continue
        if close(got, approx_probability(n, k, space), 1e-9) and abs(got - want) < 0.03:
            continue
        if got > 1 or close(got, n * k / space, 1e-9):
            fail(f"for {n} open ports, {k} probes among {space} ports you give {got:g}: adding the chances of each "
                 "probe (n x k / space) overcounts - a probability cannot pass 1. Compute the chance that EVERY "
                 "probe misses, then take 1 minus that.")
        if close(got, 1 - want, 1e-6) or close(got, 1 - approx_probability(n, k, space), 1e-6):
            fail(f"for {n} open ports and {k} probes you give {got:g}: that is the chance that all probes MISS; "
                 "success is 1 minus it.")
        if close(got, (n / space) ** k, 1e-6) or close(got, 1 - (1 - k / space) ** n, 1e-3) and n != k:
            fail(f"for {n} open ports and {k} probes you give {got:g}: one probe misses with probability "
                 "1 - n/space; k independent probes all miss with that to the power k.")
        fail(f"for {n} open ports, {k} probes among {space} ports you give {got:.6f}; it should be about "
             f"{want:.4f}. A probe misses with probability 1 - open/space; success = 1 - P(all miss).")
    return (f"256 open ports, 1024 probes among the 64,511 ports 1025-65535: {exact_probability(256, 1024, 64511):.1%}; "
            f"of this NAT's "
            f"{SPACE} ports: {exact_probability(256, 1024):.2%}.")


@check(LAB, "the cell 'Exercise 3: one trial in the simulator', function birthday_trial")
def check_trial(birthday_trial: Any) -> str:
    results = []
    for seed in range(12):
        r = birthday_trial(seed, 256, 512)
        if r is not None and (not isinstance(r, int) or isinstance(r, bool) or not 0 <= r < 512):
            fail(f"birthday_trial returned {r!r}; return the index (0 to n_probes-1) of the first probe that "
                 "reached one of Alice's sockets, or None.")
        results.append(r)
    hits = sum(r is not None for r in results)
    if hits == 0:
        fail("in 12 trials with 256 open ports and 512 probes no probe got through (expected: nearly all). "
             "Check: each of Alice's sockets first sends to Bob's PUBLIC endpoint (that opens a hole only for "
             "him); then Bob probes Alice's NAT's public IP, from the same socket those packets were sent to; "
             "run the network long enough for the packets to arrive.")
    if hits < 8:
        fail(f"only {hits} of 12 trials succeeded with 256 open ports and 512 probes; the formula says about "
             f"{exact_probability(256, 512):.0%}. Are Bob's probes landing in Alice's NAT's port range "
             f"({LOW}-{HIGH}), and are all of Alice's sockets sending?")
    lucky = sum(birthday_trial(seed, 1, 32) is not None for seed in range(12))
    if lucky > 3:
        fail(f"with 1 open port and 32 probes, {lucky} of 12 trials 'succeeded' (expected about "
             f"{exact_probability(1, 32):.1%}): count a hit only when a probe arrives at one of Alice's sockets.")
    firsts = [r for r in results if r is not None]
    if len(set(firsts)) == 1 and len(firsts) > 2:
        fail(f"every trial reports probe {firsts[0]} as the first hit: return the index of the first probe that "
             "got through (put it in the payload), and make each trial's probes depend on its seed.")
    return (f"{hits} of 12 trials got through with 256 open ports and 512 probes (formula: "
            f"{exact_probability(256, 512):.0%}); 1 port and 32 probes: {lucky} of 12.")


def measure(birthday_trial: Any, n_open: int = 256, probe_counts: tuple = (32, 64, 128, 256, 512, 1024),
            trials: int = 50):
    """Success rate against probes sent, from ``trials`` runs of your ``birthday_trial`` with the largest
    probe count (a trial succeeds within k probes if its first hit is below k). Returns a DataFrame
    with the formula alongside, or None if birthday_trial is not written yet."""
    import pandas as pd

    first = try_it(birthday_trial, 0, n_open, max(probe_counts), _label="birthday_trial")
    if first is None:
        try:  # None is also a genuine miss: tell it apart from "not written yet" or a crash
            birthday_trial(0, n_open, 1)
        except Exception:
            return None
    firsts = [first] + [birthday_trial(seed, n_open, max(probe_counts)) for seed in range(1, trials)]
    rows = [{"probes": k, "success rate (sim)": sum(f is not None and f < k for f in firsts) / trials,
             "formula": round(exact_probability(n_open, k), 3)} for k in probe_counts]
    return pd.DataFrame(rows)
