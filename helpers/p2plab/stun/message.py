"""STUN and TURN messages as bytes: a small, fast codec (RFC 8489, RFC 8656, RFC 5780, RFC 8445).

A STUN message is a 20-byte header followed by attributes (type, length, value, padded to 4
bytes)::

     0                   1                   2                   3
    |0 0|  message type (14 bits)   |        message length         |
    |                  magic cookie 0x2112A442                      |
    |              transaction ID (96 bits, 12 bytes)               |
    |  attributes ...                                               |

The message type packs a *method* (Binding, Allocate, ...) and a *class* (request, indication,
success response, error response). ``StunMessage`` holds them in readable form; ``encode()``
turns it into bytes (optionally adding MESSAGE-INTEGRITY and FINGERPRINT) and ``decode()`` turns
bytes back into a message. Anything malformed raises ``StunParseError`` saying what is wrong and
at which byte offset - never any other exception.

TURN's ChannelData frames (a 4-byte header: channel number and length) are handled by
``ChannelData``. ``parse(data)`` tells the two apart.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import secrets
import struct
import zlib
from collections.abc import Iterable
from typing import Any

from ..errors import StunParseError
from .precis import opaque_string, saslprep

Addr = tuple[str, int]

MAGIC_COOKIE = 0x2112A442
_COOKIE_BYTES = struct.pack("!I", MAGIC_COOKIE)
HEADER_LEN = 20
FINGERPRINT_XOR = 0x5354554E

# -- methods and classes ----------------------------------------------------------------------
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009
METHODS = {
    BINDING: "Binding", ALLOCATE: "Allocate", REFRESH: "Refresh", SEND: "Send", DATA: "Data",
    CREATE_PERMISSION: "CreatePermission", CHANNEL_BIND: "ChannelBind",
}

REQUEST = 0
INDICATION = 1
SUCCESS = 2
ERROR = 3
CLASSES = {REQUEST: "request", INDICATION: "indication", SUCCESS: "success response", ERROR: "error response"}

# -- attributes ------------------------------------------------------------------------------
# kind tells how the value is encoded; see _decode_value / _encode_value.
ATTRIBUTES: dict[int, tuple[str, str]] = {
    0x0001: ("MAPPED-ADDRESS", "addr"),
    0x0003: ("CHANGE-REQUEST", "u32"),
    0x0006: ("USERNAME", "str"),
    0x0008: ("MESSAGE-INTEGRITY", "bytes20"),
    0x0009: ("ERROR-CODE", "error"),
    0x000A: ("UNKNOWN-ATTRIBUTES", "u16list"),
    0x000C: ("CHANNEL-NUMBER", "channel"),
    0x000D: ("LIFETIME", "u32"),
    0x0012: ("XOR-PEER-ADDRESS", "xaddr"),
    0x0013: ("DATA", "bytes"),
    0x0014: ("REALM", "str"),
    0x0015: ("NONCE", "str"),
    0x0016: ("XOR-RELAYED-ADDRESS", "xaddr"),
    0x0017: ("REQUESTED-ADDRESS-FAMILY", "transport"),
    0x0018: ("EVEN-PORT", "u8"),
    0x0019: ("REQUESTED-TRANSPORT", "transport"),
    0x001A: ("DONT-FRAGMENT", "empty"),
    0x0020: ("XOR-MAPPED-ADDRESS", "xaddr"),
    0x0022: ("RESERVATION-TOKEN", "bytes8"),
    0x0024: ("PRIORITY", "u32"),
    0x0025: ("USE-CANDIDATE", "empty"),
    0x0026: ("PADDING", "bytes"),
    0x0027: ("RESPONSE-PORT", "channel"),
    0x8000: ("ADDITIONAL-ADDRESS-FAMILY", "transport"),
    0x8001: ("ADDRESS-ERROR-CODE", "addrerror"),
    0x8022: ("SOFTWARE", "str"),
    0x8023: ("ALTERNATE-SERVER", "addr"),
    0x8028: ("FINGERPRINT", "u32"),
    0x8029: ("ICE-CONTROLLED", "u64"),
    0x802A: ("ICE-CONTROLLING", "u64"),
    0x802B: ("RESPONSE-ORIGIN", "addr"),
    0x802C: ("OTHER-ADDRESS", "addr"),
}
ATTRIBUTE_TYPES: dict[str, int] = {name: t for t, (name, _) in ATTRIBUTES.items()}

MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
REQUESTED_TRANSPORT = 0x0019
DONT_FRAGMENT = 0x001A
XOR_MAPPED_ADDRESS = 0x0020
RESERVATION_TOKEN = 0x0022
PRIORITY = 0x0024
USE_CANDIDATE = 0x0025
PADDING = 0x0026
RESPONSE_PORT = 0x0027
ADDITIONAL_ADDRESS_FAMILY = 0x8000
ADDRESS_ERROR_CODE = 0x8001
SOFTWARE = 0x8022
ALTERNATE_SERVER = 0x8023
FINGERPRINT = 0x8028
ICE_CONTROLLED = 0x8029
ICE_CONTROLLING = 0x802A
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C

# CHANGE-REQUEST flags (RFC 5780 section 7.2)
CHANGE_IP = 0x04
CHANGE_PORT = 0x02

# error codes used by p2plab (RFC 8489 section 14.8, RFC 8656 section 19)
ERROR_REASONS = {
    300: "Try Alternate", 400: "Bad Request", 401: "Unauthenticated", 403: "Forbidden",
    420: "Unknown Attribute", 437: "Allocation Mismatch", 438: "Stale Nonce",
    440: "Address Family not Supported", 441: "Wrong Credentials",
    442: "Unsupported Transport Protocol", 443: "Peer Address Family Mismatch",
    486: "Allocation Quota Reached", 500: "Server Error", 508: "Insufficient Capacity",
}

# TURN channel numbers: RFC 8656 section 12 allows 0x4000-0x4FFF (and reserves 0x5000-0xFFFF so
# that ChannelData cannot be mistaken for DTLS/RTP, RFC 7983). RFC 5766, which RFC 8656 replaced,
# allowed 0x4000-0x7FFF, and older clients (coturn's turnutils_uclient -c among them) still pick
# numbers up to 0x7FFF; p2plab's server accepts them for compatibility, its client never uses them.
CHANNEL_MIN, CHANNEL_MAX = 0x4000, 0x4FFF
CHANNEL_MAX_RFC5766 = 0x7FFF

# REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY values (RFC 8656 section 18.6)
FAMILY_IPV4, FAMILY_IPV6 = 0x01, 0x02
# EVEN-PORT: the R bit (most significant bit of its one byte) asks to reserve port N+1 too
EVEN_PORT_R = 0x80


def attribute_type(name: int | str) -> int:
    """The number of an attribute given by name ('XOR-MAPPED-ADDRESS') or number (0x0020)."""
    if isinstance(name, int):
        return name
    try:
        return ATTRIBUTE_TYPES[name.upper().replace("_", "-")]
    except KeyError:
        raise StunParseError(
            f"unknown STUN attribute name {name!r}; known names: {', '.join(ATTRIBUTE_TYPES)}"
        ) from None


def attribute_name(atype: int) -> str:
    """The name of attribute number ``atype`` ('0x1234' when p2plab does not know it)."""
    entry = ATTRIBUTES.get(atype)
    return entry[0] if entry else f"0x{atype:04X}"


# -- message type packing (RFC 8489 section 5) -------------------------------------------------
def pack_type(method: int, cls: int) -> int:
    """Interleave a 12-bit method and a 2-bit class into the 14-bit message type."""
    return ((method & 0x0F) | ((method & 0x70) << 1) | ((method & 0xF80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


def unpack_type(mtype: int) -> tuple[int, int]:
    """Split a message type into (method, class)."""
    method = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
    cls = ((mtype & 0x0010) >> 4) | ((mtype & 0x0100) >> 7)
    return method, cls


# -- keys -------------------------------------------------------------------------------------
def short_term_key(password: str) -> bytes:
    """The MESSAGE-INTEGRITY key for short-term credentials (ICE): the password itself."""
    return password.encode("utf-8")


def long_term_key(username: str, realm: str, password: str, prep: str | None = "opaque") -> bytes:
    """The key for long-term credentials (TURN), RFC 8489 section 18.5.1.1::

        MD5(username ":" OpaqueString(realm) ":" OpaqueString(password))

    (USERNAME itself must have been prepared with OpaqueString too, section 14.3.) ``prep``
    chooses the preparation: ``"opaque"`` (RFC 8265, the default), ``"saslprep"`` (RFC 4013, what
    RFC 5389 and RFC 5769's test vector use) or None (the strings as given). For printable ASCII
    all three give the same key. Strings that cannot be prepared raise ConfigurationError."""
    if prep is not None:
        if prep not in ("opaque", "saslprep"):
            raise ValueError(f"prep must be 'opaque', 'saslprep' or None; got {prep!r}")
        fn = opaque_string if prep == "opaque" else saslprep
        username, realm, password = fn(username, "username"), fn(realm, "realm"), fn(password, "password")
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def new_transaction_id(rng: random.Random | None = None) -> bytes:
    """12 random bytes: from ``secrets`` or, for reproducible simulations, from ``rng``."""
    if rng is None:
        return secrets.token_bytes(12)
    return rng.getrandbits(96).to_bytes(12, "big")


# -- value codecs ------------------------------------------------------------------------------
def _xor_key(transaction_id: bytes) -> bytes:
    return _COOKIE_BYTES + transaction_id


def _encode_addr(addr: Addr, xor: bool, transaction_id: bytes) -> bytes:
    ip = ipaddress.ip_address(addr[0])
    port = int(addr[1])
    packed = ip.packed
    family = 0x01 if ip.version == 4 else 0x02
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = _xor_key(transaction_id)
        packed = bytes(a ^ b for a, b in zip(packed, key))
    return struct.pack("!BBH", 0, family, port) + packed


def _decode_addr(value: bytes, xor: bool, transaction_id: bytes, offset: int, name: str) -> Addr:
    if len(value) < 4:
        raise StunParseError(f"{name} is {len(value)} bytes at offset {offset}; an address needs 8 (IPv4) or 20 (IPv6)")
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    if family == 0x01:
        size = 4
    elif family == 0x02:
        size = 16
    else:
        raise StunParseError(
            f"bad address family 0x{family:02x} in {name} at offset {offset + 1} (0x01 is IPv4, 0x02 IPv6)"
        )
    if len(value) != 4 + size:
        raise StunParseError(
            f"{name} at offset {offset} is {len(value)} bytes; an IPv{4 if size == 4 else 6} address needs {4 + size}"
        )
    packed = value[4:]
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = _xor_key(transaction_id)
        packed = bytes(a ^ b for a, b in zip(packed, key))
    ip = ipaddress.IPv4Address(packed) if size == 4 else ipaddress.IPv6Address(packed)
    return str(ip), port


def _fixed(value: bytes, size: int, offset: int, name: str) -> None:
    if len(value) != size:
        raise StunParseError(f"{name} at offset {offset} has a {len(value)}-byte value; it must be {size} bytes")


def _decode_value(atype: int, value: bytes, transaction_id: bytes, offset: int) -> Any:
    entry = ATTRIBUTES.get(atype)
    if entry is None:
        return value
    name, kind = entry
    if kind == "xaddr":
        return _decode_addr(value, True, transaction_id, offset, name)
    if kind == "addr":
        return _decode_addr(value, False, transaction_id, offset, name)
    if kind == "str":
        if len(value) > 763:
            raise StunParseError(f"{name} at offset {offset} is {len(value)} bytes; at most 763 are allowed")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StunParseError(f"{name} at offset {offset + exc.start} is not valid UTF-8 text") from None
    if kind == "u32":
        _fixed(value, 4, offset, name)
        return struct.unpack("!I", value)[0]
    if kind == "u8":
        _fixed(value, 1, offset, name)
        return value[0]
    if kind == "u64":
        _fixed(value, 8, offset, name)
        return struct.unpack("!Q", value)[0]
    if kind == "bytes20":
        _fixed(value, 20, offset, name)
        return value
    if kind == "bytes8":
        _fixed(value, 8, offset, name)
        return value
    if kind == "bytes":
        return value
    if kind == "empty":
        _fixed(value, 0, offset, name)
        return None
    if kind == "channel":
        _fixed(value, 4, offset, name)
        return struct.unpack("!H", value[:2])[0]
    if kind == "transport":
        _fixed(value, 4, offset, name)
        return value[0]
    if kind == "u16list":
        if len(value) % 2:
            raise StunParseError(f"{name} at offset {offset} has an odd length {len(value)}; it lists 2-byte types")
        return tuple(struct.unpack(f"!{len(value) // 2}H", value))
    if kind == "error":
        if len(value) < 4:
            raise StunParseError(f"ERROR-CODE at offset {offset} is {len(value)} bytes; it needs at least 4")
        klass, number = value[2] & 0x07, value[3]
        if not 3 <= klass <= 6 or number > 99:
            raise StunParseError(
                f"ERROR-CODE at offset {offset + 2} holds {klass}{number:02d}; codes run from 300 to 699"
            )
        try:
            reason = value[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise StunParseError(f"ERROR-CODE reason at offset {offset + 4} is not valid UTF-8 text") from None
        return klass * 100 + number, reason
    if kind == "addrerror":  # ADDRESS-ERROR-CODE: family, reserved, class, number, reason
        if len(value) < 4:
            raise StunParseError(f"{name} at offset {offset} is {len(value)} bytes; it needs at least 4")
        klass, number = value[2] & 0x07, value[3]
        if not 3 <= klass <= 6 or number > 99:
            raise StunParseError(f"{name} at offset {offset + 2} holds {klass}{number:02d}; codes run from 300 to 699")
        try:
            reason = value[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise StunParseError(f"{name} reason at offset {offset + 4} is not valid UTF-8 text") from None
        return value[0], klass * 100 + number, reason
    return value  # pragma: no cover


def _encode_value(atype: int, value: Any, transaction_id: bytes) -> bytes:
    entry = ATTRIBUTES.get(atype)
    if entry is None:
        return bytes(value)
    name, kind = entry
    if kind in ("xaddr", "addr"):
        return _encode_addr(value, kind == "xaddr", transaction_id)
    if kind == "str":
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if kind == "u32":
        return struct.pack("!I", int(value))
    if kind == "u8":
        return struct.pack("!B", int(value))
    if kind == "u64":
        return struct.pack("!Q", int(value))
    if kind in ("bytes20", "bytes8", "bytes"):
        return bytes(value)
    if kind == "empty":
        return b""
    if kind == "channel":
        return struct.pack("!HH", int(value), 0)
    if kind == "transport":
        return struct.pack("!B3x", int(value))
    if kind == "u16list":
        return struct.pack(f"!{len(value)}H", *value)
    if kind == "error":
        code, reason = value
        return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode("utf-8")
    if kind == "addrerror":
        family, code, reason = value
        return struct.pack("!BBBB", family, 0, code // 100, code % 100) + reason.encode("utf-8")
    raise ValueError(f"no encoder for {name}")  # pragma: no cover


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


class StunMessage:
    """One STUN/TURN message: method, class, transaction ID and an ordered list of attributes.

    Attributes are ``(type, value)`` pairs; values are Python objects: ``(ip, port)`` for
    addresses, ``str`` for USERNAME/REALM/NONCE/SOFTWARE, ``int`` for LIFETIME, PRIORITY, ...,
    ``(code, reason)`` for ERROR-CODE, ``bytes`` for DATA and unknown attributes, ``None`` for
    flags such as USE-CANDIDATE.

    >>> m = StunMessage(BINDING, REQUEST, transaction_id=bytes(12))
    >>> StunMessage.decode(m.encode()).method_name
    'Binding'
    """

    __slots__ = ("method", "cls", "transaction_id", "attributes", "raw", "_integrity_at", "_fingerprint_at")

    def __init__(self, method: int = BINDING, cls: int = REQUEST, transaction_id: bytes | None = None,
                 attributes: Iterable[tuple[int | str, Any]] | None = None,
                 rng: random.Random | None = None) -> None:
        self.method = method
        self.cls = cls
        self.transaction_id = transaction_id if transaction_id is not None else new_transaction_id(rng)
        if len(self.transaction_id) != 12:
            raise StunParseError(f"a transaction ID is 12 bytes; got {len(self.transaction_id)}")
        self.attributes: list[tuple[int, Any]] = [(attribute_type(t), v) for t, v in (attributes or [])]
        self.raw: bytes | None = None
        self._integrity_at: int | None = None
        self._fingerprint_at: int | None = None

    # -- reading ----------------------------------------------------------------------------
    @property
    def method_name(self) -> str:
        return METHODS.get(self.method, f"method 0x{self.method:03x}")

    @property
    def class_name(self) -> str:
        return CLASSES[self.cls]

    def get(self, name: int | str, default: Any = None) -> Any:
        """The value of the first attribute of that type (by name or number), or ``default``."""
        atype = attribute_type(name)
        for t, v in self.attributes:
            if t == atype:
                return v
        return default

    def get_all(self, name: int | str) -> list[Any]:
        """Every value of attributes of that type, in order (e.g. several XOR-PEER-ADDRESS)."""
        atype = attribute_type(name)
        return [v for t, v in self.attributes if t == atype]

    def __contains__(self, name: int | str) -> bool:
        atype = attribute_type(name)
        return any(t == atype for t, _ in self.attributes)

    def add(self, name: int | str, value: Any = None) -> StunMessage:
        """Append an attribute; returns the message so calls can be chained."""
        self.attributes.append((attribute_type(name), value))
        return self

    @property
    def error(self) -> tuple[int, str] | None:
        """(code, reason) of an error response, else None."""
        return self.get(ERROR_CODE)

    def unknown_required(self) -> list[int]:
        """Comprehension-required attribute types (below 0x8000) that p2plab does not know."""
        return [t for t, _ in self.attributes if t < 0x8000 and t not in ATTRIBUTES]

    def __repr__(self) -> str:
        parts = []
        for t, v in self.attributes:
            if isinstance(v, bytes) and len(v) > 16:
                v = v[:16].hex() + "..."
            elif isinstance(v, bytes):
                v = v.hex()
            parts.append(f"{attribute_name(t)}={v}")
        return (f"<STUN {self.method_name} {self.class_name} tid={self.transaction_id.hex()[:8]}.. "
                + " ".join(parts) + ">")

    # -- responses ----------------------------------------------------------------------------
    def response(self, cls: int = SUCCESS, attributes: Iterable[tuple[int | str, Any]] | None = None) -> StunMessage:
        """A response to this request: same method and transaction ID."""
        return StunMessage(self.method, cls, self.transaction_id, attributes)

    def error_response(self, code: int, reason: str | None = None,
                       attributes: Iterable[tuple[int | str, Any]] | None = None) -> StunMessage:
        """An error response carrying ERROR-CODE ``code`` (reason defaults to the RFC's phrase)."""
        msg = StunMessage(self.method, ERROR, self.transaction_id,
                          [(ERROR_CODE, (code, reason or ERROR_REASONS.get(code, "Error")))])
        msg.attributes.extend((attribute_type(t), v) for t, v in (attributes or []))
        return msg

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, key: bytes | None = None, fingerprint: bool = False) -> bytes:
        """The message as bytes. ``key`` adds MESSAGE-INTEGRITY (HMAC-SHA1); ``fingerprint`` adds
        FINGERPRINT (CRC-32 XOR 0x5354554e), both computed as RFC 8489 section 14.5/14.7 say."""
        tid = self.transaction_id
        body = bytearray()
        for atype, value in self.attributes:
            v = _encode_value(atype, value, tid)
            body += struct.pack("!HH", atype, len(v)) + v + b"\0" * _pad(len(v))
        head = struct.pack("!HH", pack_type(self.method, self.cls), 0) + _COOKIE_BYTES + tid
        if key is not None:
            # the length field counts up to and including MESSAGE-INTEGRITY while hashing
            hashed = head[:2] + struct.pack("!H", len(body) + 24) + head[4:] + body
            mac = hmac.new(key, bytes(hashed), hashlib.sha1).digest()
            body += struct.pack("!HH", MESSAGE_INTEGRITY, 20) + mac
        if fingerprint:
            crc_input = head[:2] + struct.pack("!H", len(body) + 8) + head[4:] + body
            crc = (zlib.crc32(bytes(crc_input)) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
            body += struct.pack("!HHI", FINGERPRINT, 4, crc)
        return head[:2] + struct.pack("!H", len(body)) + head[4:] + bytes(body)

    def __bytes__(self) -> bytes:
        return self.encode()

    # -- decoding ----------------------------------------------------------------------------
    @classmethod
    def decode(cls, data: bytes) -> StunMessage:
        """Parse bytes into a message, or raise StunParseError (what is wrong, at which offset)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StunParseError(f"STUN data must be bytes, not {type(data).__name__}")
        data = bytes(data)
        n = len(data)
        if n < HEADER_LEN:
            raise StunParseError(f"truncated header: {n} bytes at offset 0, a STUN header is 20 bytes")
        mtype, length = struct.unpack_from("!HH", data)
        if mtype & 0xC000:
            raise StunParseError(
                f"first two bits are {mtype >> 14:02b} at offset 0; a STUN message starts with 00"
            )
        cookie = struct.unpack_from("!I", data, 4)[0]
        if cookie != MAGIC_COOKIE:
            raise StunParseError(f"bad magic cookie 0x{cookie:08x} at offset 4 (STUN uses 0x2112A442)")
        if length % 4:
            raise StunParseError(f"message length {length} at offset 2 is not a multiple of 4")
        if HEADER_LEN + length != n:
            raise StunParseError(
                f"message length {length} at offset 2 does not match the {n - HEADER_LEN} bytes after the header"
            )
        method, klass = unpack_type(mtype)
        tid = data[8:20]
        msg = cls.__new__(cls)
        msg.method, msg.cls, msg.transaction_id = method, klass, tid
        msg.raw = data
        msg._integrity_at = msg._fingerprint_at = None
        attrs: list[tuple[int, Any]] = []
        pos = HEADER_LEN
        while pos < n:
            if pos + 4 > n:
                raise StunParseError(f"truncated attribute header at offset {pos}")
            atype, alen = struct.unpack_from("!HH", data, pos)
            end = pos + 4 + alen
            if end > n:
                raise StunParseError(
                    f"attribute {attribute_name(atype)} at offset {pos} has length {alen}, which overruns "
                    f"the message by {end - n} bytes"
                )
            if msg._fingerprint_at is not None:
                raise StunParseError(f"attribute {attribute_name(atype)} at offset {pos} follows FINGERPRINT, "
                                     "which must be last")
            value = data[pos + 4:end]
            if msg._integrity_at is None or atype == FINGERPRINT:
                attrs.append((atype, _decode_value(atype, value, tid, pos + 4)))
            # attributes after MESSAGE-INTEGRITY (other than FINGERPRINT) are ignored (RFC 8489 14.5)
            if atype == MESSAGE_INTEGRITY and msg._integrity_at is None:
                msg._integrity_at = pos
            elif atype == FINGERPRINT:
                msg._fingerprint_at = pos
            pos = end + _pad(alen)
            if pos > n:
                raise StunParseError(f"padding of attribute {attribute_name(atype)} at offset {end} overruns the message")
        msg.attributes = attrs
        return msg

    # -- verification ------------------------------------------------------------------------
    @property
    def has_integrity(self) -> bool:
        return self._integrity_at is not None

    @property
    def has_fingerprint(self) -> bool:
        return self._fingerprint_at is not None

    def check_integrity(self, key: bytes) -> bool:
        """True if this decoded message's MESSAGE-INTEGRITY matches ``key``."""
        if self.raw is None or self._integrity_at is None:
            return False
        at = self._integrity_at
        raw = self.raw
        hashed = raw[:2] + struct.pack("!H", at + 24 - HEADER_LEN) + raw[4:at]
        expected = hmac.new(key, hashed, hashlib.sha1).digest()
        return hmac.compare_digest(expected, raw[at + 4:at + 24])

    def check_fingerprint(self) -> bool:
        """True if this decoded message carries a correct FINGERPRINT."""
        if self.raw is None or self._fingerprint_at is None:
            return False
        at = self._fingerprint_at
        raw = self.raw
        crc = (zlib.crc32(raw[:at]) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
        return struct.unpack_from("!I", raw, at + 4)[0] == crc


# -- ChannelData -------------------------------------------------------------------------------
class ChannelData:
    """A TURN ChannelData frame: 2-byte channel number (0x4000-0x4FFF), 2-byte length, data.

    ``rfc5766=True`` also accepts the older range 0x4000-0x7FFF that RFC 5766 allowed (servers
    use it to stay compatible with clients that still pick such numbers)."""

    __slots__ = ("channel", "data")

    def __init__(self, channel: int, data: bytes, rfc5766: bool = False) -> None:
        if not CHANNEL_MIN <= channel <= (CHANNEL_MAX_RFC5766 if rfc5766 else CHANNEL_MAX):
            raise StunParseError(f"channel number 0x{channel:04x} is outside 0x4000-0x4FFF (RFC 8656 section 12)"
                                 + ("" if rfc5766 else "; RFC 5766's 0x4000-0x7FFF needs rfc5766=True"))
        if len(data) > 0xFFFF:
            raise StunParseError(f"ChannelData carries at most 65535 bytes; got {len(data)}")
        self.channel = channel
        self.data = bytes(data)

    def encode(self, pad: bool = False) -> bytes:
        """The frame as bytes; ``pad`` adds zero padding to a multiple of 4 (optional over UDP)."""
        out = struct.pack("!HH", self.channel, len(self.data)) + self.data
        return out + b"\0" * _pad(len(self.data)) if pad else out

    def __bytes__(self) -> bytes:
        return self.encode()

    @classmethod
    def decode(cls, data: bytes, rfc5766: bool = False) -> ChannelData:
        """Parse a ChannelData frame (padding up to 3 bytes after the data is allowed);
        ``rfc5766`` accepts channel numbers up to 0x7FFF."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StunParseError(f"ChannelData must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) < 4:
            raise StunParseError(f"truncated ChannelData header: {len(data)} bytes at offset 0, the header is 4")
        channel, length = struct.unpack_from("!HH", data)
        if not CHANNEL_MIN <= channel <= (CHANNEL_MAX_RFC5766 if rfc5766 else CHANNEL_MAX):
            raise StunParseError(f"channel number 0x{channel:04x} at offset 0 is outside "
                                 + ("0x4000-0x7FFF (RFC 5766)" if rfc5766 else "0x4000-0x4FFF"))
        if 4 + length > len(data):
            raise StunParseError(
                f"ChannelData length {length} at offset 2 overruns the {len(data) - 4} bytes that follow"
            )
        extra = len(data) - 4 - length
        if extra > 3:
            raise StunParseError(f"{extra} bytes after the ChannelData payload at offset {4 + length}; "
                                 "only padding (up to 3 bytes) may follow")
        return cls(channel, data[4:4 + length], rfc5766)

    def __repr__(self) -> str:
        return f"<ChannelData 0x{self.channel:04x} {len(self.data)} bytes>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelData) and (self.channel, self.data) == (other.channel, other.data)

    __hash__ = None  # type: ignore[assignment]


def is_stun(data: bytes) -> bool:
    """A quick check: could these bytes be a STUN message (header shape and magic cookie)?"""
    return (len(data) >= HEADER_LEN and data[0] < 0x40 and data[4:8] == _COOKIE_BYTES
            and (len(data) - HEADER_LEN) % 4 == 0
            and struct.unpack_from("!H", data, 2)[0] == len(data) - HEADER_LEN)


def is_channel_data(data: bytes) -> bool:
    """A quick check: do these bytes start like a TURN ChannelData frame (first byte 0x40-0x4F)?"""
    return len(data) >= 4 and 0x40 <= data[0] <= 0x4F


def parse(data: bytes) -> StunMessage | ChannelData:
    """Decode either a STUN message or a ChannelData frame (the first byte tells them apart)."""
    if len(data) >= 1 and 0x40 <= data[0] <= 0x4F:
        return ChannelData.decode(data)
    return StunMessage.decode(data)
