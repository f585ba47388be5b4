"""Lab 07 - ICE: candidate and pair priorities (RFC 8445), and the pair to nominate.

The learner writes

* ``priority(kind, local_pref=65535, component=1)``: RFC 8445 section 5.1.2.1 with the recommended
  type preferences (host 126, peer-reflexive 110, server-reflexive 100, relayed 0),
* ``pair_priority(g, d)``: section 6.1.2.3, G the controlling agent's candidate priority,
* ``agent_pair_priority(local, remote, controlling)``: the same number seen from either agent,
* ``choose_pair(rows)``: from an agent's pair report (``run_ice(...).pairs("alice")``, one dict per
  pair) the pair the controlling agent nominates: the valid pair with the highest priority,
* ``predict_browser_pairs()``: for four NAT pairs, the pair a real Chromium selects (``"srflx-prflx"``,
  ``"fails"``, ...), checked against the browsers recorded in the real lab (``data/webrtc-*``);
  ``browser_pairs`` shows the browsers' choices next to the predictions.

Each is compared with ``p2plab.ice`` over many inputs; wrong answers are matched against the
usual mistakes to give a specific hint.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from ..ice import candidate_priority as ref_priority
from ..ice import pair_priority as ref_pair
from ..ice import run_ice
from .common import check, fail

LAB = "ice"
KINDS = ("host", "prflx", "srflx", "relay")
PREFS = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}
LOCAL_PREFS = (65535, 0, 1, 255, 256, 32768, 40000, 65534)
COMPONENTS = (1, 2, 3, 128, 256)


def _inputs() -> list[tuple[str, int, int]]:
    return [(k, lp, c) for k in KINDS for lp in LOCAL_PREFS for c in COMPONENTS]


def _matches(fn: Callable, got: dict, inputs: list) -> bool:
    try:
        return all(fn(*x) == got[x] for x in inputs)
    except Exception:  # noqa: BLE001 - an alternative formula that does not apply
        return False


def _uses_xor(fn: Callable) -> bool:
    """Does the source of ``fn`` raise 2 to a power with ``^`` (XOR in Python)?"""
    import inspect

    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return re.search(r"\b2\s*\^\s*\d", source) is not None


# Typical wrong candidate-priority formulas and what to say about each.
_PRIORITY_MISTAKES: list[tuple[Callable[[str, int, int], int], str]] = [
    (lambda k, lp, c: 2 ^ 24 * PREFS[k] + 2 ^ 8 * lp + (256 - c),
     "in Python `^` is XOR, not a power: 2^24 is 26. Write 2**24 (or 1 << 24) and 2**8."),
    (lambda k, lp, c: 2**24 * PREFS[k] + lp + (256 - c),
     "you used 2^24 x type + local_pref + ...: the local preference is multiplied by 2^8, so it sits in "
     "bits 8-23, above the component's byte."),
    (lambda k, lp, c: 2**24 * PREFS[k] + 2**8 * lp + c,
     "the last term is 256 - component ID, so component 1 (RTP) gets 255 and ranks above component 2."),
    (lambda k, lp, c: 2**24 * PREFS[k] + 2**8 * lp + (255 - c),
     "the last term is 256 - component ID (255 for component 1), not 255 - component."),
    (lambda k, lp, c: 2**24 * PREFS[k] + 2**8 * lp - c,
     "the last term is (256 - component ID), in brackets; you subtracted the component only."),
    (lambda k, lp, c: 2**24 * {"host": 126, "prflx": 100, "srflx": 110, "relay": 0}[k] + 2**8 * lp + (256 - c),
     "peer-reflexive and server-reflexive are swapped: prflx 110 ranks *above* srflx 100 (RFC 8445 5.1.2.2: "
     "a peer-reflexive address was learned from the peer itself, during a check that worked)."),
    (lambda k, lp, c: 2**24 * PREFS[k] + 2**16 * lp + (256 - c),
     "the local preference is multiplied by 2^8, not 2^16: it is 16 bits wide and sits in bits 8-23."),
]


@check(LAB, "the cell 'Exercise 1: candidate priority', function priority")
def check_priority(priority: Any) -> str:
    inputs = _inputs()
    got = {}
    for x in inputs:
        value = priority(*x)
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"priority{x} returned {value!r} ({type(value).__name__}); return a whole number (an int). "
                 "Use ** and integer arithmetic, no division.")
        got[x] = value
    wrong = [x for x in inputs if got[x] != ref_priority(*x)]
    if not wrong:
        return (f"agrees with p2plab.ice.candidate_priority on {len(inputs)} inputs; host {ref_priority('host')}, "
                f"srflx {ref_priority('srflx')}, relay {ref_priority('relay')}.")
    for alt, hint in _PRIORITY_MISTAKES:
        if _matches(alt, got, inputs):
            fail(hint)
    if _uses_xor(priority):
        fail(_PRIORITY_MISTAKES[0][1])
    x = wrong[0]
    value, want = got[x], ref_priority(*x)
    if value > 2**32 - 1 or value < 0:
        fail(f"priority{x} = {value}: a candidate priority fits in 32 bits (0 to 2^32 - 1); check the powers of 2.")
    kind, lp, c = x
    tp, lpg, cg = value >> 24, (value >> 8) & 0xFFFF, value & 0xFF
    if tp != PREFS[kind]:
        fail(f"priority{x} = {value}: its top byte (the type preference) is {tp}, but a {kind} candidate's type "
             f"preference is {PREFS[kind]} (RFC 8445: host 126, prflx 110, srflx 100, relay 0).")
    if lpg != lp:
        fail(f"priority{x} = {value}: bits 8-23 should hold the local preference {lp}; they hold {lpg}.")
    if cg != 256 - c:
        fail(f"priority{x} = {value}: the low byte should be 256 - component = {256 - c}; it is {cg}.")
    fail(f"priority{x} = {value}, expected {want}: 2^24 x type preference + 2^8 x local preference + (256 - component).")


_PAIR_MISTAKES: list[tuple[Callable[[int, int], int], str]] = [
    (lambda g, d: 2 ^ 32 * min(g, d) + 2 * max(g, d) + (1 if g > d else 0),
     "in Python `^` is XOR, not a power: 2^32 is 34. Write 2**32 (or 1 << 32)."),
    (lambda g, d: 2**32 * min(g, d) + 2 * max(g, d) + (1 if d > g else 0),
     "the tie-break bit is 1 when G > D, G being the *controlling* agent's priority: you compared with the "
     "controlled agent's as G."),
    (lambda g, d: 2**32 * min(g, d) + 2 * max(g, d),
     "the tie-break bit is missing: + (1 if G > D else 0). Without it two pairs with the same two priorities "
     "in opposite roles tie, and the agents may order them differently."),
    (lambda g, d: 2**32 * g + 2 * d + (1 if g > d else 0),
     "pair priority uses MIN and MAX of both priorities, not G then D: the worse candidate decides (high bits), "
     "so both agents agree on the order whoever is local."),
    (lambda g, d: 2**32 * max(g, d) + 2 * min(g, d) + (1 if g > d else 0),
     "MIN goes in the high bits (2^32 x MIN(G, D)): a pair is only as good as its worse candidate."),
    (lambda g, d: 2**32 * min(g, d) + max(g, d) + (1 if g > d else 0),
     "the middle term is 2 x MAX(G, D): doubling frees the lowest bit for the tie-breaker."),
    (lambda g, d: 2**32 * min(g, d) + 2 * max(g, d) + (1 if g >= d else 0),
     "the tie-break bit is 1 only when G > D strictly; with equal priorities it is 0."),
]


def _pair_inputs() -> list[tuple[int, int]]:
    prios = sorted({ref_priority(k, lp, c) for k in KINDS for lp in (65535, 0, 30000) for c in (1, 2)})
    rng = random.Random(8445)
    pairs = [(g, d) for g in prios[::3] for d in prios[::3]]
    pairs += [(p, p) for p in prios[:4]] + [(rng.randrange(2**32), rng.randrange(2**32)) for _ in range(40)]
    pairs += [(0, 0), (0, 1), (1, 0), (2**32 - 1, 2**32 - 2)]
    return pairs


@check(LAB, "the cell 'Exercise 2: pair priority', function pair_priority")
def check_pair_priority(pair_priority: Any) -> str:
    inputs = _pair_inputs()
    got = {}
    for g, d in inputs:
        value = pair_priority(g, d)
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"pair_priority({g}, {d}) returned {value!r}; return an int.")
        got[(g, d)] = value
    wrong = [x for x in inputs if got[x] != ref_pair(*x)]
    if not wrong:
        g, d = 2130706431, 1694498815
        return (f"agrees with p2plab.ice.pair_priority on {len(inputs)} pairs (tie-break bit included); "
                f"host/srflx: {ref_pair(g, d)} with alice's host as G, {ref_pair(d, g)} the other way.")
    for alt, hint in _PAIR_MISTAKES:
        if _matches(alt, got, inputs):
            fail(hint)
    if _uses_xor(pair_priority):
        fail(_PAIR_MISTAKES[0][1])
    g, d = wrong[0]
    fail(f"pair_priority({g}, {d}) = {got[(g, d)]}, expected {ref_pair(g, d)}: "
         "2^32 x MIN(G, D) + 2 x MAX(G, D) + (1 if G > D else 0).")


@check(LAB, "the cell 'Exercise 2: pair priority', function agent_pair_priority")
def check_agent_pair_priority(agent_pair_priority: Any) -> str:
    rng = random.Random(5)
    prios = [ref_priority(k) for k in KINDS] + [rng.randrange(2**31) for _ in range(12)]
    for a in prios:
        for b in prios:
            if a == b:
                continue
            alice = agent_pair_priority(a, b, True)    # Alice controlling: local a, remote b
            bob = agent_pair_priority(b, a, False)     # Bob controlled: the same pair, seen from his side
            want = ref_pair(a, b)
            if alice == want and bob == want:
                continue
            if alice == want and bob == ref_pair(b, a):
                fail("Alice (controlling) and Bob (controlled) got different numbers for the same pair: Bob used his "
                     "own candidate as G. G is always the controlling agent's candidate: when you are controlled, "
                     "G is the remote priority.")
            if alice == ref_pair(b, a) and bob == ref_pair(b, a) and alice != want:
                fail("roles are swapped: when the agent is controlling, G is its *local* candidate's priority.")
            if alice != want and bob != want and alice == bob:
                fail(f"both agents agree, but on {alice} instead of {want}: pass your numbers through pair_priority "
                     "(and run its check first).")
            fail(f"for local {a}, remote {b}: controlling gives {alice}, the controlled peer gives {bob}; both should "
                 f"be {want}.")
    return "Alice (controlling) and Bob (controlled) compute the same priority for every pair."


# -- choosing the pair -----------------------------------------------------------------------------
NAT_PAIRS = [("port-restricted-cone", "port-restricted-cone"), ("full-cone", "symmetric"),
             ("symmetric", "port-restricted-cone"), ("symmetric", "symmetric"), ("restricted-cone", "full-cone")]


def best_valid(rows: list[dict]) -> dict | None:
    """The reference rule: the valid pair with the highest priority, or None."""
    valid = [r for r in rows if r.get("valid")]
    return max(valid, key=lambda r: r["priority"]) if valid else None


def _pair_text(r: dict) -> str:
    return f"{r['type']} {r['local']} -> {r['remote']} (priority {r['priority']}, {r['state']}, valid={r['valid']})"


_RESULTS: dict[tuple[str, str], Any] = {}


def ice_result(nat_a: str, nat_b: str) -> Any:
    """``run_ice(nat_a, nat_b, seed=0)``, computed once."""
    key = (nat_a, nat_b)
    if key not in _RESULTS:
        _RESULTS[key] = run_ice(nat_a, nat_b, seed=0, record=True)
    return _RESULTS[key]


def _cases() -> list[tuple[str, list[dict]]]:
    rng = random.Random(7)
    cases = []
    for a, b in NAT_PAIRS:
        res = ice_result(a, b)
        for agent in ("alice", "bob"):
            rows = [dict(r) for r in res.pairs(agent)]
            rng.shuffle(rows)
            cases.append((f"{a} x {b}, {agent}'s pairs", rows))
    failed = [dict(r, state="Failed", valid=False, nominated=False, selected=False)
              for r in ice_result("symmetric", "symmetric").pairs("alice")]
    cases.append(("a run where every check failed", failed))
    return cases


@check(LAB, "the cell 'Exercise 3: the pair to nominate', function choose_pair")
def check_choose_pair(choose_pair: Any) -> str:
    agreed = 0
    ambiguous: list[str] = []
    for name, rows in _cases():
        got = choose_pair([dict(r) for r in rows])
        want = best_valid(rows)
        if want is None:
            if got is not None:
                fail(f"{name}: you returned a pair, but no check succeeded - nothing can be nominated. Return None "
                     "(the application then knows ICE failed).")
            continue
        if got is None:
            fail(f"{name}: you returned None, but {sum(bool(r['valid']) for r in rows)} pair(s) are valid. Return the "
                 "row of the pair to nominate.")
        if not isinstance(got, dict) or not any(got == r for r in rows):
            fail(f"{name}: choose_pair returned {got!r}; return one of the rows you were given (a dict).")
        if got == want:
            agreed += 1
            continue
        if got.get("state") != "Succeeded":
            fail(f"{name}: you chose {_pair_text(got)}. Its checks never succeeded - only a pair whose check got an "
                 "answer (a *valid* pair) can be nominated, however high its priority.")
        if not got.get("valid"):
            fail(f"{name}: you chose {_pair_text(got)}. Its check succeeded, but it is not in the valid list: the "
                 f"answer showed a different mapped address (a peer-reflexive candidate), so the valid pair is the "
                 f"one built from the answer. Choose among rows with valid=True.")
        valid_rows = [r for r in rows if r["valid"]]
        lowest, first = got == min(valid_rows, key=lambda r: r["priority"]), got == valid_rows[0]
        if lowest and first:
            ambiguous.append(name)  # another run tells which mistake it is
            continue
        if lowest:
            fail(f"{name}: you chose the valid pair with the *lowest* priority; ICE nominates the highest.")
        if first:
            fail(f"{name}: you chose the first valid row, {_pair_text(got)}, but the rows are not sorted: compare "
                 "priorities (max(..., key=...)).")
        fail(f"{name}: you chose {_pair_text(got)}; a valid pair with a higher priority exists: {_pair_text(want)}.")
    if ambiguous:
        fail(f"{ambiguous[0]}: you chose a valid pair, but not the one with the highest priority.")
    return (f"picks the highest-priority valid pair in all {agreed} runs with a working pair (and None when "
            "nothing works) - the pair p2plab's agents nominated.")


def compare_with_agents(choose_pair: Any, nat_pairs: list[tuple[str, str]] | None = None):
    """For a demo cell: your choice and the pair p2plab's ICE agents selected, per NAT pair (a
    DataFrame), or None if choose_pair is not written yet."""
    import pandas as pd

    from .common import try_it

    rows = []
    for a, b in nat_pairs or NAT_PAIRS:
        res = ice_result(a, b)
        mine = try_it(choose_pair, [dict(r) for r in res.pairs("alice")], _label="choose_pair")
        if mine is None and best_valid(res.pairs("alice")) is not None:
            return None
        sel = next((r for r in res.pairs("alice") if r["selected"]), None)
        rows.append({"alice's NAT": a, "bob's NAT": b, "your pair": mine["type"] if mine else None,
                     "ICE selected": sel["type"] if sel else None,
                     "same": (mine or {}).get("local") == (sel or {}).get("local")
                     and (mine or {}).get("remote") == (sel or {}).get("remote")})
    return pd.DataFrame(rows)


# -- the browser's choice --------------------------------------------------------------------------
#: (alice's NAT, bob's NAT) -> (the recording of two Chromiums in the real lab, does bob's browser know the
#: TURN server). Alice's browser always knows the STUN server only.
BROWSER_RUNS: dict[tuple[str, str], tuple[str, bool]] = {
    ("port-restricted-cone", "port-restricted-cone"): ("webrtc-direct", False),
    ("full-cone", "symmetric"): ("webrtc-cone-symmetric", False),
    ("port-restricted-cone", "symmetric"): ("webrtc-prc-symmetric", True),
    ("symmetric", "symmetric"): ("webrtc-relayed", True),
}
_TYPES = ("host", "srflx", "prflx", "relay")
_FAILS = {"fails", "fail", "failed", "none", "no connection"}


def parse_pair(value: Any) -> str | None:
    """A prediction as ``"local-remote"`` (or ``"fails"``); None when it cannot be read.

    Accepts ``"srflx-prflx"``, ``"srflx/prflx"``, ``"srflx -> prflx"``, ``("srflx", "prflx")``, any case.
    """
    if isinstance(value, (tuple, list)) and len(value) == 2:
        parts = [str(v).strip().lower() for v in value]
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in _FAILS:
            return "fails"
        parts = [p.strip() for p in re.split(r"\s*(?:->|/|-|,|\s)\s*", text) if p.strip()]
    else:
        return None
    if len(parts) == 2 and all(p in _TYPES for p in parts):
        return f"{parts[0]}-{parts[1]}"
    return None


def recorded_browser_pair(nat_a: str, nat_b: str) -> str:
    """The pair Alice's Chromium selected in the recording of that NAT pair, as ``"local-remote"``."""
    from .. import recorded

    name, _ = BROWSER_RUNS[(nat_a, nat_b)]
    out = recorded.outcome(name)
    if not out.get("ok"):
        return "fails"
    sel = out["details"]["selected"]
    return f"{sel['local']['type']}-{sel['remote']['type']}"


