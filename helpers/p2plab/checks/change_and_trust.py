"""Lab 10 - Change and trust: when consent freshness declares a path dead (RFC 7675), and
authenticating the peer over a punched path (``p2plab.peerauth``) against Mallory.

The learner writes

* ``consent_expiry(packets, selected_at)``: from the STUN Binding messages an ICE agent received on
  its selected pair (dicts with ``time``, ``kind`` "request"/"response" and ``authenticated``), the
  time its consent expires: 30 s after the last authenticated *response* to its own checks, or
  after the check that selected the pair when none came. Compared with the moment p2plab's ICE
  agents declared consent lost in the network-change scenario, for eight seeds.
* ``fingerprint(public_key)``: the SHA-256 fingerprint of a raw public key, written like SDP's
  ``a=fingerprint`` (``"sha-256 AB:CD:..."``).
* ``accept_reply(reply, hello, expected)``: the initiator's decision on a REPLY of the handshake:
  ``(True, why)`` only when the key it carries has the signalled fingerprint *and* its signature
  covers this HELLO; ``(False, why)`` for Mallory's forgeries, a replayed REPLY and garbage.

Each check never raises and gives a hint about the concept, never the answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .. import peerauth
from .common import check, close, fail, is_number

LAB = "change_and_trust"
TIMEOUT = 30.0  # RFC 7675 section 5.1
SEEDS = tuple(range(8))

# -- exercise 1: consent freshness -------------------------------------------------------------------
_RUNS: dict[int, Any] = {}


def network_change(seed: int = 0) -> Any:
    """``run_network_change(detect="consent", seed=seed)``, computed once per seed."""
    from ..scenarios.network_change import run_network_change

    if seed not in _RUNS:
        _RUNS[seed] = run_network_change(detect="consent", seed=seed)
    return _RUNS[seed]


def consent_packets(result: Any, who: str = "alice") -> tuple[list[dict], float]:
    """The STUN Binding messages ``who`` received from the remote end of its first selected pair, until
    its application restarted ICE: ``([{"time", "kind", "authenticated"}, ...], selected_at)``.

    Everything p2plab's agents accept passed its MESSAGE-INTEGRITY check, so ``authenticated`` is
    True for all of them here; the check adds forged ones of its own."""
    old = result.old_pair.split(" <-> ")
    remote = old[1] if who == "alice" else old[0]
    ip, _, port = remote.split()[1].rpartition(":")
    selected_at = result.at("connected")
    until = result.at("restart") or float("inf")
    df = result.trace.df
    rows = df[(df["node"] == who) & (df["direction"] == "in") & (df["protocol"] == "STUN") & (df["src"] == ip)
              & (df["sport"] == int(port)) & (df["time"] >= selected_at - 1e-9) & (df["time"] <= until)]
    packets = [{"time": round(float(t), 6), "kind": "response" if "success" in s or "error" in s else "request",
                "authenticated": True} for t, s in zip(rows["time"], rows["summary"])]
    return packets, float(selected_at)


def reference_consent_expiry(packets: list[dict], selected_at: float) -> float:
    """RFC 7675 section 5.1: 30 s after the last authenticated answer (the selecting check counts)."""
    answers = [p["time"] for p in packets if p["kind"] == "response" and p["authenticated"]]
    return max([selected_at, *answers]) + TIMEOUT


def _scripted() -> list[tuple[str, list[dict], float]]:
    def p(t: float, kind: str = "response", auth: bool = True) -> dict:
        return {"time": t, "kind": kind, "authenticated": auth}

    return [
        ("answers at 5.1 s and 10.2 s", [p(5.1), p(10.2)], 0.5),
        ("no answer at all after the pair was selected at 2.0 s", [], 2.0),
        ("the peer's own consent checks (requests) keep arriving until 40 s, but no answer after 4.8 s",
         [p(4.8), p(9.0, "request"), p(20.0, "request"), p(40.0, "request")], 0.8),
        ("an answer at 6 s, then a forged, unauthenticated 'answer' at 25 s",
         [p(6.0), p(25.0, auth=False)], 1.0),
        ("answers every 5 s until 30 s", [p(5.0 * k) for k in range(1, 7)], 0.2),
    ]


@check(LAB, "the cell 'Exercise 1: when does consent expire?', function consent_expiry")
def check_consent_expiry(consent_expiry: Any) -> str:
    cases = [(what, pk, sel) for what, pk, sel in _scripted()]
    for seed in SEEDS:
        res = network_change(seed)
        packets, sel = consent_packets(res)
        cases.append((f"the network-change run with seed {seed} (alice's side)", packets, sel))
    for what, packets, sel in cases:
        got = consent_expiry([dict(x) for x in packets], sel)
        if not is_number(got):
            fail(f"{what}: consent_expiry returned {got!r}; return a time in seconds (a number).")
        want = reference_consent_expiry(packets, sel)
        if close(got, want, 1e-7):
            continue
        answers = [x["time"] for x in packets if x["kind"] == "response" and x["authenticated"]]
        last = max([sel, *answers])
        everything = max([sel, *(x["time"] for x in packets)])
        if close(got, everything + TIMEOUT, 1e-7) and any(x["kind"] == "request" for x in packets):
            fail(f"{what}: you counted the peer's *requests* too. A request shows that the peer's packets reach "
                 "you, not that yours reach the peer: consent is refreshed only by an answer to one of your own "
                 "checks (RFC 7675).")
        if close(got, everything + TIMEOUT, 1e-7) or (answers and close(got, max(
                [sel, *(x["time"] for x in packets if x["kind"] == "response")]) + TIMEOUT, 1e-7)):
            fail(f"{what}: you counted an answer that is not authenticated. Anyone can send a packet that looks "
                 "like an answer; only one whose MESSAGE-INTEGRITY verifies with the session's password refreshes "
                 "consent, or Mallory could keep a dead call alive.")
        if answers and close(got, min(answers) + TIMEOUT, 1e-7):
            fail(f"{what}: you started the 30 s from the *first* answer; every new answer restarts it, so count "
                 "from the last one.")
        if not answers and not close(got, sel + TIMEOUT, 1e-7):
            fail(f"{what}: no answer came, so consent is what the selecting check gave: it expires 30 s after "
                 f"selected_at ({sel + TIMEOUT:g} s here); you returned {got!r}.")
        if close(got - last, 5.0, 1e-7) or close(got - last, 6.0, 1e-7) or close(got - last, 4.0, 1e-7):
            fail(f"{what}: you added {got - last:g} s, the interval between consent checks. Consent lasts 30 s "
                 "after the last answer; checks go out every 4 to 6 s so that a few lost packets do not end it.")
        if close(got, last, 1e-7):
            fail(f"{what}: you returned the time of the last answer; consent expires 30 s later.")
        if close(got - last, 0.030, 1e-7) or close(got - last, 30000, 1e-7):
            fail(f"{what}: you returned {got - last:g} after the last answer: times here are seconds, and "
                 "consent lasts 30 s.")
        fail(f"{what}: you returned {got!r}; consent should expire at {want:.6f} s, 30 s after the last "
             "authenticated answer to your own checks.")
    res = network_change(0)
    mine = reference_consent_expiry(*consent_packets(res))
    return (f"right in all {len(cases)} cases, and it agrees with p2plab's ICE agent in {len(SEEDS)} runs: with "
            f"seed 0 consent expires at {mine:.3f} s, {mine - res.moved_at:.3f} s after alice moved.")


def compare_with_agents(consent_expiry: Callable, seeds: tuple[int, ...] = SEEDS) -> Any:
    """For a demo cell: per seed, when your function says alice's consent expires and when p2plab's
    agent declared it lost (a DataFrame), or None while consent_expiry is not written."""
    import pandas as pd

    from .common import try_it

    rows = []
    for seed in seeds:
        res = network_change(seed)
        packets, sel = consent_packets(res)
        mine = try_it(consent_expiry, packets, sel, _label="consent_expiry")
        if mine is None:
            return None
        lost = next(s.at for s in res.steps if s.name == "consent-lost" and s.who == "alice")
        answers = [p["time"] for p in packets if p["kind"] == "response"]
        rows.append({"seed": seed, "last answer": round(max(answers), 3), "you: expires": round(float(mine), 3),
                     "agent: consent lost": round(lost, 3), "after the move": round(lost - res.moved_at, 3),
                     "same": bool(close(float(mine), lost, 1e-6))})
    return pd.DataFrame(rows)


# -- exercise 2: fingerprints -----------------------------------------------------------------------
def _keys() -> list[bytes]:
    keys = [peerauth.Identity.from_seed(s).public for s in ("alice", "bob", "mallory", "p2plab-bob-0")]
    return keys + [bytes(32), bytes(range(32)), b"\xff" * 32]


@check(LAB, "the cell 'Exercise 2: fingerprints', function fingerprint")
def check_fingerprint(fingerprint: Any) -> str:
    for key in _keys():
        got = fingerprint(key)
        want = peerauth.fingerprint_of(key)
        if got == want:
            continue
        if not isinstance(got, str):
            fail(f"fingerprint(...) returned {type(got).__name__}; return text like 'sha-256 AB:CD:...'.")
        digest = hashlib.sha256(key).hexdigest()
        body = got.split(" ", 1)[-1]
        if got.upper() == want.upper():
            fail("the hex digits must be upper case (RFC 8122 writes the fingerprint as upper-case hex pairs, "
                 "as browsers put it in the SDP's a=fingerprint line).")
        if body.replace(":", "").lower() == digest and ":" not in body:
            fail("put a colon between every two hex digits: 'AB:CD:EF:...', 32 pairs for SHA-256.")
        if body.replace(":", "").lower() == digest and not got.startswith("sha-256 "):
            fail("start with the hash function's name and a space, 'sha-256 ', then the colon-separated hex.")
        if body.replace(":", "").lower() == digest:
            fail(f"close: you wrote {got[:40]!r}...; the form is 'sha-256 ' then the 32 bytes as upper-case hex "
                 "pairs separated by colons.")
        if body.replace(":", "").lower() in (hashlib.sha1(key).hexdigest(), hashlib.md5(key).hexdigest()):
            fail("that is not SHA-256: use hashlib.sha256(public_key).")
        if len(body.replace(":", "")) == 64 and body.replace(":", "").lower() == hashlib.sha256(key.hex().encode()).hexdigest():
            fail("you hashed the key's hex text; hash the 32 raw key bytes themselves.")
        fail(f"for the key {key[:4].hex()}... you returned {got[:48]!r}...; the fingerprint is the SHA-256 of the "
             "raw 32 key bytes, written 'sha-256 AB:CD:...'.")
    bob = peerauth.Identity.from_seed("bob")
    return f"the same text as p2plab.peerauth for {len(_keys())} keys; Bob's: {bob.fingerprint[:29]}..."


# -- exercise 3: accepting a REPLY ------------------------------------------------------------------
ALICE_EP, BOB_EP, MALLORY_EP = ("203.0.113.10", 5000), ("198.51.100.20", 5000), ("203.0.113.66", 5000)


def _mallory_replies(hello: bytes, mallory: peerauth.Identity, bob_public: bytes, seed: int = 9) -> list[bytes]:
    """What p2plab's Mallory sends back to a HELLO: a REPLY with her own key, then one with Bob's key
    signed with her own private key (as ``p2plab.scenarios.peer_auth.Mallory`` builds them)."""
    fake = peerauth.Handshake("responder", mallory, peerauth.fingerprint_of(bob_public), seed=seed)
    out = []
    for static in (mallory.public, bob_public):
        eph = fake._ephemeral()
        body = peerauth.MAGIC + bytes([peerauth.REPLY]) + fake._pub(eph) + static
        out.append(body + mallory.sign(peerauth._REPLY_CTX + hello + body[4:]))
    return out


def reply_cases() -> list[tuple[str, bytes, bytes, str, bool]]:
    """(what, reply, hello, expected fingerprint, accept?) built with p2plab.peerauth's real handshake."""
    alice, bob = peerauth.Identity.from_seed("alice"), peerauth.Identity.from_seed("bob")
    mallory = peerauth.Identity.from_seed("mallory")
    cases = []
    for seed in (1, 2):
        a = peerauth.Handshake("initiator", alice, bob.fingerprint, seed=seed)
        b = peerauth.Handshake("responder", bob, alice.fingerprint, seed=seed + 10)
        hello = a.hello(BOB_EP)
        (reply,), _ = b.receive(hello, ALICE_EP)
        cases.append((f"Bob's genuine REPLY (session {seed})", reply, hello, bob.fingerprint, True))
        own, copied = _mallory_replies(hello, mallory, bob.public, seed=seed + 20)
        cases.append((f"Mallory's REPLY with her own key (session {seed})", own, hello, bob.fingerprint, False))
        cases.append((f"Mallory's REPLY with Bob's public key, signed with her own private key (session {seed})",
                      copied, hello, bob.fingerprint, False))
    # a replay: Bob's REPLY to yesterday's HELLO, sent again against today's
    old_a = peerauth.Handshake("initiator", alice, bob.fingerprint, seed=100)
    old_b = peerauth.Handshake("responder", bob, alice.fingerprint, seed=101)
    (old_reply,), _ = old_b.receive(old_a.hello(BOB_EP), ALICE_EP)
    today = peerauth.Handshake("initiator", alice, bob.fingerprint, seed=102).hello(BOB_EP)
    cases.append(("Bob's REPLY from an earlier session, replayed by Mallory", old_reply, today, bob.fingerprint, False))
    good = cases[0]
    tampered = bytearray(good[1])
    tampered[10] ^= 1  # one bit of the ephemeral key
    cases.append(("Bob's REPLY with one bit of its ephemeral key flipped on the way", bytes(tampered), good[2],
                  bob.fingerprint, False))
    cases.append(("a 5-byte datagram", b"PA1\x02x", good[2], bob.fingerprint, False))
    cases.append(("a STUN Binding request (not a peerauth message)", bytes.fromhex("0001000021124a42") + bytes(12),
                  good[2], bob.fingerprint, False))
    cases.append(("Alice's own HELLO echoed back (132 bytes long, but kind HELLO)",
                  good[2][:3] + bytes([peerauth.HELLO]) + good[1][4:], good[2], bob.fingerprint, False))
    return cases


