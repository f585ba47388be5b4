"""TURN (RFC 8656): relaying through a server when no direct path works, sans-I/O.

* ``server`` - ``TurnServer``: long-term credentials, allocations, permissions, channels.
* ``client`` - ``TurnClient``: allocate (with the 401 challenge), refresh, permission, channel, send,
  ``close()`` (gives the allocation back).
* ``stream`` - TURN over TCP and TLS: framing, ``serve_streams`` (server), ``StreamDriver`` (client),
  a self-signed lab certificate.
* ``coturn`` - a configuration file for coturn's ``turnserver`` (interop tests, capacity benchmark).

Run them with ``p2plab.aio`` (real sockets) or the simulator.
"""

from __future__ import annotations

from .client import TurnClient
from .server import Allocation, TurnServer

__all__ = ["TurnServer", "TurnClient", "Allocation"]
