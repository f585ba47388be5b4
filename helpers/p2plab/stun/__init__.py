"""STUN (RFC 8489) and its NAT behaviour discovery (RFC 5780), sans-I/O.

* ``message`` - the byte codec: ``StunMessage``, ``ChannelData``, ``parse``, ``is_stun``.
* ``client`` - ``StunClient``: one Binding request with RFC 8489 retransmissions.
* ``server`` - ``StunServer`` (optionally an RFC 5780 server with a second IP and port).
* ``discovery`` - ``NatDiscovery``: RFC 5780 mapping and filtering tests.
* ``layers`` - scapy layers for showing STUN/TURN packets (imported only when asked for).

None of these modules opens a socket: run them with ``p2plab.aio`` or the simulator.
"""

from __future__ import annotations

from .client import StunClient, Transaction
from .message import ChannelData, StunMessage, is_channel_data, is_stun, parse
from .server import MultiAddressProtocol, Outgoing, StunServer

__all__ = [
    "StunMessage", "ChannelData", "parse", "is_stun", "is_channel_data", "StunClient", "Transaction",
    "StunServer", "MultiAddressProtocol", "Outgoing", "NatDiscovery",
]


def __getattr__(name: str):
    if name == "NatDiscovery":
        from .discovery import NatDiscovery

        return NatDiscovery
    raise AttributeError(f"module 'p2plab.stun' has no attribute {name!r}")
