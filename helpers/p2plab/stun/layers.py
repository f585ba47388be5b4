"""Scapy layers for STUN/TURN and ChannelData, so captured packets dissect field by field.

Importing this module binds the layers to UDP port 3478: ``IP(raw)`` of a STUN packet then shows
``STUN`` with its attributes (``pkt[STUN].attributes``), and a TURN ChannelData frame shows as
``ChannelData``. scapy's own ``scapy.contrib.stun`` knows only Binding and a few attributes; this
module covers every method and attribute ``p2plab.stun.message`` does. It is for display and
pcaps only - p2plab's protocols use the fast codec in ``message.py``.

This module imports scapy, so ``import p2plab`` never imports it; ``Trace.packet(i)`` does.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib

# isort: off
from .. import _scapy  # noqa: F401  (quiets scapy's import chatter: import it first)
# isort: on
from scapy.fields import (  # noqa: E402
    ByteEnumField,
    ByteField,
    Field,
    FieldLenField,
    IntField,
    LongField,
    PacketListField,
    ShortField,
    StrFixedLenField,
    StrLenField,
    XIntField,
    XShortEnumField,
    XShortField,
    XStrFixedLenField,
    XStrLenField,
)
from scapy.layers.inet import UDP  # noqa: E402
from scapy.packet import Packet, Raw, bind_bottom_up, bind_layers, bind_top_down  # noqa: E402

from .message import (  # noqa: E402
    ATTRIBUTES,
    CLASSES,
    FINGERPRINT_XOR,
    MAGIC_COOKIE,
    METHODS,
    pack_type,
    unpack_type,
)

STUN_PORT = 3478
_ATTR_NAMES = {t: name for t, (name, _) in ATTRIBUTES.items()}
_TYPE_NAMES = {pack_type(m, c): f"{mn} {cn}" for m, mn in METHODS.items() for c, cn in CLASSES.items()}


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


# -- attributes --------------------------------------------------------------------------------
class StunAttribute(Packet):
    """A STUN attribute p2plab does not dissect further: type, length, value (padded)."""

    name = "STUN attribute"
    fields_desc = [
        XShortEnumField("type", 0, _ATTR_NAMES),
        FieldLenField("length", None, length_of="value", fmt="!H"),
        XStrLenField("value", b"", length_from=lambda p: p.length),
        StrLenField("padding", b"", length_from=lambda p: _pad4(p.length or 0)),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kwargs):
        if _pkt and len(_pkt) >= 2:
            return _ATTR_CLASSES.get(struct.unpack("!H", _pkt[:2])[0], StunAttribute)
        return cls

    def extract_padding(self, s):
        return b"", s

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        # fill padding automatically when the user did not give it
        if "padding" in self.fieldtype and self.padding == b"" and len(pkt) % 4:
            pkt += b"\0" * _pad4(len(pkt))
        return pkt + pay


def _value_len(size: int):
    return lambda p, x: size if x is None else x


class _AddrValue(Field):
    """family + port + address (plain or XOR'ed with the magic cookie and transaction ID)."""

    __slots__ = ["xor"]

    def __init__(self, name: str, default, xor: bool) -> None:
        self.xor = xor
        Field.__init__(self, name, default, fmt="!B")

    def _key(self, pkt) -> bytes:
        parent = getattr(pkt, "parent", None) or getattr(pkt, "underlayer", None)
        tid = getattr(parent, "transaction_id", None) if parent is not None else None
        if not isinstance(tid, bytes) or len(tid) != 12:
            tid = bytes(12)
        return struct.pack("!I", MAGIC_COOKIE) + tid

    def getfield(self, pkt, s):
        n = pkt.length if pkt.length is not None else len(s)
        raw, rest = s[:n], s[n:]
        if len(raw) < 8:
            return rest, raw
        family, port = raw[1], struct.unpack("!H", raw[2:4])[0]
        packed = raw[4:]
        if self.xor:
            port ^= MAGIC_COOKIE >> 16
            packed = bytes(a ^ b for a, b in zip(packed, self._key(pkt)))
        try:
            ip = str(ipaddress.IPv4Address(packed) if family == 1 else ipaddress.IPv6Address(packed))
        except ValueError:
            return rest, raw
        return rest, (ip, port)

    def addfield(self, pkt, s, val):
        if isinstance(val, bytes):
            return s + val
        ip = ipaddress.ip_address(val[0])
        port, packed = int(val[1]), ip.packed
        if self.xor:
            port ^= MAGIC_COOKIE >> 16
            packed = bytes(a ^ b for a, b in zip(packed, self._key(pkt)))
        return s + struct.pack("!BBH", 0, 1 if ip.version == 4 else 2, port) + packed

    def i2len(self, pkt, x):
        if isinstance(x, bytes):
            return len(x)
        return 8 if x is None or ":" not in x[0] else 20

    def i2repr(self, pkt, x):
        if isinstance(x, tuple):
            return f"{x[0]}:{x[1]}"
        return repr(x)


def _addr_attr(atype: int, cls_name: str, xor: bool) -> type[Packet]:
    return type(cls_name, (StunAttribute,), {
        "name": f"STUN {_ATTR_NAMES[atype]}",
        "fields_desc": [
            XShortEnumField("type", atype, _ATTR_NAMES),
            FieldLenField("length", None, length_of="address", fmt="!H"),
            _AddrValue("address", ("0.0.0.0", 0), xor),
        ],
    })


def _text_attr(atype: int, cls_name: str) -> type[Packet]:
    return type(cls_name, (StunAttribute,), {
        "name": f"STUN {_ATTR_NAMES[atype]}",
        "fields_desc": [
            XShortEnumField("type", atype, _ATTR_NAMES),
            FieldLenField("length", None, length_of="text", fmt="!H"),
            StrLenField("text", b"", length_from=lambda p: p.length),
            StrLenField("padding", b"", length_from=lambda p: _pad4(p.length or 0)),
        ],
    })


def _int_attr(atype: int, cls_name: str, field: Field, size: int) -> type[Packet]:
    return type(cls_name, (StunAttribute,), {
        "name": f"STUN {_ATTR_NAMES[atype]}",
        "fields_desc": [XShortEnumField("type", atype, _ATTR_NAMES), ShortField("length", size), field],
    })


StunMappedAddress = _addr_attr(0x0001, "StunMappedAddress", False)
StunAlternateServer = _addr_attr(0x8023, "StunAlternateServer", False)
StunResponseOrigin = _addr_attr(0x802B, "StunResponseOrigin", False)
StunOtherAddress = _addr_attr(0x802C, "StunOtherAddress", False)
StunXorMappedAddress = _addr_attr(0x0020, "StunXorMappedAddress", True)
StunXorPeerAddress = _addr_attr(0x0012, "StunXorPeerAddress", True)
StunXorRelayedAddress = _addr_attr(0x0016, "StunXorRelayedAddress", True)
StunUsername = _text_attr(0x0006, "StunUsername")
StunRealm = _text_attr(0x0014, "StunRealm")
StunNonce = _text_attr(0x0015, "StunNonce")
StunSoftware = _text_attr(0x8022, "StunSoftware")
StunData = _text_attr(0x0013, "StunData")
StunLifetime = _int_attr(0x000D, "StunLifetime", IntField("lifetime", 600), 4)
StunPriority = _int_attr(0x0024, "StunPriority", IntField("priority", 0), 4)
StunChangeRequest = _int_attr(0x0003, "StunChangeRequest", XIntField("flags", 0), 4)
StunFingerprint = _int_attr(0x8028, "StunFingerprint", XIntField("crc32", None), 4)
StunIceControlled = _int_attr(0x8029, "StunIceControlled", LongField("tie_breaker", 0), 8)
StunIceControlling = _int_attr(0x802A, "StunIceControlling", LongField("tie_breaker", 0), 8)
StunMessageIntegrity = _int_attr(0x0008, "StunMessageIntegrity", XStrFixedLenField("hmac_sha1", bytes(20), 20), 20)
StunUseCandidate = _int_attr(0x0025, "StunUseCandidate", StrFixedLenField("value", b"", 0), 0)
StunDontFragment = _int_attr(0x001A, "StunDontFragment", StrFixedLenField("value", b"", 0), 0)


class StunChannelNumber(StunAttribute):
    name = "STUN CHANNEL-NUMBER"
    fields_desc = [XShortEnumField("type", 0x000C, _ATTR_NAMES), ShortField("length", 4),
                   XShortField("channel", 0x4000), ShortField("rffu", 0)]


class StunRequestedTransport(StunAttribute):
    name = "STUN REQUESTED-TRANSPORT"
    fields_desc = [XShortEnumField("type", 0x0019, _ATTR_NAMES), ShortField("length", 4),
                   ByteEnumField("protocol", 17, {17: "UDP", 6: "TCP"}), StrFixedLenField("rffu", bytes(3), 3)]


class StunErrorCode(StunAttribute):
    name = "STUN ERROR-CODE"
    fields_desc = [
        XShortEnumField("type", 0x0009, _ATTR_NAMES),
        FieldLenField("length", None, length_of="reason", fmt="!H", adjust=lambda p, x: x + 4),
        ShortField("reserved", 0),
        ByteField("error_class", 4),
        ByteField("number", 0),
        StrLenField("reason", b"", length_from=lambda p: (p.length or 4) - 4),
        StrLenField("padding", b"", length_from=lambda p: _pad4(p.length or 0)),
    ]

    @property
    def code(self) -> int:
        return (self.error_class & 7) * 100 + self.number


class StunUnknownAttributes(StunAttribute):
    name = "STUN UNKNOWN-ATTRIBUTES"
    fields_desc = [
        XShortEnumField("type", 0x000A, _ATTR_NAMES),
        FieldLenField("length", None, length_of="types", fmt="!H"),
        XStrLenField("types", b"", length_from=lambda p: p.length),
        StrLenField("padding", b"", length_from=lambda p: _pad4(p.length or 0)),
    ]


_ATTR_CLASSES: dict[int, type[Packet]] = {
    cls.fields_desc[0].default: cls for cls in (
        StunMappedAddress, StunAlternateServer, StunResponseOrigin, StunOtherAddress, StunXorMappedAddress,
        StunXorPeerAddress, StunXorRelayedAddress, StunUsername, StunRealm, StunNonce, StunSoftware, StunData,
        StunLifetime, StunPriority, StunChangeRequest, StunFingerprint, StunIceControlled, StunIceControlling,
        StunMessageIntegrity, StunUseCandidate, StunDontFragment, StunChannelNumber, StunRequestedTransport,
        StunErrorCode, StunUnknownAttributes,
    )
}


# -- the message -------------------------------------------------------------------------------
class _MessageTypeField(XShortEnumField):
    def i2repr(self, pkt, x):
        if x is None:
            return "None"
        method, cls = unpack_type(x)
        return f"{METHODS.get(method, hex(method))} {CLASSES[cls]} (0x{x:04x})"


class STUN(Packet):
    """A STUN/TURN message: 20-byte header and a list of attributes.

    Build one with ``STUN(method=..., ...)``? No: use ``message_type=pack_type(method, cls)``;
    ``length`` and a FINGERPRINT's ``crc32`` left as None are computed when built.
    """

    name = "STUN"
    fields_desc = [
        _MessageTypeField("message_type", 0x0001, _TYPE_NAMES),
        ShortField("length", None),
        XIntField("magic_cookie", MAGIC_COOKIE),
        XStrFixedLenField("transaction_id", bytes(12), 12),
        PacketListField("attributes", [], StunAttribute, length_from=lambda p: p.length),
    ]

    @property
    def method(self) -> int:
        return unpack_type(self.message_type)[0]

    @property
    def cls(self) -> int:
        return unpack_type(self.message_type)[1]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:2] + struct.pack("!H", len(pkt) - 20) + pkt[4:]
        # compute a FINGERPRINT left empty (it is always the last attribute)
        if self.attributes and isinstance(self.attributes[-1], StunFingerprint) and self.attributes[-1].crc32 is None:
            crc = (zlib.crc32(pkt[:-8]) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
            pkt = pkt[:-4] + struct.pack("!I", crc)
        return pkt + pay

    def mysummary(self) -> str:
        method, cls = unpack_type(self.message_type)
        return f"STUN {METHODS.get(method, hex(method))} {CLASSES[cls]}"


class ChannelData(Packet):
    """A TURN ChannelData frame: channel number (0x4000-0x4FFF), length, data."""

    name = "TURN ChannelData"
    fields_desc = [
        XShortField("channel", 0x4000),
        FieldLenField("length", None, length_of="data", fmt="!H"),
        StrLenField("data", b"", length_from=lambda p: p.length),
    ]

    def mysummary(self) -> str:
        return f"TURN ChannelData 0x{self.channel:04x} ({self.length} bytes)"


class StunOrChannelData(Packet):
    """Picks STUN or ChannelData from the first byte when dissecting UDP port 3478."""

    name = "STUN/TURN"

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kwargs):
        if _pkt:
            first = _pkt[0]
            if first < 0x40 and len(_pkt) >= 20 and _pkt[4:8] == struct.pack("!I", MAGIC_COOKIE):
                return STUN
            if 0x40 <= first <= 0x4F and len(_pkt) >= 4:
                return ChannelData
        return Raw


for _port_field in ("sport", "dport"):
    bind_bottom_up(UDP, StunOrChannelData, **{_port_field: STUN_PORT})
bind_top_down(UDP, STUN, sport=STUN_PORT, dport=STUN_PORT)
bind_top_down(UDP, ChannelData, sport=STUN_PORT, dport=STUN_PORT)
bind_layers(ChannelData, Raw)

__all__ = ["STUN", "ChannelData", "StunAttribute", "STUN_PORT"]