def _browser_hint(nats: tuple[str, str], turn: bool, got: str, want: str) -> str:
    """What to rethink when ``got`` was predicted for ``nats`` and the browser selected ``want``."""
    from ..nat import PRESETS

    a, b = nats
    where = f"{a} x {b}"
    sym_a, sym_b = (PRESETS[n].mapping != "endpoint-independent" for n in nats)
    if got == "fails":
        if turn:
            return (f"{where}: Bob's browser has the TURN server here. A relay on one side is enough: Alice's "
                    "checks can reach Bob's relayed address from any NAT, once Bob has given her address a permission.")
        if PRESETS[a].filtering == "endpoint-independent":
            return (f"{where}: they do connect, directly. Alice's full cone NAT lets anything in to her srflx "
                    "mapping, whatever address and port it comes from: find Bob's check that gets there.")
        return (f"{where}: they do connect, directly. Both NATs keep one mapping per socket (endpoint-independent): "
                "once Alice's check to Bob's srflx address has gone out, his checks from that address get in, "
                "and the other way round (the hole punch of lab 04).")
    loc, rem = got.split("-")
    w_loc, w_rem = want.split("-")
    if got == f"{w_rem}-{w_loc}" and got != want:
        return (f"{where}: you have the two ends the other way round. Write the pair as Alice's browser reports it: "
                "her own (local) candidate first, then Bob's (remote).")
    if "host" in (loc, rem):
        return (f"{where}: a host candidate is a private address (192.168.x.x) of another network: checks to it "
                "die at the internet core. Host pairs only work when both are on the same LAN.")
    if loc == "relay":
        return (f"{where}: Alice's browser knows only the STUN server, so she has no relay candidate of her own: "
                "the relay (if any) is Bob's, at the remote end of her pair.")
    if "relay" in (loc, rem) and not turn:
        return f"{where}: neither browser has the TURN server in this run, so there is no relay candidate at all."
    if "relay" in (loc, rem) and "relay" not in (w_loc, w_rem):
        return (f"{where}: a direct pair works here, and ICE prefers any working direct pair to a relayed one "
                "(type preference 0 puts every relayed pair last, exercise 3).")
    if "relay" not in (loc, rem) and "relay" in (w_loc, w_rem):
        return (f"{where}: no direct pair works. Bob's symmetric NAT sends his checks from a new port for each "
                f"destination, and Alice's {a} NAT only lets in packets from an address and port she has sent "
                "to first; Bob's relay is the way left (a relay on one side is enough).")
    if loc != w_loc:
        if sym_a:
            return (f"{where}: Alice's NAT is symmetric, so her checks to Bob leave through a new mapping, not the "
                    "one the STUN server saw: Bob's answer tells her that new address, a peer-reflexive candidate.")
        return (f"{where}: Alice's {a} NAT maps endpoint-independently: her checks to Bob leave through the same "
                "mapping the STUN server saw, her server-reflexive candidate.")
    if rem != w_rem:
        if sym_b:
            return (f"{where}: Bob's NAT is symmetric: his checks reach Alice from a new mapping that nobody "
                    "signalled, and Alice learns it from the check itself: a peer-reflexive candidate.")
        return (f"{where}: Bob's {b} NAT maps endpoint-independently: what reaches Alice comes from the mapping the "
                "STUN server saw, the server-reflexive candidate he signalled.")
    return f"{where}: you predicted {got}; think again about each NAT's mapping and filtering."


