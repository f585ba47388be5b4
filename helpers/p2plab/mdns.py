"""mDNS host candidates: how browsers hide private addresses, as a small sans-I/O model.

A browser that follows draft-ietf-mmusic-mdns-ice-candidates does not put its private address
(192.168.1.10) in a host candidate. It makes up a name, a random version 4 UUID followed by
``.local``, announces "this name is 192.168.1.10" by multicast DNS (RFC 6762) on its own link, and
signals the name instead. A peer that receives such a candidate multicasts a query for the name
on *its* link. Only a host on the same link hears it and answers; anywhere else the candidate
resolves to nothing and is dropped, and the pair comes from the server-reflexive (or
peer-reflexive) candidates instead.

* :func:`candidate_name` - a ``<uuid4>.local`` name (from a seeded ``random.Random`` in lessons).
* :func:`query` / :func:`announcement` - the mDNS packets as bytes (scapy's DNS layer), UDP
  payloads for ``224.0.0.251:5353``; :func:`datagram` wraps them in IPv4/UDP.
* :func:`parse` - what an mDNS payload asks or answers (it reads Chromium's packets too).
* :class:`Links` - who hears whom: hosts on named links, names registered on them, and
  :meth:`Links.resolve` that answers only on the querier's own link.
* :func:`hide_host_candidates` / :func:`resolve_candidates` - the browser's side: the candidate
  lines a peer receives, and which of them the peer can use.
"""

from __future__ import annotations

import ipaddress
import random
import re
import uuid
from dataclasses import dataclass, field

from .errors import ConfigurationError

MDNS_GROUP, MDNS_PORT = "224.0.0.251", 5353
_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.local$")


def candidate_name(rng: random.Random | None = None) -> str:
    """A fresh ``<uuid4>.local`` name, as the draft asks ("a version 4 UUID ... followed by '.local'")."""
    rng = rng or random.Random()
    return f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.local"


def is_mdns_name(name: str) -> bool:
    """Is ``name`` an mDNS candidate name (a version 4 UUID followed by ``.local``)?"""
    return bool(_NAME.match(name.lower()))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.endswith(".local"):
        raise ConfigurationError(f"mDNS names end in '.local' (e.g. {candidate_name(random.Random(0))}); "
                                 f"got {name!r}")
    return name


def query(name: str) -> bytes:
    """The UDP payload of an mDNS query for ``name``'s IPv4 address (type A), transaction id 0."""
    from ._scapy import scapy_all

    sc = scapy_all()
    return bytes(sc.DNS(id=0, qr=0, rd=0, qd=[sc.DNSQR(qname=_check_name(name), qtype="A", qclass="IN")]))


def announcement(name: str, address: str, ttl: int = 120) -> bytes:
    """The UDP payload of an unsolicited mDNS response: ``name`` is ``address`` (an A record with
    the cache-flush bit, authoritative, transaction id 0), as a browser sends when it makes a name up."""
    from ._scapy import scapy_all

    sc = scapy_all()
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ConfigurationError(f"{address!r} is not an IPv4 address (this model announces A records)") from None
    rr = sc.DNSRR(rrname=_check_name(name), type="A", cacheflush=1, rclass="IN", ttl=ttl, rdata=address)
    return bytes(sc.DNS(id=0, qr=1, aa=1, rd=0, qd=[], an=[rr]))


def datagram(payload: bytes, src: str, ttl: int = 255) -> bytes:
    """``payload`` as an IPv4/UDP packet from ``src:5353`` to ``224.0.0.251:5353`` (RFC 6762's port and group)."""
    from ._scapy import scapy_all

    sc = scapy_all()
    return bytes(sc.IP(src=src, dst=MDNS_GROUP, ttl=ttl) / sc.UDP(sport=MDNS_PORT, dport=MDNS_PORT) / payload)


def parse(payload: bytes) -> dict:
    """What an mDNS message says: ``{"kind": "query"|"response", "questions": [...], "answers":
    [(name, type, address, ttl, cache_flush)]}``. Raises ``ConfigurationError`` on bytes that are not DNS."""
    from ._scapy import scapy_all

    sc = scapy_all()
    try:
        msg = sc.DNS(payload)
    except Exception as exc:  # noqa: BLE001 - scapy raises many kinds on garbage
        raise ConfigurationError(f"not a DNS message ({len(payload)} bytes): {exc}") from None
    if len(payload) < 12:
        raise ConfigurationError(f"not a DNS message: {len(payload)} bytes, a DNS header alone has 12")

    def text(n) -> str:
        n = n.decode(errors="replace") if isinstance(n, bytes) else str(n)
        return n[:-1] if n.endswith(".") else n

    types = {1: "A", 28: "AAAA", 47: "NSEC"}
    questions = [text(q.qname) for q in (msg.qd or [])]
    answers = []
    for rr in list(msg.an or []) + list(msg.ar or []):
        kind = types.get(rr.type, str(rr.type))
        addr = rr.rdata if kind in ("A", "AAAA") else ""
        answers.append((text(rr.rrname), kind, str(addr), int(rr.ttl), bool(getattr(rr, "cacheflush", 0))))
    return {"kind": "response" if msg.qr else "query", "questions": questions, "answers": answers}