def reference_accept_reply(reply: bytes, hello: bytes, expected: str) -> tuple[bool, str]:
    """The reference decision (the checks of ``peerauth.Handshake``'s initiator)."""
    if len(reply) != 132 or reply[:3] != peerauth.MAGIC or reply[3] != peerauth.REPLY:
        return False, "not a REPLY"
    static, sig = reply[36:68], reply[68:]
    if peerauth.fingerprint_of(static) != expected:
        return False, "fingerprint mismatch"
    if not peerauth.verify(static, sig, peerauth._REPLY_CTX + hello + reply[4:68]):
        return False, "bad signature"
    return True, "the peer proved it holds the signalled key"


@check(LAB, "the cell 'Exercise 3: is this really Bob?', function accept_reply")
def check_accept_reply(accept_reply: Any) -> str:
    for what, reply, hello, expected, ok in reply_cases():
        try:
            got = accept_reply(reply, hello, expected)
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - say which input broke it, in one line
            fail(f"{what}: your accept_reply raised {type(exc).__name__}: {exc}. Bytes from the network can be "
                 "anything: check the length and the header (b'PA1' and kind 2, REPLY) before reading fields, "
                 "and return (False, why) for anything else.")
        if not (isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], bool)):
            fail(f"{what}: you returned {got!r}; return a pair (True or False, a reason in words).")
        accepted, _ = got
        if accepted == ok:
            continue
        if ok:
            fail(f"{what}: you rejected it, but it is genuine. The fingerprint is SHA-256 of bytes 36-67 (the static "
                 "key), and the signature (bytes 68-131) covers REPLY_CONTEXT + the HELLO + bytes 4-67 of the "
                 "REPLY. Run your fingerprint check first, then look at what you verify.")
        if "own key" in what:
            fail(f"{what}: you accepted it. Its signature is valid - Mallory signed with her own key - but that key "
                 "is not the one whose fingerprint came through signalling. Compare the key's fingerprint with "
                 "`expected` first.")
        if "Bob's public key" in what:
            fail(f"{what}: you accepted it. A public key is public: Mallory can copy Bob's into her REPLY, so a "
                 "matching fingerprint proves nothing by itself. Only the signature proves that the sender holds "
                 "the private key: verify it with the key in the REPLY.")
        if "replayed" in what or "flipped" in what:
            fail(f"{what}: you accepted it. The signature must cover *this* exchange: REPLY_CONTEXT + today's HELLO "
                 "+ bytes 4-67 of the REPLY (ephemeral and static key). An old signature, or one over other bytes, "
                 "must not verify.")
        fail(f"{what}: you accepted it; accept only a 132-byte REPLY (b'PA1', kind 2) whose key has the signalled "
             "fingerprint and whose signature verifies.")
    return (f"accepts Bob's genuine REPLY and rejects all {sum(not c[4] for c in reply_cases())} others: Mallory's "
            "own key, Bob's copied key, a replay, a flipped bit, garbage.")


