"""Lab 10's checks: the solution passes, each typical mistake gets its own hint, garbage gets a clear
hint and never an exception."""

import hashlib

import pytest

from p2plab import peerauth
from p2plab.checks import change_and_trust as T

from _lab_solutions import solution

S = solution("10-change-and-trust")


def test_right_answers_pass():
    assert T.check_consent_expiry(S["consent_expiry"], quiet=True).passed
    assert T.check_fingerprint(S["fingerprint"], quiet=True).passed
    assert T.check_accept_reply(S["accept_reply"], quiet=True).passed


def test_stubs_not_started():
    def stub(*a, **k):
        raise NotImplementedError()

    for fn in (T.check_consent_expiry, T.check_fingerprint, T.check_accept_reply):
        assert fn(stub, quiet=True).not_started
    assert T.compare_with_agents(stub) is None


def test_the_reference_agrees_with_the_ice_agents_for_every_seed():
    for seed in T.SEEDS:
        res = T.network_change(seed)
        packets, selected = T.consent_packets(res)
        lost = next(s.at for s in res.steps if s.name == "consent-lost" and s.who == "alice")
        assert abs(T.reference_consent_expiry(packets, selected) - lost) < 1e-5, seed
        assert 24.0 - 1e-6 <= lost - res.moved_at <= 30.0 + 1e-6  # RFC 7675: 4-6 s checks, 30 s consent
        assert any(p["kind"] == "request" for p in packets)  # bob's own checks are there, and must not count


def _last(packets, selected, keep):
    return max([selected, *(p["time"] for p in packets if keep(p))])


@pytest.mark.parametrize("fn, hint", [
    (lambda packets, sel: _last(packets, sel, lambda p: True) + 30, "counted the peer's *requests*"),
    (lambda packets, sel: _last(packets, sel, lambda p: p["kind"] == "response") + 30, "not authenticated"),
    (lambda packets, sel: min([p["time"] for p in packets if p["kind"] == "response" and p["authenticated"]]
                              or [sel]) + 30, "*first* answer"),
    (lambda packets, sel: _last(packets, sel, lambda p: p["kind"] == "response" and p["authenticated"]) + 5,
     "interval between consent checks"),
    (lambda packets, sel: _last(packets, sel, lambda p: p["kind"] == "response" and p["authenticated"]) + 0.030,
     "times here are seconds"),
    (lambda packets, sel: _last(packets, sel, lambda p: p["kind"] == "response" and p["authenticated"]),
     "consent expires 30 s later"),
    (lambda packets, sel: max([p["time"] for p in packets if p["kind"] == "response" and p["authenticated"]] or [0])
     + 30, "no answer came"),
    (lambda packets, sel: "soon", "a number"),
    (lambda packets, sel: None, "a number"),
])
def test_consent_mistakes(fn, hint):
    r = T.check_consent_expiry(fn, quiet=True)
    assert not r.passed and hint in r.message, (hint, r.message)


def _fp(key, *, upper=True, sep=":", prefix="sha-256 ", algo=hashlib.sha256):
    digest = algo(key).hexdigest()
    digest = digest.upper() if upper else digest
    return prefix + sep.join(digest[i:i + 2] for i in range(0, len(digest), 2))


@pytest.mark.parametrize("fn, hint", [
    (lambda k: _fp(k, upper=False), "upper case"),
    (lambda k: _fp(k, sep=""), "colon between every two"),
    (lambda k: _fp(k, prefix=""), "hash function's name"),
    (lambda k: _fp(k, algo=hashlib.sha1), "not SHA-256"),
    (lambda k: _fp(k.hex().encode()), "hashed the key's hex text"),
    (lambda k: hashlib.sha256(k).digest(), "return text"),
    (lambda k: "sha-256 " + hashlib.sha256(k).hexdigest().upper()[:10], "SHA-256 of the raw 32 key bytes"),
])
def test_fingerprint_mistakes(fn, hint):
    r = T.check_fingerprint(fn, quiet=True)
    assert not r.passed and hint in r.message, (hint, r.message)


CTX = b"p2plab-peerauth v1 reply"


def _accept(check_kind=True, check_fp=True, check_sig=True, signed=lambda reply, hello: CTX + hello + reply[4:68],
            check_len=True):
    def fn(reply, hello, expected):
        if check_len and len(reply) != 132:
            return False, "length"
        if check_kind and (reply[:3] != b"PA1" or reply[3] != 2):
            return False, "kind"
        static, sig = reply[36:68], reply[68:]
        if check_fp and peerauth.fingerprint_of(static) != expected:
            return False, "fingerprint"
        if check_sig and not peerauth.verify(static, sig, signed(reply, hello)):
            return False, "signature"
        return True, "ok"
    return fn


def test_the_lab_constant_is_the_protocols():
    assert CTX == peerauth._REPLY_CTX


@pytest.mark.parametrize("fn, hint", [
    (_accept(check_fp=False), "not the one whose fingerprint came through signalling"),
    (_accept(check_sig=False), "A public key is public"),
    (_accept(signed=lambda reply, hello: CTX + b"" + reply[4:68]), "you rejected it, but it is genuine"),
    (_accept(signed=lambda reply, hello: hello + reply[4:68]), "you rejected it, but it is genuine"),
    (_accept(check_kind=False), "kind 2"),
    (_accept(check_len=False, check_kind=False), "raised"),
    (lambda reply, hello, expected: True, "return a pair"),
    (lambda reply, hello, expected: (True, "it says it is bob"), "you accepted it"),
    (lambda reply, hello, expected: (False, "nobody"), "you rejected it, but it is genuine"),
])
def test_accept_reply_mistakes(fn, hint):
    r = T.check_accept_reply(fn, quiet=True)
    assert not r.passed and hint in r.message, (hint, r.message)


def test_the_cases_are_what_the_handshake_decides():
    """Every case's expected verdict is what p2plab's own initiator decides on the same bytes."""
    for what, reply, hello, expected, ok in T.reply_cases():
        assert T.reference_accept_reply(reply, hello, expected)[0] == ok, what


def test_mallorys_replies_in_the_simulated_run_are_the_ones_the_cases_model():
    from p2plab.scenarios.peer_auth import run_peer_auth

    res = run_peer_auth(auth=True, seed=0)
    seen = T.replies_at_alice(res)
    assert [r["sender"] for r in seen] == ["mallory", "mallory", "bob"]
    bob_fp = peerauth.Identity.from_seed("p2plab-bob-0").fingerprint
    verdicts = [T.reference_accept_reply(r["reply"], r["hello"], bob_fp) for r in seen]
    assert [v[1] for v in verdicts] == ["fingerprint mismatch", "bad signature",
                                         "the peer proved it holds the signalled key"]
    assert [v[0] for v in verdicts] == [S["accept_reply"](r["reply"], r["hello"], bob_fp)[0] for r in seen]


def test_the_recorded_real_lab_replies_are_judged_the_same_way():
    from p2plab.recorded import real_run

    run = real_run("peer-auth", live=False)
    bob_fp = peerauth.Identity.from_seed("p2plab-bob-0").fingerprint
    seen = T.replies_at_alice(run)
    assert {r["sender"] for r in seen} == {"mallory", "bob"}
    for r in seen:
        assert S["accept_reply"](r["reply"], r["hello"], bob_fp)[0] == (r["sender"] == "bob"), r["sender"]
