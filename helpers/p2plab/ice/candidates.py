"""ICE candidates: the addresses an agent might be reached at, their priorities and foundations.

RFC 8445 section 5.1 names four kinds of candidate:

* **host** - an address on the agent's own interface (``192.168.1.10:5000``);
* **server-reflexive** (``srflx``) - the agent's address as a STUN server saw it, i.e. the NAT's
  mapping (``203.0.113.10:5000``);
* **relayed** (``relay``) - an address allocated on a TURN server, which relays for the agent;
* **peer-reflexive** (``prflx``) - an address learned during connectivity checks, when a check
  arrives from (or a response reveals) an address nobody gathered, e.g. a symmetric NAT's new
  mapping toward the peer.

Priority (RFC 8445 section 5.1.2.1)::

    priority = 2^24 * (type preference) + 2^8 * (local preference) + (256 - component ID)

with the recommended type preferences host 126, peer-reflexive 110, server-reflexive 100,
relayed 0 (section 5.1.2.2) and local preference 65535 when the agent has one address.

>>> candidate_priority("host")
2130706431
>>> candidate_priority("relay", local_pref=65535, component=1)
16777215
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..addresses import Endpoint, fmt
from ..errors import ConfigurationError

HOST, SRFLX, PRFLX, RELAY = "host", "srflx", "prflx", "relay"
CANDIDATE_TYPES = (HOST, SRFLX, PRFLX, RELAY)

# RFC 8445 section 5.1.2.2: the RECOMMENDED type preferences.
TYPE_PREFERENCES: dict[str, int] = {HOST: 126, PRFLX: 110, SRFLX: 100, RELAY: 0}

TYPE_NAMES = {HOST: "host", SRFLX: "server-reflexive", PRFLX: "peer-reflexive", RELAY: "relayed"}

MAX_LOCAL_PREF = 65535


def candidate_priority(kind: str | int, local_pref: int = MAX_LOCAL_PREF, component: int = 1) -> int:
    """RFC 8445 section 5.1.2.1: ``2^24 * type_pref + 2^8 * local_pref + (256 - component)``.

    ``kind`` is a candidate type ('host', 'srflx', 'prflx', 'relay') or a type preference 0-126.
    """
    type_pref = TYPE_PREFERENCES.get(kind) if isinstance(kind, str) else int(kind)
    if type_pref is None:
        raise ConfigurationError(f"unknown candidate type {kind!r}; ICE has {', '.join(CANDIDATE_TYPES)}")
    if not 0 <= type_pref <= 126:
        raise ConfigurationError(f"type preference must be 0-126 (RFC 8445 5.1.2.1); got {type_pref}")
    if not 0 <= local_pref <= 65535:
        raise ConfigurationError(f"local preference must be 0-65535 (RFC 8445 5.1.2.1); got {local_pref}")
    if not 1 <= component <= 256:
        raise ConfigurationError(f"component ID must be 1-256 (RFC 8445 5.1.2.1); got {component}")
    return (1 << 24) * type_pref + (1 << 8) * local_pref + (256 - component)


def local_preference(priority: int) -> int:
    """The local preference packed in a candidate priority (bits 8-23)."""
    return (priority >> 8) & 0xFFFF


def compute_foundation(kind: str, base_ip: str, server_ip: str | None = None, transport: str = "udp") -> str:
    """RFC 8445 section 5.1.1.3: candidates share a foundation when they have the same type, the
    same base IP address, the same STUN/TURN server IP (for srflx/relay) and the same transport.

    The foundation is an opaque string; p2plab makes it a short, deterministic decimal number.
    """
    key = f"{kind}|{base_ip}|{server_ip or ''}|{transport}".encode()
    return str(zlib.crc32(key))


@dataclass(eq=False)
class Candidate:
    """One candidate: a transport address, its type, its base, priority and foundation.

    ``base`` is the address the agent sends from for this candidate (RFC 8445 section 5.1.1.1):
    a host candidate is its own base, a server-reflexive one has its host candidate as base, a
    relayed candidate is its own base (the agent sends through the TURN server).
    """

    type: str
    addr: Endpoint
    base: Endpoint
    priority: int
    foundation: str
    component: int = 1
    transport: str = "udp"
    related: Endpoint | None = None  # raddr/rport of SDP: the base (srflx/prflx) or mapped address (relay)
    server: Endpoint | None = None  # the STUN/TURN server it came from
    origin: str = ""  # how it was learned, in words
    # relayed candidates only: how the agent reaches its TURN server ("udp", "tcp" or "tls"), like
    # WebRTC's RTCIceCandidateStats.relayProtocol. The candidate itself stays a UDP candidate: the
    # relay talks UDP to peers whatever carries the client's messages to the server (RFC 8656).
    relay_protocol: str | None = None

    @classmethod
    def make(cls, kind: str, addr: Endpoint, base: Endpoint | None = None, local_pref: int = MAX_LOCAL_PREF,
             component: int = 1, server: Endpoint | None = None, related: Endpoint | None = None,
             priority: int | None = None, foundation: str | None = None, origin: str = "") -> Candidate:
        """A candidate with its RFC 8445 priority and foundation computed."""
        if kind not in CANDIDATE_TYPES:
            raise ConfigurationError(f"unknown candidate type {kind!r}; ICE has {', '.join(CANDIDATE_TYPES)}")
        addr = (addr[0], int(addr[1]))
        base = (base[0], int(base[1])) if base is not None else addr
        if priority is None:
            priority = candidate_priority(kind, local_pref, component)
        if foundation is None:
            foundation = compute_foundation(kind, base[0], server[0] if server else None)
        return cls(kind, addr, base, priority, foundation, component, "udp", related, server, origin)

    @property
    def ip(self) -> str:
        return self.addr[0]

    @property
    def port(self) -> int:
        return self.addr[1]

    @property
    def type_preference(self) -> int:
        return self.priority >> 24

    @property
    def local_preference(self) -> int:
        return local_preference(self.priority)

    def to_sdp(self) -> str:
        """The candidate as an SDP ``a=candidate`` value (RFC 8839 section 5.1)."""
        text = (f"candidate:{self.foundation} {self.component} {self.transport.upper()} {self.priority} "
                f"{self.ip} {self.port} typ {self.type}")
        if self.related is not None:
            text += f" raddr {self.related[0]} rport {self.related[1]}"
        return text

    def as_dict(self) -> dict:
        return {"type": self.type, "address": fmt(self.addr), "base": fmt(self.base), "priority": self.priority,
                "foundation": self.foundation, "component": self.component,
                "related": fmt(self.related) if self.related else "", "origin": self.origin,
                "relay_protocol": self.relay_protocol or ""}

    def __str__(self) -> str:
        if self.relay_protocol and self.relay_protocol != "udp" and self.server is not None:
            return f"{self.type} {fmt(self.addr)} (TURN over {self.relay_protocol.upper()} to {fmt(self.server)})"
        return f"{self.type} {fmt(self.addr)}"

    def __repr__(self) -> str:
        return f"<Candidate {self.type} {fmt(self.addr)} base {fmt(self.base)} prio {self.priority}>"


def prune_redundant(candidates: list[Candidate]) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """RFC 8445 section 5.1.3: drop a candidate whose transport address *and* base equal those of
    another candidate with a higher (or equal, earlier) priority.

    Typical case: an agent with a public address asks STUN and learns its own address, so the
    server-reflexive candidate is the host candidate again. Returns ``(kept, [(removed, why)])``.
    """
    kept: list[Candidate] = []
    removed: list[tuple[Candidate, str]] = []
    for c in sorted(candidates, key=lambda c: -c.priority):
        twin = next((k for k in kept if k.addr == c.addr and k.base == c.base), None)
        if twin is None:
            kept.append(c)
        else:
            removed.append((c, f"redundant: same address {fmt(c.addr)} and base as the {twin.type} candidate, "
                               f"which has the higher priority"))
    order = {id(c): i for i, c in enumerate(candidates)}
    kept.sort(key=lambda c: order[id(c)])
    return kept, removed


__all__ = [
    "Candidate", "candidate_priority", "compute_foundation", "prune_redundant", "local_preference",
    "TYPE_PREFERENCES", "CANDIDATE_TYPES", "HOST", "SRFLX", "PRFLX", "RELAY", "TYPE_NAMES",
]