def replies_at_alice(run: Any) -> list[dict]:
    """For a demo cell: every REPLY Alice received, with the HELLO she had sent to that endpoint:
    ``[{"time", "sender", "from", "reply", "hello"}, ...]``. ``run`` is a ``run_peer_auth`` result (the
    simulator) or ``real_run("peer-auth")`` (the real lab or its recording)."""
    from .. import topology as topo
    from ..scenarios.peer_auth import MALLORY_IP

    trace = run.trace
    names = getattr(run, "names", None) or {topo.ALICE_NAT_IP: "alice", topo.BOB_NAT_IP: "bob", MALLORY_IP: "mallory"}
    df = trace.df
    hellos: dict[tuple[str, int], bytes] = {}
    out = []
    for i in df.index[df["node"] == "alice"]:
        row = df.loc[i]
        raw = trace.raw(int(i))
        payload = raw[28:]
        kind = peerauth.kind_of(payload)
        if row["direction"] == "out" and kind == "HELLO":
            hellos[(row["dst"], int(row["dport"]))] = payload
        elif row["direction"] == "in" and kind == "REPLY":
            src = (row["src"], int(row["sport"]))
            out.append({"time": round(float(row["time"]), 3), "sender": names.get(src[0], "?"),
                        "from": f"{src[0]}:{src[1]}", "reply": payload, "hello": hellos.get(src, b"")})
    return out


__all__ = ["check_consent_expiry", "check_fingerprint", "check_accept_reply", "compare_with_agents",
           "consent_packets", "network_change", "reference_consent_expiry", "reference_accept_reply",
           "replies_at_alice", "reply_cases", "TIMEOUT"]