@check(LAB, "the cell 'Exercise 4: predict the browser's pair', the function predict_browser_pairs")
def check_browser_predictions(predictions: Any) -> str:
    if callable(predictions):
        predictions = predictions()  # the learner's predict_browser_pairs; its stub raises NotImplementedError
    if not isinstance(predictions, dict):
        fail(f"predict_browser_pairs() should return a dict {{(alice's NAT, bob's NAT): 'local-remote'}}; it "
             f"returns a {type(predictions).__name__}.")
    if all(v is None for v in predictions.values()):
        raise NotImplementedError
    missing = [k for k in BROWSER_RUNS if k not in predictions]
    if missing:
        fail(f"no prediction for {missing[0][0]} x {missing[0][1]}: keep the four keys as given.")
    hints = []
    for nats, (_, turn) in BROWSER_RUNS.items():
        value = predictions[nats]
        if value is None:
            fail(f"{nats[0]} x {nats[1]}: no prediction yet (None).")
        got = parse_pair(value)
        if got is None:
            fail(f"{nats[0]} x {nats[1]}: cannot read {value!r}. Write Alice's end, then Bob's, as candidate types "
                 "(host, srflx, prflx, relay), e.g. 'host-srflx', or 'fails'.")
        want = recorded_browser_pair(*nats)
        if got != want:
            hints.append(_browser_hint(nats, turn, got, want))
    if hints:
        right = len(BROWSER_RUNS) - len(hints)
        fail(f"{right} of {len(BROWSER_RUNS)} right. " + " ".join(hints))
    return (f"all {len(BROWSER_RUNS)} match what the recorded Chromium browsers selected; run browser_pairs(...) "
            "to see them.")


