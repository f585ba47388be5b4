"""Scapy layers for NAT-PMP (RFC 6886) and PCP (RFC 6887), bound to UDP port 5351.

Importing this module makes ``IP(raw)`` of a port mapping packet show ``NATPMP`` or ``PCP`` with
its fields (the version byte chooses: 0 NAT-PMP, 2 PCP). For display and pcaps only: p2plab's
protocols use the codecs in ``natpmp.py`` and ``pcp.py``. This module imports scapy.
"""

from __future__ import annotations

# isort: off
from .. import _scapy  # noqa: F401  (quiets scapy's import chatter: import it first)
# isort: on
from scapy.fields import (  # noqa: E402
    BitEnumField,
    BitField,
    ByteEnumField,
    ByteField,
    ConditionalField,
    IntField,
    IP6Field,
    IPField,
    ShortEnumField,
    ShortField,
    StrFixedLenField,
    XStrFixedLenField,
)
from scapy.layers.inet import UDP  # noqa: E402
from scapy.packet import Packet, bind_bottom_up, bind_layers  # noqa: E402

from . import natpmp, pcp  # noqa: E402

PORT = 5351
_NATPMP_OPS = {0: "external address", 1: "map UDP", 2: "map TCP", 128: "external address response",
               129: "map UDP response", 130: "map TCP response"}
_NATPMP_RESULTS = {k: v[0] for k, v in natpmp.RESULTS.items()}
_PCP_RESULTS = {k: v[0] for k, v in pcp.RESULTS.items()}


class NATPMP(Packet):
    """A NAT-PMP message (RFC 6886 section 3): requests and responses share this layout's prefix."""

    name = "NAT-PMP"
    fields_desc = [
        ByteField("version", 0),
        ByteEnumField("opcode", 0, _NATPMP_OPS),
        ConditionalField(ShortField("reserved", 0), lambda p: p.opcode in (1, 2)),
        ConditionalField(ShortEnumField("result", 0, _NATPMP_RESULTS), lambda p: p.opcode >= 128),
        ConditionalField(IntField("epoch", 0), lambda p: p.opcode >= 128),
        ConditionalField(IPField("external_ip", "0.0.0.0"), lambda p: p.opcode == 128),
        ConditionalField(ShortField("internal_port", 0), lambda p: p.opcode in (1, 2, 129, 130)),
        ConditionalField(ShortField("external_port", 0), lambda p: p.opcode in (1, 2, 129, 130)),
        ConditionalField(IntField("lifetime", 0), lambda p: p.opcode in (1, 2, 129, 130)),
    ]

    def mysummary(self) -> str:
        return f"NAT-PMP {_NATPMP_OPS.get(self.opcode, self.opcode)}"


class PCP(Packet):
    """A PCP message (RFC 6887 section 7) with MAP data (section 11.1) when the opcode is MAP."""

    name = "PCP"
    fields_desc = [
        ByteField("version", 2),
        BitEnumField("r", 0, 1, {0: "request", 1: "response"}),
        BitEnumField("opcode", 1, 7, pcp.OPCODES),
        ConditionalField(ShortField("reserved", 0), lambda p: p.r == 0),
        ConditionalField(ByteField("reserved8", 0), lambda p: p.r == 1),
        ConditionalField(ByteEnumField("result", 0, _PCP_RESULTS), lambda p: p.r == 1),
        IntField("lifetime", 0),
        ConditionalField(IP6Field("client_ip", "::"), lambda p: p.r == 0),
        ConditionalField(IntField("epoch", 0), lambda p: p.r == 1),
        ConditionalField(StrFixedLenField("reserved96", b"\0" * 12, 12), lambda p: p.r == 1),
        ConditionalField(XStrFixedLenField("nonce", b"\0" * 12, 12), lambda p: p.opcode == 1),
        ConditionalField(ByteEnumField("protocol", 17, {6: "TCP", 17: "UDP", 0: "all"}), lambda p: p.opcode == 1),
        ConditionalField(BitField("reserved24", 0, 24), lambda p: p.opcode == 1),
        ConditionalField(ShortField("internal_port", 0), lambda p: p.opcode == 1),
        ConditionalField(ShortField("external_port", 0), lambda p: p.opcode == 1),
        ConditionalField(IP6Field("external_ip", "::ffff:0.0.0.0"), lambda p: p.opcode == 1),
    ]

    def mysummary(self) -> str:
        kind = "response" if self.r else "request"
        res = f" {_PCP_RESULTS.get(self.result, self.result)}" if self.r else ""
        return f"PCP {pcp.OPCODES.get(self.opcode, self.opcode)} {kind}{res}"


class PortMapping(Packet):
    """Chooses NAT-PMP or PCP by the version byte."""

    name = "port mapping"

    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kwargs):
        if _pkt and _pkt[0] == pcp.VERSION:
            return PCP
        return NATPMP


for port_field in ("dport", "sport"):
    bind_bottom_up(UDP, PortMapping, **{port_field: PORT})
bind_layers(UDP, NATPMP, dport=PORT)
