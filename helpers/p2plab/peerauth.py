"""Who is on the other end? A minimal authenticated handshake over a punched path (sans-I/O).

A punched hole lets in whatever arrives from the right address - and with a full-cone NAT from
*any* address. Addresses prove nothing. What does: each peer holds a key pair, and the
**fingerprint** of its public key travels to the other side through signalling, the channel both
already trust (WebRTC puts the SHA-256 fingerprint of its DTLS certificate in the SDP as
``a=fingerprint``, RFC 8122 / RFC 8827; WireGuard and Tailscale exchange static public keys for
the Noise protocol). Over the punched path the peers then prove that they hold the private keys.

The handshake here is deliberately small (a teaching version, not for production - real systems
use DTLS 1.2/1.3 or Noise):

1. ``HELLO``  initiator -> responder: a fresh X25519 ephemeral key ``eA`` and its static Ed25519 key ``sA``.
2. ``REPLY``  responder -> initiator: ephemeral ``eB``, static ``sB``, and an Ed25519 signature by
   ``sB`` over the transcript (HELLO, eB, sB). The initiator checks that ``sB``'s fingerprint is the
   one signalled and that the signature verifies.
3. ``CONFIRM`` initiator -> responder: a signature by ``sA`` over (HELLO, REPLY). The responder
   checks ``sA``'s fingerprint (already on HELLO) and the signature.

Both then derive two keys from X25519(eA, eB) with HKDF-SHA256 (salt: SHA-256 of the transcript)
and protect application data with ChaCha20-Poly1305 (a 64-bit counter as nonce; a counter not
above the last one accepted is a replay). Every message received gets a ``Verdict``: accepted,
or rejected with the reason in words.

>>> alice, bob = Identity.from_seed(b"alice"), Identity.from_seed(b"bob")
>>> a = Handshake("initiator", alice, bob.fingerprint, seed=1)
>>> b = Handshake("responder", bob, alice.fingerprint, seed=2)
>>> hello = a.hello(("198.51.100.20", 5000))
>>> reply, v = b.receive(hello, ("203.0.113.10", 5000))
>>> confirm, v = a.receive(reply[0], ("198.51.100.20", 5000))
>>> _, v = b.receive(confirm[0], ("203.0.113.10", 5000))
>>> v.accepted, v.why
(True, 'the peer proved it holds the key whose fingerprint was signalled')
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass, field
from typing import Any

from .addresses import Endpoint, fmt
from .errors import ConfigurationError, P2PLabError

MAGIC = b"PA1"  # first bytes of every handshake/data message (not STUN: the first byte is 'P')
HELLO, REPLY, CONFIRM, DATA = 1, 2, 3, 4
KINDS = {HELLO: "HELLO", REPLY: "REPLY", CONFIRM: "CONFIRM", DATA: "DATA"}
_REPLY_CTX = b"p2plab-peerauth v1 reply"
_CONFIRM_CTX = b"p2plab-peerauth v1 confirm"
_KEYS_INFO = b"p2plab-peerauth v1 keys"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError as e:  # pragma: no cover - cryptography is a main dependency
        raise P2PLabError("p2plab.peerauth needs the 'cryptography' package: pip install cryptography") from e
    return ed25519, x25519, ChaCha20Poly1305, HKDF


def fingerprint_of(public_key: bytes) -> str:
    """The SHA-256 fingerprint of a raw public key, written like SDP's ``a=fingerprint``
    (RFC 8122: hash name, then upper-case hex bytes separated by colons)."""
    if len(public_key) != 32:
        raise ConfigurationError(f"an Ed25519 public key is 32 bytes; got {len(public_key)}")
    digest = hashlib.sha256(public_key).hexdigest().upper()
    return "sha-256 " + ":".join(digest[i:i + 2] for i in range(0, 64, 2))


class Identity:
    """A peer's long-term key pair (Ed25519). Give ``fingerprint`` to the other side through signalling."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        from cryptography.hazmat.primitives import serialization

        self.public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def generate(cls) -> Identity:
        """A new random identity (what a real application does once and keeps)."""
        ed25519, *_ = _crypto()
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes | str) -> Identity:
        """A reproducible identity for the course's simulations: the private key is SHA-256(seed).
        Anyone who knows the seed has the key - never do this for real."""
        ed25519, *_ = _crypto()
        seed = seed.encode() if isinstance(seed, str) else seed
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()))

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.public)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Identity({self.fingerprint[:23]}...)"


