"""Who is on the other end: the peerauth handshake, and Mallory at Alice's hole in the sim and the real lab."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import textwrap

import pytest

from p2plab import peerauth, recorded
from p2plab.errors import ConfigurationError, P2PLabError
from p2plab.peerauth import Handshake, Identity
from p2plab.scenarios.peer_auth import MALLORY_IP, SECRET, run_peer_auth

from conftest import need, need_netns

A, B = ("203.0.113.10", 5000), ("198.51.100.20", 5000)


def _pair(seed: int = 0):
    alice, bob = Identity.from_seed(f"a{seed}"), Identity.from_seed(f"b{seed}")
    return alice, bob, Handshake("initiator", alice, bob.fingerprint, seed=1), Handshake("responder", bob,
                                                                                          alice.fingerprint, seed=2)


def _handshake(a, b):
    reply, v1 = b.receive(a.hello(B), A)
    confirm, v2 = a.receive(reply[0], B)
    out, v3 = b.receive(confirm[0], A)
    return [v1, v2, v3], reply[0], confirm[0]


def test_fingerprint_is_sha256_of_the_key_written_like_sdp():
    key = Identity.from_seed("x").public
    fp = peerauth.fingerprint_of(key)
    assert fp.startswith("sha-256 ") and len(fp.split()[1].split(":")) == 32
    assert fp.split()[1].replace(":", "").lower() == hashlib.sha256(key).hexdigest()


def test_the_handshake_authenticates_both_sides_and_protects_data():
    _, _, a, b = _pair()
    verdicts, _, _ = _handshake(a, b)
    assert [v.accepted for v in verdicts] == [True, True, True]
    assert a.session.peer == B and b.session.peer == A
    msg, to = a.seal(b"hello bob")
    assert to == B and b"hello bob" not in msg
    _, v = b.receive(msg, A)
    assert v.accepted and v.data == b"hello bob"
    back, _ = b.seal(b"hi alice")
    assert a.receive(back, B)[1].data == b"hi alice"


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 by hand (stdlib hmac): an independent check of the key schedule the docstring states."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, i = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        okm += block
        i += 1
    return okm[:length]


def test_the_keys_are_hkdf_sha256_of_the_x25519_secret_over_the_transcript():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    _, _, a, b = _pair()
    hello = a.hello(B)
    eph = a.pending[B].ephemeral
    reply, _ = b.receive(hello, A)
    a.receive(reply[0], B)
    shared = eph.exchange(X25519PublicKey.from_public_bytes(reply[0][4:36]))
    okm = _hkdf_sha256(shared, hashlib.sha256(hello + reply[0]).digest(), b"p2plab-peerauth v1 keys", 64)
    msg, _ = a.seal(b"check")
    nonce = b"\0\0\0\0" + msg[4:12]
    assert ChaCha20Poly1305(okm[:32]).decrypt(nonce, msg[12:], msg[:12]) == b"check"
    assert struct.unpack("!Q", msg[4:12])[0] == 0


def test_a_key_whose_fingerprint_was_not_signalled_is_rejected():
    alice, bob, a, _ = _pair()
    mallory = Identity.from_seed("mallory")
    m = Handshake("responder", mallory, alice.fingerprint, seed=3)  # answers with her own key
    reply, _ = m.receive(a.hello(("203.0.113.66", 5000)), A)
    out, v = a.receive(reply[0], ("203.0.113.66", 5000))
    assert not v.accepted and "fingerprint mismatch" in v.why and out == [] and a.session is None


def test_bobs_public_key_without_bobs_private_key_fails_the_signature():
    alice, bob, a, b = _pair()
    hello = a.hello(B)
    reply, _ = b.receive(hello, A)
    forged = bytearray(reply[0])
    forged[-1] ^= 1  # any change to the signature (or to what it covers)
    _, v = a.receive(bytes(forged), B)
    assert not v.accepted and "signature does not verify" in v.why
    _, v = a.receive(reply[0], B)  # the genuine reply still works
    assert v.accepted


def test_responder_rejects_hello_from_an_unexpected_key_and_forged_confirm():
    alice, bob, a, b = _pair()
    other = Handshake("initiator", Identity.from_seed("eve"), bob.fingerprint, seed=4)
    out, v = b.receive(other.hello(B), ("203.0.113.66", 5000))
    assert not v.accepted and "fingerprint mismatch" in v.why and out == []
    reply, _ = b.receive(a.hello(B), A)
    _, v = b.receive(peerauth.MAGIC + bytes([peerauth.CONFIRM]) + bytes(64), A)
    assert not v.accepted and "signature does not verify" in v.why and b.session is None


def test_data_replays_tampering_and_strangers_are_refused():
    _, _, a, b = _pair()
    _, v = b.receive(peerauth.MAGIC + bytes([peerauth.DATA]) + bytes(8) + bytes(20), A)
    assert not v.accepted and "before the handshake" in v.why
    _handshake(a, b)
    msg, _ = a.seal(b"one")
    assert b.receive(msg, A)[1].accepted
    _, v = b.receive(msg, A)
    assert not v.accepted and "replay" in v.why
    msg2 = bytearray(a.seal(b"two")[0])
    msg2[14] ^= 0x80
    _, v = b.receive(bytes(msg2), A)
    assert not v.accepted and "authentication tag" in v.why
    _, v = b.receive(a.seal(b"three")[0], ("203.0.113.66", 5000))
    assert not v.accepted and "not from the authenticated peer" in v.why
    _, v = b.receive(b"hello", A)
    assert not v.accepted and v.kind == "other"


def test_bad_use_says_what_to_do():
    alice = Identity.from_seed("a")
    with pytest.raises(ConfigurationError, match="initiator"):
        Handshake("boss", alice, alice.fingerprint)
    with pytest.raises(ConfigurationError, match="fingerprint"):
        Handshake("initiator", alice, "AB:CD")
    with pytest.raises(P2PLabError, match="finish the handshake"):
        Handshake("initiator", alice, alice.fingerprint).seal(b"x")


# -- the simulator ----------------------------------------------------------------------------------
def test_sim_without_authentication_mallory_wins_the_race_and_reads_the_secret():
    r = run_peer_auth(auth=False)
    assert r.alice_talks_to == "mallory" and not r.delivered and r.mallory_read == [SECRET]


def test_sim_with_authentication_every_packet_of_mallory_is_rejected():
    r = run_peer_auth(auth=True)
    assert r.alice_talks_to == "bob" and r.bob_talks_to == "alice" and r.delivered and r.mallory_read == []
    df = r.df
    from_mallory = df[df["sender"] == "mallory"]
    assert len(from_mallory) == 4 and set(from_mallory["verdict"]) == {"rejected"}
    assert {"plain", "REPLY", "DATA"} == set(from_mallory["kind"])
    assert list(df[df["sender"] != "mallory"]["verdict"]) == ["accepted"] * 5
    sent = r.trace.df.query("node == 'mallory' and action == 'sent'")
    assert len(sent) >= 4 and (r.trace.df.query("node == 'alice' and action == 'delivered'")["src"]
                               == MALLORY_IP).any()


def test_sim_a_port_restricted_nat_filters_mallory_before_alice_sees_her():
    r = run_peer_auth(auth=True, nat_a="port-restricted-cone")
    assert r.alice_talks_to == "bob" and not (r.df["sender"] == "mallory").any()
    drops = r.trace.df.query("node == 'nat-a' and action == 'dropped'")
    assert (drops["src"] == MALLORY_IP).any()


def test_sim_without_mallory_and_deterministic():
    r = run_peer_auth(auth=True, attacker=False)
    assert r.delivered and r.rejected == 0
    assert run_peer_auth().verdicts == run_peer_auth().verdicts


def test_cli_sim_json():
    out = subprocess.run([sys.executable, "-m", "p2plab", "peer-auth", "--world", "sim", "--attacker",
                          "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["alice_talks_to"] == "bob" and row["rejected"] == 4


# -- the real lab -----------------------------------------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("auth", [False, True])
def test_real_lab_mallory_at_alices_hole(auth):
    need_netns()
    need("tcpdump")
    from p2plab.netns.peerauthlab import run_peer_auth as real

    r = real(auth=auth)
    o = r["outcome"]
    df = r["trace"].df
    assert ((df["node"] == "alice") & (df["action"] == "delivered") & (df["src"] == MALLORY_IP)).any()
    if auth:
        assert o["alice_talks_to"] == "bob" and o["delivered"] and o["mallory_read"] == []
        mallory = [v for v in r["verdicts"] if v["sender"] == "mallory"]
        assert {v["verdict"] for v in mallory} == {"rejected"}
        # her four forgeries are each rejected, each for its own reason; on a real network a packet may
        # also arrive twice (a retransmitted punch) and be rejected again, so count reasons, not packets
        reasons = {v["why"].split(":")[0] for v in mallory}
        assert len(reasons) == 4 and o["rejected"] >= 4, reasons
    else:
        assert o["alice_talks_to"] == "mallory" and o["mallory_read"] == [SECRET]


@pytest.mark.timeout(180)
def test_real_lab_as_an_ordinary_user():
    """P2PLAB_ROOTLESS=1: the lab inside a user namespace, with exactly an ordinary user's powers."""
    need("ip", "nft", "unshare", "nsenter")
    from p2plab.netns import rootless

    ok, why = rootless.possible()
    if not ok:
        from conftest import missing

        missing(f"rootless labs need unprivileged user namespaces: {why}")
    script = textwrap.dedent("""
        import json
        from p2plab.netns.peerauthlab import run_peer_auth
        r = run_peer_auth(auth=True)
        print(json.dumps({**r["outcome"], "packets": len(r["trace"])}))
    """)
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "P2PLAB_ROOTLESS": "1"},
                         capture_output=True, text=True, timeout=150)
    assert out.returncode == 0, out.stderr[-3000:]
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert row["alice_talks_to"] == "bob" and row["rejected"] == 4 and row["packets"] > 20


@pytest.mark.timeout(180)
def test_recording_still_matches_a_fresh_run(tmp_path):
    need_netns()
    need("tcpdump")
    recorded.record(["peer-auth"], out=tmp_path)
    fresh, shipped = recorded.load("peer-auth", data=tmp_path), recorded.load("peer-auth")
    # which host answered which punch with an ACK depends on timing; the kinds of packet do not
    kinds = lambda t: {s[2] for s in recorded.shape(t) if s[1] == "sent" and s[0] != "mallory"}  # noqa: E731
    assert kinds(fresh) == kinds(shipped)
    mallory = lambda t: {s for s in recorded.shape(t) if s[1] == "sent" and s[0] == "mallory"}  # noqa: E731
    assert mallory(fresh) == mallory(shipped) and len(mallory(fresh)) == 4
    assert recorded.outcome("peer-auth", data=tmp_path)["ok"] is recorded.outcome("peer-auth")["ok"] is True
    verdicts = recorded.outcome("peer-auth")["details"]["verdicts"]
    assert [v["verdict"] for v in verdicts if v["sender"] == "mallory"] == ["rejected"] * 4
