"""Asking the NAT for a port mapping: PCP (RFC 6887), NAT-PMP (RFC 6886) and UPnP IGD, sans-I/O.

* ``natpmp`` and ``pcp`` - the wire formats (encode/decode).
* ``PortMapClient`` - asks the default gateway for a mapping; events ``mapped``/``failed``/``deleted``.
* ``PortMapServer`` - what a router runs: grants static mappings, expires them; events tell the
  router which NAT rules to install (``mapped``) and remove (``unmapped``).
* ``p2plab.portmap.lab`` - the server on a real lab router, installing nftables rules.
* ``upnp`` - UPnP IGD: SSDP discovery, the device description, SOAP actions and their error codes;
  ``p2plab.portmap.igd`` runs it on real sockets (``map_port``) on a lab host.
* ``p2plab.portmap.layers`` - scapy layers so traces dissect both (imports scapy).

In the simulator a NAT built with ``portmap=True`` (``Topology.add_nat(..., portmap=True)``) runs
the server on its LAN address; ``p2plab.punch.run_punch(..., portmap="pcp")`` asks it before punching.
"""

from __future__ import annotations

from . import natpmp, pcp, upnp
from .client import PortMapClient, check_protocol, external_warning
from .server import GrantedMapping, PortMapServer

PORT = pcp.PORT

__all__ = ["PORT", "GrantedMapping", "PortMapClient", "PortMapServer", "check_protocol", "external_warning",
           "natpmp", "pcp", "upnp"]