def verify(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Does ``signature`` (Ed25519) by ``public_key`` cover ``data``?"""
    ed25519, *_ = _crypto()
    from cryptography.exceptions import InvalidSignature

    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def kind_of(data: bytes) -> str | None:
    """``"HELLO"``, ``"REPLY"``, ``"CONFIRM"``, ``"DATA"`` for a peerauth message, else None."""
    if len(data) < 4 or not data.startswith(MAGIC):
        return None
    return KINDS.get(data[3])


@dataclass
class Verdict:
    """What the handshake decided about one message: from where, what kind, accepted or not, why."""

    source: Endpoint
    kind: str
    accepted: bool
    why: str
    data: bytes | None = None  # the plaintext of an accepted DATA message

    def as_dict(self) -> dict[str, Any]:
        return {"from": fmt(self.source), "kind": self.kind, "verdict": "accepted" if self.accepted else "rejected",
                "why": self.why}


@dataclass
class _Pending:
    ephemeral: Any
    hello: bytes


@dataclass
class Session:
    """Keys of an authenticated session with one peer address; ``seal``/``open`` application data."""

    peer: Endpoint
    peer_fingerprint: str
    send_key: bytes
    recv_key: bytes
    sent: int = 0
    highest: int = -1
    _aead: Any = field(default=None, repr=False)

    def seal(self, plaintext: bytes) -> bytes:
        """One DATA message: header, 64-bit counter, ChaCha20-Poly1305 ciphertext and tag."""
        _, _, ChaCha20Poly1305, _ = _crypto()
        head = MAGIC + bytes([DATA]) + struct.pack("!Q", self.sent)
        nonce = b"\0\0\0\0" + struct.pack("!Q", self.sent)
        self.sent += 1
        return head + ChaCha20Poly1305(self.send_key).encrypt(nonce, plaintext, head)

    def open(self, data: bytes) -> tuple[bytes | None, str]:
        """The plaintext of a DATA message, or (None, why it was refused)."""
        _, _, ChaCha20Poly1305, _ = _crypto()
        from cryptography.exceptions import InvalidTag

        if len(data) < 12 + 16:
            return None, "too short to be a protected DATA message"
        head, counter = data[:12], struct.unpack("!Q", data[4:12])[0]
        if counter <= self.highest:
            return None, f"replay: counter {counter} was already used (highest accepted {self.highest})"
        try:
            plain = ChaCha20Poly1305(self.recv_key).decrypt(b"\0\0\0\0" + data[4:12], data[12:], head)
        except InvalidTag:
            return None, "the authentication tag does not verify: not sealed with this session's key"
        self.highest = counter
        return plain, "sealed with the session key"


class Handshake:
    """One side of the handshake (sans-I/O: bytes in, bytes out, a ``Verdict`` for each message).

    ``role`` is ``"initiator"`` or ``"responder"``; ``expected`` is the fingerprint the other side
    signalled. The initiator may send ``hello(addr)`` to several addresses (every endpoint a punch
    revealed); the first address that proves the expected key wins, and application data from
    any other address is refused. ``seed`` makes the ephemeral keys reproducible (simulations).
    """

    def __init__(self, role: str, identity: Identity, expected: str, seed: int | None = None) -> None:
        if role not in ("initiator", "responder"):
            raise ConfigurationError(f"role is 'initiator' or 'responder', not {role!r}")
        if not isinstance(expected, str) or not expected.startswith("sha-256 "):
            raise ConfigurationError("expected is the peer's fingerprint as signalled, e.g. "
                                     "Identity.from_seed('bob').fingerprint ('sha-256 AB:CD:...')")
        self.role = role
        self.identity = identity
        self.expected = expected
        self.rng = random.Random(seed) if seed is not None else None
        self.pending: dict[Endpoint, _Pending] = {}
        self.session: Session | None = None
        self.verdicts: list[Verdict] = []

    @property
    def authenticated(self) -> bool:
        return self.session is not None

    def _ephemeral(self) -> Any:
        _, x25519, _, _ = _crypto()
        if self.rng is None:
            return x25519.X25519PrivateKey.generate()
        return x25519.X25519PrivateKey.from_private_bytes(self.rng.randbytes(32))

    @staticmethod
    def _pub(key: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def hello(self, addr: Endpoint) -> bytes:
        """Initiator: the HELLO to send to ``addr``."""
        if self.role != "initiator":
            raise ConfigurationError("only the initiator sends HELLO; the responder answers with receive()")
        eph = self._ephemeral()
        msg = MAGIC + bytes([HELLO]) + self._pub(eph) + self.identity.public
        self.pending[(addr[0], int(addr[1]))] = _Pending(eph, msg)
        return msg

    def _keys(self, eph: Any, peer_eph: bytes, transcript: bytes) -> tuple[bytes, bytes]:
        _, x25519, _, HKDF = _crypto()
        from cryptography.hazmat.primitives import hashes

        shared = eph.exchange(x25519.X25519PublicKey.from_public_bytes(peer_eph))
        okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=hashlib.sha256(transcript).digest(),
                   info=_KEYS_INFO).derive(shared)
        i2r, r2i = okm[:32], okm[32:]
        return (i2r, r2i) if self.role == "initiator" else (r2i, i2r)

    def _verdict(self, src: Endpoint, kind: str, ok: bool, why: str, data: bytes | None = None) -> Verdict:
        v = Verdict(src, kind, ok, why, data)
        self.verdicts.append(v)
        return v

    def receive(self, data: bytes, addr: Endpoint) -> tuple[list[bytes], Verdict]:
        """Handle one datagram from ``addr``: (messages to send back to ``addr``, the verdict)."""
        src = (addr[0], int(addr[1]))
        kind = kind_of(data)
        if kind is None:
            return [], self._verdict(src, "other", False, "not a peerauth message (no PA1 header)")
        if kind == "DATA":
            s = self.session
            if s is None:
                return [], self._verdict(src, kind, False, "no authenticated session yet: data before the handshake")
            if src != s.peer:
                return [], self._verdict(src, kind, False, f"not from the authenticated peer {fmt(s.peer)}: "
                                                            f"an address that never proved the signalled key")
            plain, why = s.open(data)
            return [], self._verdict(src, kind, plain is not None, why, plain)
        if self.role == "responder":
            return self._responder(kind, data, src)
        return self._initiator(kind, data, src)

    def _responder(self, kind: str, data: bytes, src: Endpoint) -> tuple[list[bytes], Verdict]:
        if kind == "HELLO":
            if len(data) != 4 + 64:
                return [], self._verdict(src, kind, False, "malformed HELLO (wrong length)")
            peer_static = data[36:68]
            fp = fingerprint_of(peer_static)
            if fp != self.expected:
                return [], self._verdict(src, kind, False, f"fingerprint mismatch: the key offered has {fp[:23]}..., "
                                                           f"signalling said {self.expected[:23]}...")
            eph = self._ephemeral()
            body = MAGIC + bytes([REPLY]) + self._pub(eph) + self.identity.public
            sig = self.identity.sign(_REPLY_CTX + data + body[4:])
            reply = body + sig
            self.pending[src] = _Pending(eph, data + reply)
            return [reply], self._verdict(src, kind, True, "the key's fingerprint is the one signalled; "
                                                           "it still has to prove it holds the private key")
        if kind == "CONFIRM":
            p = self.pending.get(src)
            if p is None:
                return [], self._verdict(src, kind, False, "CONFIRM without a HELLO from this address")
            hello = p.hello[:68]
            if not verify(hello[36:68], data[4:], _CONFIRM_CTX + p.hello):
                return [], self._verdict(src, kind, False, "the signature does not verify: the sender does not hold "
                                                           "the private key of the signalled fingerprint")
            send, recv = self._keys(p.ephemeral, hello[4:36], p.hello)
            if self.session is None:
                self.session = Session(src, self.expected, send, recv)
            del self.pending[src]
            return [], self._verdict(src, kind, True, "the peer proved it holds the key whose fingerprint was signalled")
        return [], self._verdict(src, kind, False, f"a responder does not expect {kind}")

    def _initiator(self, kind: str, data: bytes, src: Endpoint) -> tuple[list[bytes], Verdict]:
        if kind != "REPLY":
            return [], self._verdict(src, kind, False, f"an initiator does not expect {kind}")
        p = self.pending.get(src)
        if p is None:
            return [], self._verdict(src, kind, False, "REPLY from an address we sent no HELLO to")
        if len(data) != 4 + 64 + 64:
            return [], self._verdict(src, kind, False, "malformed REPLY (wrong length)")
        peer_eph, peer_static, sig = data[4:36], data[36:68], data[68:]
        fp = fingerprint_of(peer_static)
        if fp != self.expected:
            return [], self._verdict(src, kind, False, f"fingerprint mismatch: the key offered has {fp[:23]}..., "
                                                       f"signalling said {self.expected[:23]}...")
        if not verify(peer_static, sig, _REPLY_CTX + p.hello + data[4:68]):
            return [], self._verdict(src, kind, False, "the signature does not verify: the sender does not hold "
                                                       "the private key of the signalled fingerprint")
        transcript = p.hello + data
        confirm = MAGIC + bytes([CONFIRM]) + self.identity.sign(_CONFIRM_CTX + transcript)
        send, recv = self._keys(p.ephemeral, peer_eph, transcript)
        if self.session is None:
            self.session = Session(src, self.expected, send, recv)
        del self.pending[src]
        return [confirm], self._verdict(src, kind, True, "the peer proved it holds the key whose fingerprint "
                                                         "was signalled")

    def seal(self, plaintext: bytes) -> tuple[bytes, Endpoint]:
        """Application bytes for the authenticated peer: (DATA message, where to send it)."""
        if self.session is None:
            raise P2PLabError("no authenticated session yet: finish the handshake before sending data")
        return self.session.seal(plaintext), self.session.peer


__all__ = ["Identity", "Handshake", "Session", "Verdict", "fingerprint_of", "verify", "kind_of", "MAGIC"]