def browser_pairs(predictions: dict | Callable[[], dict] | None = None, live: bool | None = False):
    """Your predictions next to the pair Alice's Chromium selected, one row per NAT pair of exercise 4.

    ``live=False`` (the default) loads the recordings made in the real lab; ``live=None`` runs the two browsers
    in your own lab when this machine can (about 5 s a pair), else loads the recording; ``live=True``
    insists on the lab. Never raises for an unfinished prediction.
    """
    import pandas as pd

    from ..recorded import real_run

    if callable(predictions):
        try:
            predictions = predictions()
        except Exception:  # not written yet (the stub), or broken: the browsers' column still teaches
            predictions = None
    if not isinstance(predictions, dict):
        predictions = None
    rows = []
    for (a, b), (name, turn) in BROWSER_RUNS.items():
        run = real_run(name, live=live)
        sel = run.outcome["details"]["selected"] if run.outcome.get("ok") else None
        browser = f"{sel['local']['type']}-{sel['remote']['type']}" if sel else "fails"
        mine = parse_pair((predictions or {}).get((a, b)))
        rows.append({"alice's NAT": a, "bob's NAT": b, "bob's iceServers": "STUN + TURN" if turn else "STUN",
                     "your prediction": mine, "Chromium selected": browser, "same": mine == browser,
                     "world": run.world})
    return pd.DataFrame(rows)


__all__ = ["check_priority", "check_pair_priority", "check_agent_pair_priority", "check_choose_pair",
           "ice_result", "best_valid", "compare_with_agents", "NAT_PAIRS", "BROWSER_RUNS",
           "check_browser_predictions", "browser_pairs", "parse_pair", "recorded_browser_pair"]
