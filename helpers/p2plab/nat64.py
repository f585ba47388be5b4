"""IPv6 without NAT, and NAT64 for IPv6-only networks, as small sans-I/O models.

* :func:`embed_ipv4` / :func:`extract_ipv4`: IPv4 addresses inside IPv6 prefixes (RFC 6052
  section 2.2); ``64:ff9b::/96`` is the well-known prefix (section 2.1). RFC 6052 section 3.1 forbids
  the well-known prefix for non-global IPv4 addresses (private ones, and the documentation ranges
  the lab uses), so the lab uses the network-specific prefix ``2001:db8:64::/96``.
* :class:`Nat64`: a translator in the way a stateful NAT64 (RFC 6146) works: IPv6 headers become
  IPv4 headers (RFC 7915), and the IPv6 source gets an IPv4 address and port from a pool. It works
  on real packet bytes (scapy), so what it produces can be compared with ``tayga``'s output in the lab.
* :class:`Firewall6` and :func:`punch6`: IPv6 usually has no NAT, but a home router's stateful
  firewall still drops unsolicited inbound packets (RFC 6092). ``punch6`` runs the hole punch
  between two such firewalls: no translation, yet the same "both send" dance.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .errors import ConfigurationError

WELL_KNOWN_PREFIX = "64:ff9b::/96"
LAB_PREFIX = "2001:db8:64::/96"  # a network-specific prefix inside the documentation prefix (RFC 3849)
PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)


def _prefix(prefix: str) -> ipaddress.IPv6Network:
    try:
        net = ipaddress.IPv6Network(prefix)
    except ValueError as exc:
        raise ConfigurationError(f"{prefix!r} is not an IPv6 prefix like '64:ff9b::/96': {exc}") from None
    if net.prefixlen not in PREFIX_LENGTHS:
        raise ConfigurationError(f"RFC 6052 allows prefix lengths {PREFIX_LENGTHS}, not /{net.prefixlen} "
                                 f"({prefix}); the well-known prefix is {WELL_KNOWN_PREFIX}")
    return net


def embed_ipv4(ipv4: str, prefix: str = WELL_KNOWN_PREFIX) -> str:
    """The IPv4-embedded IPv6 address of ``ipv4`` under ``prefix`` (RFC 6052 section 2.2).

    >>> embed_ipv4("192.0.2.1")
    '64:ff9b::c000:201'

    For prefixes shorter than /96 the 32 bits are split around bits 64-71, which stay zero."""
    try:
        v4 = ipaddress.IPv4Address(ipv4).packed
    except ValueError as exc:
        raise ConfigurationError(f"{ipv4!r} is not an IPv4 address: {exc}") from None
    net = _prefix(prefix)
    raw = bytearray(net.network_address.packed)
    start = net.prefixlen // 8
    pos = [i for i in range(start, 16) if i != 8][:4]  # byte 8 (bits 64-71) is the reserved 'u' octet
    for b, i in zip(v4, pos):
        raw[i] = b
    return str(ipaddress.IPv6Address(bytes(raw)))


def extract_ipv4(ipv6: str, prefix: str = WELL_KNOWN_PREFIX) -> str:
    """The IPv4 address embedded in ``ipv6`` (the inverse of :func:`embed_ipv4`); an error if
    ``ipv6`` is not inside ``prefix``."""
    net = _prefix(prefix)
    try:
        addr = ipaddress.IPv6Address(ipv6)
    except ValueError as exc:
        raise ConfigurationError(f"{ipv6!r} is not an IPv6 address: {exc}") from None
    if addr not in net:
        raise ConfigurationError(f"{ipv6} is not inside the NAT64 prefix {prefix}: it is an ordinary IPv6 "
                                 "address, and the translator does not touch it")
    raw = addr.packed
    pos = [i for i in range(net.prefixlen // 8, 16) if i != 8][:4]
    return str(ipaddress.IPv4Address(bytes(raw[i] for i in pos)))


@dataclass
class Nat64:
    """A NAT64 between an IPv6-only inside and the IPv4 internet.

    ``to_ipv4(packet)`` takes an IPv6/UDP packet (bytes) whose destination is inside ``prefix``
    and returns the IPv4/UDP packet the translator sends, or ``None`` (with ``.last_drop`` saying
    why). The first packet of an inside ``(address, port)`` gets ``public_ip`` and a port (kept if
    free, like a port-preserving NAT); ``to_ipv6(packet)`` translates the answers back. Header
    fields follow RFC 7915: traffic class to TOS, hop limit to TTL (minus one: the translator is a
    router), the flow label is dropped, and the UDP checksum is recomputed because the
    pseudo-header changed. Identification 0 and Don't Fragment set, as ``tayga`` 0.9.2 does in
    the lab (see ``tests/test_nat64.py``)."""

    public_ip: str = "203.0.113.10"
    prefix: str = LAB_PREFIX
    bindings: dict[tuple[str, int], int] = field(default_factory=dict)
    last_drop: str = ""

    def __post_init__(self) -> None:
        _prefix(self.prefix)
        self._back: dict[int, tuple[str, int]] = {}

    def to_ipv4(self, packet: bytes) -> bytes | None:
        """Translate one inside IPv6/UDP packet to IPv4 (RFC 7915 section 5.1)."""
        from ._scapy import scapy_all

        sc = scapy_all()
        pkt = sc.IPv6(packet)
        if not pkt.haslayer(sc.UDP):
            self.last_drop = "this model translates UDP only"
            return None
        try:
            dst4 = extract_ipv4(pkt.dst, self.prefix)
        except ConfigurationError as exc:
            self.last_drop = str(exc)
            return None
        if not self.may_represent(dst4):
            self.last_drop = (f"{pkt.dst} puts the non-global IPv4 address {dst4} under the well-known prefix: "
                              "RFC 6052 section 3.1 says translators must drop such packets")
            return None
        if pkt.hlim <= 1:
            self.last_drop = "hop limit exhausted (a real translator sends ICMPv6 time exceeded)"
            return None
        udp = pkt[sc.UDP]
        key = (pkt.src, udp.sport)
        if key not in self.bindings:
            port = udp.sport
            while port in self._back:
                port = port + 1 if port < 65535 else 1024
            self.bindings[key] = port
            self._back[port] = key
        out = (sc.IP(src=self.public_ip, dst=dst4, tos=pkt.tc, ttl=pkt.hlim - 1, id=0, flags="DF")
               / sc.UDP(sport=self.bindings[key], dport=udp.dport) / bytes(udp.payload))
        self.last_drop = ""
        return bytes(out)

    def may_represent(self, ipv4: str) -> bool:
        """May this translator write ``ipv4`` under its prefix? Not a non-global address under the
        well-known prefix (RFC 6052 section 3.1); anything under a network-specific prefix."""
        wkp = ipaddress.IPv6Network(self.prefix) == ipaddress.IPv6Network(WELL_KNOWN_PREFIX)
        return not wkp or ipaddress.IPv4Address(ipv4).is_global

    def to_ipv6(self, packet: bytes) -> bytes | None:
        """Translate one IPv4/UDP answer back to IPv6 (RFC 7915 section 4.1), if a binding admits it."""
        from ._scapy import scapy_all

        sc = scapy_all()
        pkt = sc.IP(packet)
        if not pkt.haslayer(sc.UDP) or pkt.dst != self.public_ip:
            self.last_drop = "not UDP to the translator's public address"
            return None
        udp = pkt[sc.UDP]
        if udp.dport not in self._back:
            self.last_drop = f"no binding for port {udp.dport}: unsolicited, dropped (RFC 6146 filtering)"
            return None
        if not self.may_represent(pkt.src):
            self.last_drop = f"{pkt.src} is non-global: RFC 6052 section 3.1 forbids it under the well-known prefix"
            return None
        src6, sport6 = self._back[udp.dport]
        out = (sc.IPv6(src=embed_ipv4(pkt.src, self.prefix), dst=src6, tc=pkt.tos, hlim=pkt.ttl - 1)
               / sc.UDP(sport=udp.sport, dport=sport6) / bytes(udp.payload))
        self.last_drop = ""
        return bytes(out)


FILTERS = ("endpoint-independent", "address-dependent", "address-and-port-dependent")
Endpoint = tuple[str, int]


@dataclass
class Firewall6:
    """A stateful IPv6 firewall on a home router: it translates nothing, and admits an inbound
    packet only if an inside host has sent out first, as the ``filtering`` says (RFC 4787's terms,
    used for firewalls by RFC 6092): to anyone (``endpoint-independent``), to that address
    (``address-dependent``), or to that address and port (``address-and-port-dependent``)."""

    name: str
    inside: str  # the inside prefix, e.g. 2001:db8:a::/64
    filtering: str = "address-and-port-dependent"
    sent: set[tuple[Endpoint, Endpoint]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.filtering not in FILTERS:
            raise ConfigurationError(f"unknown filtering {self.filtering!r}; choose from {', '.join(FILTERS)}")
        self.net = ipaddress.IPv6Network(self.inside)

    def outbound(self, src: Endpoint, dst: Endpoint) -> None:
        """An inside host sends: remember it (the addresses are not changed)."""
        self.sent.add((src, dst))

    def inbound(self, src: Endpoint, dst: Endpoint) -> tuple[bool, str]:
        """May this packet from outside reach ``dst``? ``(admitted, why)``."""
        mine = [(s, d) for s, d in self.sent if s == dst]
        if not mine:
            return False, f"{self.name}: {dst[0]} port {dst[1]} has sent nothing out, so nothing may come in"
        if self.filtering == "endpoint-independent":
            return True, f"{self.name}: {dst[0]} port {dst[1]} has sent out before (endpoint-independent)"
        if self.filtering == "address-dependent":
            ok = any(d[0] == src[0] for _, d in mine)
            return ok, f"{self.name}: {'it has' if ok else 'it has not'} sent to {src[0]} (address-dependent)"
        ok = any(d == src for _, d in mine)
        return ok, (f"{self.name}: {'it has' if ok else 'it has not'} sent to [{src[0]}]:{src[1]} "
                    "(address-and-port-dependent)")


@dataclass
class Punch6Result:
    """What :func:`punch6` saw: every packet with its fate, and whether both directions got through."""

    rows: list[dict]
    connected: bool

    def __str__(self) -> str:
        lines = [f"{r['t']:5.2f} s  {r['from']:>5} -> {r['to']:<5} {r['fate']:<9} {r['why']}" for r in self.rows]
        lines.append(f"direct IPv6 path: {'yes' if self.connected else 'no'}")
        return "\n".join(lines)


ALICE6, BOB6 = ("2001:db8:a::10", 5000), ("2001:db8:b::20", 6000)


def punch6(filtering_a: str = "address-and-port-dependent", filtering_b: str = "address-and-port-dependent",
           bob_sends: bool = True, rounds: int = 3, gap: float = 0.1, latency: float = 0.02) -> Punch6Result:
    """Alice (``2001:db8:a::10``) and Bob (``2001:db8:b::20``), each behind a stateful IPv6 firewall,
    exchange addresses through a rendezvous (elsewhere) and send to each other ``rounds`` times,
    Bob ``gap / 2`` later than Alice. With ``bob_sends=False`` only Alice sends: the firewall of a
    host that never sends keeps dropping, IPv6 or not."""
    fw = {"alice": Firewall6("fw-a", "2001:db8:a::/64", filtering_a),
          "bob": Firewall6("fw-b", "2001:db8:b::/64", filtering_b)}
    ep = {"alice": ALICE6, "bob": BOB6}
    sends = [(i * gap, "alice", "bob") for i in range(rounds)]
    if bob_sends:
        sends += [(i * gap + gap / 2, "bob", "alice") for i in range(rounds)]
    events = []
    for t0, a, b in sends:
        events.append((t0, 0, a, b))
        events.append((t0 + latency, 1, a, b))
    rows, got = [], {"alice": False, "bob": False}
    for t0, stage, a, b in sorted(events):
        if stage == 0:
            fw[a].outbound(ep[a], ep[b])
            continue
        ok, why = fw[b].inbound(ep[a], ep[b])
        got[b] |= ok
        rows.append({"t": round(t0, 3), "from": a, "to": b, "src": f"[{ep[a][0]}]:{ep[a][1]}",
                     "dst": f"[{ep[b][0]}]:{ep[b][1]}", "fate": "delivered" if ok else "dropped", "why": why})
    return Punch6Result(rows, got["alice"] and got["bob"])