@dataclass
class Links:
    """Which hosts share a link. ``add(host, link, address)`` puts a host on a link;
    ``register(host, name)`` makes it answer for ``name``; ``resolve(host, name)`` multicasts a
    query on the asking host's link and returns the address if someone there answers.
    ``log`` keeps every packet with the link it went out on."""

    hosts: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (link, address)
    names: dict[str, str] = field(default_factory=dict)  # name -> host
    log: list[dict] = field(default_factory=list)

    def add(self, host: str, link: str, address: str) -> None:
        self.hosts[host] = (link, address)

    def _host(self, host: str) -> tuple[str, str]:
        if host not in self.hosts:
            raise ConfigurationError(f"no host {host!r} on any link; add it first: links.add({host!r}, 'lan', ip)")
        return self.hosts[host]

    def register(self, host: str, name: str) -> bytes:
        """``host`` takes ``name`` and announces it on its link; returns the announcement payload."""
        link, addr = self._host(host)
        self.names[_check_name(name)] = host
        payload = announcement(name, addr)
        self.log.append({"link": link, "from": host, "kind": "announcement", "name": name, "answer": addr,
                         "heard by": self._others(link, host)})
        return payload

    def _others(self, link: str, host: str) -> str:
        return ", ".join(h for h, (ln, _) in self.hosts.items() if ln == link and h != host) or "nobody"

    def resolve(self, host: str, name: str) -> str | None:
        """``host`` asks its link for ``name``; the address, or ``None`` when nobody on that link answers."""
        link, _ = self._host(host)
        query(name)  # the packet that goes out (and a check of the name)
        owner = self.names.get(name)
        answer = self.hosts[owner][1] if owner and self.hosts[owner][0] == link else None
        self.log.append({"link": link, "from": host, "kind": "query", "name": name,
                         "answer": answer or "(no answer)", "heard by": self._others(link, host)})
        return answer


def hide_host_candidates(lines: list[str], links: Links, host: str, rng: random.Random | None = None) -> list[str]:
    """The browser's gathering step: every host candidate line of ``host`` gets a fresh ``.local``
    name in place of its address (registered on ``host``'s link); the server-reflexive lines lose
    their related address (``raddr 0.0.0.0 rport 0``), as Chromium's do."""
    rng = rng or random.Random(0)
    out = []
    for line in lines:
        f = line.split()
        if len(f) < 8 or f[6] != "typ":
            raise ConfigurationError(f"not an ICE candidate line (RFC 8839 'candidate:...'): {line!r}")
        if f[7] == "host" and not f[4].endswith(".local"):
            name = candidate_name(rng)
            links.register(host, name)
            f[4] = name
        elif f[7] == "srflx" and "raddr" in f:
            i = f.index("raddr")
            f[i + 1], f[i + 3] = "0.0.0.0", "0"
        out.append(" ".join(f))
    return out


def resolve_candidates(lines: list[str], links: Links, host: str) -> list[dict]:
    """The peer's side: for each received candidate line, can ``host`` use it? A ``.local`` address
    is resolved by an mDNS query on ``host``'s link; one that finds no answer is dropped."""
    rows = []
    for line in lines:
        f = line.split()
        addr, port, typ = f[4], int(f[5]), f[7]
        if addr.endswith(".local"):
            got = links.resolve(host, addr)
            rows.append({"type": typ, "address": addr, "port": port, "resolved": got or "",
                         "usable": got is not None,
                         "why": (f"an answer on {host}'s link: {got}" if got else
                                 f"no answer on {host}'s link: the name's owner is on another link")})
        else:
            rows.append({"type": typ, "address": addr, "port": port, "resolved": addr, "usable": True,
                         "why": "an address: nothing to resolve"})
    return rows


def browser_facts(trace, details: dict) -> str:
    """What a lab run of two browsers with mDNS candidates shows, in words that are the same in every
    run (the names are random): the signalled host candidates, who announced and who asked on which
    LAN, how many queries were answered, how far the multicast got, and the selected pair.
    ``trace``/``details``: a ``real_run("webrtc-mdns")``'s ``.trace`` and ``.outcome["details"]``."""
    lans = {"alice": "alice's LAN", "bob": "bob's LAN", "nat-a": "alice's LAN", "nat-b": "bob's LAN"}
    host = [s["text"].split() for s in details["signalling"]
            if s["kind"] == "candidate" and " typ host" in s["text"]]
    lines = [f"host candidates signalled: {len(host)}, with a .local name in place of the address: "
             f"{sum(is_mdns_name(f[4]) for f in host)}"]
    df = trace.df
    owners, asked, heard, received = {}, [], set(), []
    for i in df.index[df["dport"] == MDNS_PORT]:
        raw = trace.raw(i)
        msg = parse(raw[(raw[0] & 0x0F) * 4 + 8:])
        node, t = df.at[i, "node"], float(df.at[i, "time"])
        heard.add(node)
        if df.at[i, "action"] == "delivered" and msg["kind"] == "response":
            received += [(node, t, a[0]) for a in msg["answers"]]
        if df.at[i, "action"] != "sent":
            continue
        if msg["kind"] == "response":
            owners.update({a[0]: node for a in msg["answers"]})
        else:
            asked.append((node, msg["questions"][0], t))
    for who in sorted({o for o in owners.values()}):
        lines.append(f"{who} announced its own name (an A record: name -> its private address) on {lans[who]}")
    for who, name in sorted({(w, n) for w, n, _ in asked}):
        lines.append(f"{who} asked for {owners.get(name, 'nobody')}'s name on {lans[who]}")
    # an answer: a response naming what was asked, arriving at the asking host after it asked
    answered = sum(any(n == name and w == who and t > t0 for w, t, n in received) for who, name, t0 in asked)
    lines.append(f"answers to those queries: {answered}")
    mine = df[df["dport"] == MDNS_PORT]
    passed = int(mine["action"].isin(["forwarded", "translated"]).sum())
    lines.append(f"nodes that saw mDNS packets: {', '.join(sorted(heard))}; mDNS packets a router passed on: {passed}")
    sel = details.get("selected") or {}
    if sel:
        lines.append(f"selected pair: {sel['local']['type']} - {sel['remote']['type']}")
    return "\n".join(lines)
