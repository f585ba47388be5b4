"""The one place p2plab imports scapy, quietly (its import warnings differ between machines)."""

from __future__ import annotations

import logging
from pathlib import Path

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
logging.getLogger("scapy.loading").setLevel(logging.ERROR)


def scapy_all():
    """Import scapy.all without its start-up chatter."""
    import scapy.all as sa  # noqa: F401

    return sa


def ip_packet(raw: bytes):
    """Dissect raw IP bytes (v4 or v6) into a scapy packet, with p2plab's STUN layers bound."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    try:
        from .portmap import layers as _pm  # noqa: F401  (binds NAT-PMP/PCP to UDP 5351)
        from .stun import layers  # noqa: F401  (binds STUN/TURN to UDP ports)
    except ImportError:
        pass
    return IP(raw) if raw[0] >> 4 == 4 else IPv6(raw)


def rdpcap_ip(path: Path) -> list[tuple[float, bytes]]:
    """(timestamp, IP bytes) for every IP packet in a pcap/pcapng, whatever its link type."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    from .errors import TraceError

    out = []
    try:
        with PcapReader(str(path)) as reader:
            for pkt in reader:
                layer = pkt.getlayer(IP) or pkt.getlayer(IPv6)
                if layer is None:
                    try:
                        raw = bytes(pkt)
                        if raw and raw[0] >> 4 in (4, 6):
                            out.append((float(pkt.time), raw))
                    except Exception:
                        pass
                    continue
                out.append((float(pkt.time), bytes(layer)))
    except TraceError:
        raise
    except Exception as exc:  # scapy raises Scapy_Exception for junk
        raise TraceError(f"{path} could not be read as a capture: {exc}") from None
    return out
