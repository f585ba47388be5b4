"""Lab 09 - Around the NAT: ask the router for a mapping (PCP, RFC 6887), judge what it granted,
decide who must send first in connection reversal (RFC 5128 section 3.2), and write a port forward
as an nftables rule.

The learner writes

* ``pcp_map_request(client_ip, internal_port, lifetime, nonce)``: the 60 bytes of a PCP MAP request
  for a UDP port (24-byte header, 36-byte MAP opcode data), no preference for the external port or
  address. It is compared field by field with ``p2plab.portmap.pcp`` and then sent to p2plab's PCP
  server, which must grant it.
* ``mapping_verdict(response)``: from the bytes of a PCP MAP response, ``"reachable"`` (granted, on a
  public address), ``"wrong box"`` (granted, but the router's external address is private or
  carrier-grade shared space, so another NAT sits beyond it) or ``"refused"`` (an error result code).
  The responses come from p2plab's server in three situations: a router on a public address, a home
  router behind a carrier-grade NAT, and a router that refuses as Debian's miniupnpd does when its
  external address is reserved.
* ``forward_rule(wan, public_ip, proto, port, inside_ip, inside_port)``: a port forward as the nftables
  DNAT rule of the prerouting chain, compared with the rule p2plab writes for its lab routers.
* ``who_sends_first(caller, callee)``: from two registrations at the rendezvous server (the endpoint
  each peer reported and the one the server saw), the name of the peer that must send the first
  packet, or ``None`` when both are behind NATs (then only hole punching or a relay helps).

Each check never raises and gives a hint about the concept, never the answer.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from typing import Any

from ..addresses import is_private, is_shared_cgn
from ..portmap import pcp
from ..portmap.server import PortMapServer
from .common import check, fail

LAB = "around_the_nat"
VERDICTS = ("reachable", "wrong box", "refused")
ROUTER = ("192.168.1.1", pcp.PORT)

# -- exercise 1: the PCP MAP request --------------------------------------------------------------
_REQUEST_CASES = [
    ("192.168.1.10", 5000, 7200, bytes(range(1, 13))),
    ("192.168.1.23", 6881, 3600, bytes.fromhex("a1b2c3d4e5f60718293a4b5c")),
    ("192.168.1.10", 443, 120, bytes(12)),
    ("192.168.1.200", 65535, 86400, b"\xff" * 12),
]

# (first byte, last byte (exclusive), field name, what it holds) of a MAP request
_REQUEST_FIELDS = [
    (0, 1, "version", "PCP's version number, 2 (NAT-PMP, the older protocol on the same port, is version 0)"),
    (1, 2, "R bit and opcode", "R = 0 for a request (the top bit), then the opcode: MAP is 1, so the byte is 0x01"),
    (2, 4, "reserved", "two reserved bytes, zero"),
    (4, 8, "requested lifetime", "the lifetime in seconds as a 32-bit big-endian number (struct format '!I')"),
    (8, 24, "PCP client's IP address", "128 bits: an IPv4 address is written IPv4-mapped, ten zero bytes, "
                                       "ff ff, then its four bytes (::ffff:a.b.c.d)"),
    (24, 36, "mapping nonce", "the 12 nonce bytes, exactly as given"),
    (36, 37, "protocol", "the IANA protocol number: 17 for UDP"),
    (37, 40, "reserved", "three reserved bytes, zero, after the protocol"),
    (40, 42, "internal port", "the port your application listens on, 16-bit big-endian"),
    (42, 44, "suggested external port", "0: no preference, the router picks"),
    (44, 60, "suggested external IP address", "the IPv4 all-zeros address written IPv4-mapped, ::ffff:0.0.0.0 "
                                              "(ten zero bytes, ff ff, four zero bytes); a plain :: (sixteen zero "
                                              "bytes) is the IPv6 all-zeros address"),
]


def reference_request(client_ip: str, internal_port: int, lifetime: int, nonce: bytes) -> bytes:
    """The MAP request ``p2plab.portmap.pcp`` encodes for these values (UDP, no suggestion)."""
    mp = pcp.MapData(bytes(nonce), 17, internal_port, 0, pcp.ALL_ZEROS_V4)
    return pcp.Request(pcp.OP_MAP, lifetime, client_ip, mp).encode()


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    fail(f"{what} returned {type(value).__name__} {str(value)[:60]!r}; return the request as bytes "
         "(b'' + struct.pack(...) + ...).")
    raise AssertionError  # unreachable: fail() raises


def _first_wrong_field(got: bytes, want: bytes) -> tuple[int, int, str, str] | None:
    for lo, hi, name, what in _REQUEST_FIELDS:
        if got[lo:hi] != want[lo:hi]:
            return lo, hi, name, what
    return None


def _exchange(data: bytes, client: tuple[str, int], external_ip: str = "203.0.113.10") -> pcp.Response | None:
    server = PortMapServer(external_ip, "192.168.1.0/24", seed=0)
    server.start(0.0, ROUTER)
    server.datagram_received(data, client, 0.01)
    out = server.datagrams_to_send()
    if not out:
        return None
    msg = pcp.decode(out[0][0])
    return msg if isinstance(msg, pcp.Response) else None


@check(LAB, "the cell 'Exercise 1: ask the router', function pcp_map_request")
def check_map_request(pcp_map_request: Any) -> str:
    for client_ip, port, lifetime, nonce in _REQUEST_CASES:
        call = f"pcp_map_request({client_ip!r}, {port}, {lifetime}, nonce)"
        got = _as_bytes(pcp_map_request(client_ip, port, lifetime, nonce), call)
        want = reference_request(client_ip, port, lifetime, nonce)
        if got == want:
            continue
        if len(got) == pcp.HEADER:
            fail(f"{call} gave {len(got)} bytes: only the common header. A MAP request carries 36 more bytes of "
                 "opcode data after it (nonce, protocol, ports, suggested external address): 60 in all.")
        if len(got) in (36, 48) and got[:2] == want[:2]:
            fail(f"{call} gave {len(got)} bytes, not 60: PCP's address fields are 128 bits even for IPv4. Write an "
                 "IPv4 address IPv4-mapped: ten zero bytes, ff ff, then the four bytes of the address.")
        wrong = _first_wrong_field(got, want)
        if wrong is None:  # same 60 bytes as far as the fields go, but longer
            fail(f"{call} gave {len(got)} bytes; a MAP request without options is exactly 60 bytes "
                 "(24 of header, 36 of MAP data).")
        lo, hi, name, what = wrong
        if name == "R bit and opcode" and got[1:2] == b"\x81":
            fail(f"{call}: byte 1 is 0x81, which has the R bit set: that marks a *response*. A request has R = 0, "
                 "so the byte is just the opcode, MAP = 1.")
        if name == "PCP client's IP address" and got[lo:hi] == bytes(12) + ipaddress.IPv4Address(client_ip).packed:
            fail(f"{call}: the client address field holds ::{client_ip}, zeros then the four bytes. An IPv4 "
                 "address is written IPv4-mapped, with ff ff before its four bytes (::ffff:" + client_ip + ").")
        if name == "reserved" and lo == 2 and got[2:4] == struct.pack("!H", lifetime & 0xFFFF):
            fail(f"{call}: the lifetime landed in bytes 2-3 as a 16-bit number. Bytes 2-3 are reserved (zero); the "
                 "requested lifetime is bytes 4-7, 32 bits (struct format '!BBHI' for the first 8 bytes).")
        if name == "requested lifetime" and got[4:6] == struct.pack("!H", lifetime & 0xFFFF):
            fail(f"{call}: the lifetime starts at byte 4 as a 16-bit number; the field is 32 bits "
                 "(struct format '!I'), and the 2 bytes before it are reserved.")
        if name == "suggested external IP address" and got[lo:hi] == bytes(16):
            fail(f"{call}: the suggested external address is sixteen zero bytes (::), the IPv6 all-zeros address. "
                 "For 'no preference' on IPv4, RFC 6887 uses the IPv4 all-zeros address written IPv4-mapped, "
                 "::ffff:0.0.0.0 (ten zero bytes, ff ff, four zero bytes).")
        if name == "protocol" and got[36] == 6:
            fail(f"{call}: protocol 6 is TCP. This lab maps a UDP port: protocol 17.")
        if name == "internal port" and got[42:44] == want[40:42] and got[40:42] == want[42:44]:
            fail(f"{call}: the internal port and the suggested external port are swapped: internal first "
                 "(bytes 40-41), then the suggested external port (bytes 42-43), 0 for no preference.")
        fail(f"{call}: bytes {lo}-{hi - 1} ({name}) are {got[lo:hi].hex(' ') or 'missing'}; they hold {what}.")
    # the decisive test: p2plab's PCP server (what the lab router runs) must grant it
    client_ip, port, lifetime, nonce = _REQUEST_CASES[0]
    resp = _exchange(pcp_map_request(client_ip, port, lifetime, nonce), (client_ip, 5350))
    if resp is None or not resp.ok or resp.map is None:
        name = pcp.result_name(resp.result) if resp is not None else "no answer"
        fail(f"the router's PCP server answered {name} to your request; it should grant it.")
    ext = resp.map
    return (f"60 bytes, field for field as RFC 6887 lays them out; the router granted "
            f"{ext.external_ip}:{ext.external_port} -> {client_ip}:{port} for {resp.lifetime} s.")


# -- exercise 2: what did the router grant? ---------------------------------------------------------
def _map_request(client_ip: str = "192.168.1.10", port: int = 5000, nonce: bytes = bytes(range(1, 13))) -> bytes:
    return reference_request(client_ip, port, 7200, nonce)


def _server_answer(external_ip: str, *, refuse: tuple[int, int, str] | None = None,
                   client_ip: str = "192.168.1.10") -> bytes:
    server = PortMapServer(external_ip, "192.168.1.0/24", refuse=refuse, seed=0)
    server.start(0.0, ROUTER)
    server.datagram_received(_map_request(client_ip), (client_ip, 5350), 0.01)
    return server.datagrams_to_send()[0][0]


MINIUPNPD_REFUSAL = (pcp.NO_RESOURCES, 3, "Reserved / private IP address on ext interface: Port forwarding is "
                                          "impossible")


def responses() -> list[tuple[str, bytes, str]]:
    """(situation, PCP MAP response bytes from p2plab's server, the right verdict)."""
    return [
        ("a home router whose external address is public (203.0.113.10)", _server_answer("203.0.113.10"),
         "reachable"),
        ("a home router behind a carrier-grade NAT (its external address is 100.64.1.2)",
         _server_answer("100.64.1.2"), "wrong box"),
        ("a router behind another home router (external address 192.168.0.2)", _server_answer("192.168.0.2"),
         "wrong box"),
        ("a second public router (198.51.100.20)", _server_answer("198.51.100.20"), "reachable"),
        ("a router behind a carrier-grade NAT at the top of the shared range (100.127.255.1)",
         _server_answer("100.127.255.1"), "wrong box"),
        ("a router that refuses like Debian's miniupnpd when its external address is reserved (NO_RESOURCES)",
         _server_answer("100.64.1.2", refuse=MINIUPNPD_REFUSAL), "refused"),
        ("a client that is not on the router's LAN (NOT_AUTHORIZED)",
         _server_answer("203.0.113.10", client_ip="10.9.9.9"), "refused"),
        ("a router that cannot use its external address (NETWORK_FAILURE)",
         _server_answer("203.0.113.10", refuse=(pcp.NETWORK_FAILURE, 3, "no external address")), "refused"),
    ]


def reference_verdict(response: bytes) -> str:
    """The reference rule for exercise 2."""
    msg = pcp.decode(response)
    assert isinstance(msg, pcp.Response)
    if msg.result != pcp.SUCCESS or msg.map is None:
        return "refused"
    ip = msg.map.external_ip
    return "wrong box" if is_private(ip) or is_shared_cgn(ip) else "reachable"


def _external_ip(response: bytes) -> str:
    return pcp.unpack_ip(response[44:60])


@check(LAB, "the cell 'Exercise 2: what did the router grant?', function mapping_verdict")
def check_mapping_verdict(mapping_verdict: Any) -> str:
    cases = responses()
    got = {}
    for situation, data, _ in cases:
        value = mapping_verdict(data)
        if value not in VERDICTS:
            fail(f"for {situation} you returned {value!r}; return one of {', '.join(repr(v) for v in VERDICTS)}.")
        got[situation] = value
    wrong = [(s, d, want) for s, d, want in cases if got[s] != want]
    if not wrong:
        return (f"right for all {len(cases)} answers of the router: granted on a public address, granted on the "
                "wrong box (private or 100.64.0.0/10), refused.")
    by_want = {v: [got[s] for s, _, want in cases if want == v] for v in VERDICTS}
    situation, data, want = wrong[0]
    have = got[situation]
    result_byte = data[3]
    if want == "refused" and all(v != "refused" for v in by_want["refused"]):
        fail(f"for {situation} you did not say 'refused', but its result code (byte 3) is {result_byte} "
             f"({pcp.result_name(result_byte)}). Read the result code first: byte 3 of the response (byte 2 is "
             "reserved); anything but 0 (SUCCESS) is a refusal.")
    if want == "refused":
        fail(f"for {situation} you said {have!r}; its result code (byte 3) is {result_byte} "
             f"({pcp.result_name(result_byte)}): any result code but 0 means no mapping.")
    ext = _external_ip(data)
    if want == "reachable" and have == "refused":
        fail(f"for {situation} you said 'refused', but its result code (byte 3) is 0, SUCCESS: the router "
             f"granted {ext}. Is the result code the byte you read?")
    if want == "reachable":
        fail(f"for {situation} you said {have!r}, but the router granted a mapping on {ext}, a public address: "
             "anyone on the internet can reach it.")
    # want == "wrong box"
    if have == "refused":
        fail(f"for {situation} you said 'refused', but the result code is 0 (SUCCESS): the router did grant a "
             f"mapping. Look at the address it granted, {ext}: is it one the internet can reach?")
    shared = [got[s] for s, d, w in cases if w == "wrong box" and is_shared_cgn(_external_ip(d))]
    private = [got[s] for s, d, w in cases if w == "wrong box" and is_private(_external_ip(d))]
    if all(v == "reachable" for v in shared) and all(v == "reachable" for v in private):
        fail(f"for {situation} you said 'reachable': SUCCESS only means the router you asked made the mapping. Its "
             f"external address {ext} is not public, so another NAT sits beyond it and has no such mapping: "
             "check the granted address (bytes 44-59, IPv4-mapped; the IPv4 address is the last four bytes).")
    if all(v == "reachable" for v in shared):
        fail(f"for {situation} you said 'reachable'. {ext} is in 100.64.0.0/10, the shared address space of "
             "RFC 6598 that carriers use behind a carrier-grade NAT: not reachable from the internet either "
             "(RFC 1918's private ranges are not the only non-public addresses).")
    fail(f"for {situation} you said 'reachable', but the granted address {ext} is private (RFC 1918): another NAT "
         "sits beyond this router.")


# -- exercise 3: connection reversal ---------------------------------------------------------------
def _ep(text: Any) -> tuple[str, int]:
    ip, _, port = str(text).rpartition(":")
    return ip, int(port)


def reference_who_sends_first(caller: dict, callee: dict) -> str | None:
    """RFC 5128 section 3.2: a public callee is simply called; a NATed callee calls a public caller;
    two NATed peers cannot do it this way."""
    caller_natted = _ep(caller["reported"]) != _ep(caller["seen"])
    callee_natted = _ep(callee["reported"]) != _ep(callee["seen"])
    if not callee_natted:
        return caller["name"]
    if not caller_natted:
        return callee["name"]
    return None


def registrations(nat: str | None = "port-restricted-cone", bob_nat: str | None = None, seed: int = 0) -> dict[str, dict]:
    """What p2plab's rendezvous server (``ReversalServer``) learned when Alice (behind ``nat``, or on a
    public address when None) and Bob (public, or behind ``bob_nat``) registered, in the simulator:
    ``{"alice": {"name", "reported", "seen"}, "bob": {...}}``, endpoints as ``"ip:port"`` text."""
    from .. import sim
    from .. import topology as topo
    from ..addresses import fmt
    from ..reversal import ReversalPeer, ReversalServer
    from ..scenarios.reversal import ALICE_PORT, BOB_PORT, SERVER_PORT, topology_for

    if nat is None:
        t = topo.Topology("two-public")
        t.add_host("alice", topo.ALICE_PUBLIC_IP)
        t.add_host("bob", topo.BOB_PUBLIC_IP)
        t.add_server("server", topo.SERVER_IP)
    else:
        t = topology_for(nat, bob_nat)
    net = sim.Network.build(t, seed=seed)
    server = net.run_protocol("server", ReversalServer(), SERVER_PORT)
    for name, port in (("alice", ALICE_PORT), ("bob", BOB_PORT)):
        net.run_protocol(name, ReversalPeer(name, (topo.SERVER_IP, SERVER_PORT)), port)
    net.run(until=1.0)
    out = {}
    for ev in server.events:
        if ev.kind == "registered":
            out[ev.name] = {"name": ev.name, "reported": fmt(ev.private), "seen": fmt(ev.seen)}
    return out


_SETUPS = [("port-restricted-cone", None), ("symmetric", None), ("full-cone", None),
           ("port-restricted-cone", "full-cone"), (None, None)]


def _ports_only(caller: dict, callee: dict) -> str | None:
    """A typical mistake: 'behind a NAT' decided from the ports alone."""
    def natted(p: dict) -> bool:
        return _ep(p["reported"])[1] != _ep(p["seen"])[1]

    if not natted(callee):
        return caller["name"]
    return callee["name"] if not natted(caller) else None


def reversal_cases() -> list[tuple[str, dict, dict]]:
    """(description, caller, callee) from real registrations, both orders."""
    cases = []
    for nat, bob_nat in _SETUPS:
        reg = registrations(nat, bob_nat)
        where = (f"alice behind a {nat} NAT" if nat else "alice public") + ", " + (
            f"bob behind a {bob_nat} NAT" if bob_nat else "bob public")
        cases.append((f"{where}, bob calls alice", dict(reg["bob"]), dict(reg["alice"])))
        cases.append((f"{where}, alice calls bob", dict(reg["alice"]), dict(reg["bob"])))
    return cases


@check(LAB, "the cell 'Exercise 3: who sends first?', function who_sends_first")
def check_who_sends_first(who_sends_first: Any) -> str:
    cases = reversal_cases()
    results = []
    for what, caller, callee in cases:
        got = who_sends_first(dict(caller), dict(callee))
        if got is not None and got not in (caller["name"], callee["name"]):
            fail(f"{what}: you returned {got!r}; return the *name* of the peer that sends first "
                 f"({caller['name']!r} or {callee['name']!r}), or None.")
        results.append((what, caller, callee, got, reference_who_sends_first(caller, callee)))
    wrong = [r for r in results if r[3] != r[4]]
    if not wrong:
        return (f"right in all {len(cases)} cases: a public callee is dialled, a NATed callee calls a public caller "
                "back, and two NATed peers need hole punching (None).")
    natted = {id(p): _ep(p["reported"]) != _ep(p["seen"]) for _, c, t, _, _ in results for p in (c, t)}
    if all(got == _ports_only(caller, callee) for _, caller, callee, got, _ in results):
        fail("you decide who is behind a NAT from the ports alone. Many NATs keep the port (5000 stays 5000) and "
             "change only the address: compare the whole endpoint the peer reported with the one the server saw.")
    what, caller, callee, got, want = wrong[0]
    if want is None:
        fail(f"{what}: both peers are behind NATs (each reported an endpoint the server did not see), so neither "
             f"can be counted on to accept a first packet from the other; you returned {got!r}. Return None: "
             "reversal cannot help, hole punching (or a relay) must.")
    if got is None:
        fail(f"{what}: you returned None, but one side is public, so one side can always call the other.")
    if natted[id(callee)] and got == caller["name"]:
        fail(f"{what}: {callee['name']} is behind a NAT (reported {callee['reported']}, seen as {callee['seen']}), so "
             f"{caller['name']}'s first packet may well be dropped by that NAT. The NATed side must send first: its own "
             "packet opens the mapping the answer comes back through.")
    if not natted[id(callee)] and got == callee["name"]:
        fail(f"{what}: {callee['name']} is public (reported and seen the same, {callee['seen']}), so "
             f"{caller['name']} can simply call; turning the call around is only needed when the callee is NATed.")
    fail(f"{what}: you returned {got!r}; the peer that must send first is the other one.")


def run_with_choice(who_sends_first: Callable, nat: str, seed: int = 0) -> str:
    """For a demo cell: Bob (public) calls Alice (behind ``nat``); run the sim with the mode your choice
    implies ('direct' when bob sends first, 'reversal' when alice does) and say what happened."""
    from ..scenarios.reversal import run_reversal
    from .common import try_it

    reg = registrations(nat)
    first = try_it(who_sends_first, dict(reg["bob"]), dict(reg["alice"]), _label="who_sends_first")
    if first not in ("alice", "bob"):
        return f"{nat:22} your choice: {first!r} - nothing to run"
    mode = "direct" if first == "bob" else "reversal"
    res = run_reversal(nat, mode=mode, seed=seed)
    return f"{nat:22} your choice: {first:5} sends first -> {'connected' if res.direct else 'no connection'}"


# -- exercise 4: a port forward as an nftables rule --------------------------------------------------
_FORWARD_CASES = [
    ("wan", "203.0.113.10", "udp", 8080, "192.168.1.10", 5000),
    ("eth1", "198.51.100.20", "tcp", 8443, "192.168.0.25", 443),
    ("wan", "203.0.113.10", "udp", 51820, "192.168.1.23", 51820),
]


def reference_forward_rule(wan: str, public_ip: str, proto: str, port: int, inside_ip: str, inside_port: int) -> str:
    """The rule ``p2plab.netns.nftables.forward_rules`` writes for this forward (without its comment)."""
    from ..nat import PortForward, preset
    from ..netns.nftables import forward_rules

    b = preset("port-restricted-cone", forwards=(PortForward(proto, port, inside_ip, inside_port),))
    return forward_rules(b, wan, public_ip)[0].strip().split(" comment ")[0]


def parse_rule(text: str) -> dict[str, Any]:
    """The parts of a one-line nftables NAT rule that matter for a port forward: ``iif``/``oif``,
    ``daddr``/``saddr``, ``proto``, ``dport``/``sport``, the statement (``dnat``, ``snat``, ``masquerade``...)
    and its target address and port. Raises ValueError saying what it could not read."""
    import shlex

    try:
        words = shlex.split(str(text))
    except ValueError as exc:
        raise ValueError(f"the rule's quotes do not pair up ({exc})") from None
    out: dict[str, Any] = {}
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w in ("iifname", "oifname", "iif", "oif") and nxt is not None:
            out[w[:3]] = nxt  # iif or oif
            i += 2
        elif w == "ip" and nxt in ("daddr", "saddr") and i + 2 < len(words):
            out[nxt] = words[i + 2]
            i += 3
        elif w in ("udp", "tcp") and nxt in ("dport", "sport") and i + 2 < len(words):
            out["proto"] = w
            out[nxt] = words[i + 2]
            i += 3
        elif w in ("dnat", "snat", "masquerade", "redirect", "accept", "drop"):
            out["statement"] = w
            rest = words[i + 1:]
            if rest[:1] == ["ip"]:
                rest = rest[1:]
            if rest[:1] == ["to"] and len(rest) > 1:
                target = rest[1]
                ip, sep, port = target.rpartition(":") if target.count(":") == 1 else (target, "", "")
                out["to"] = ip if sep else target
                out["to_port"] = port if sep else None
            break
        elif w == "comment":
            i += 2
        else:
            raise ValueError(f"nft would not understand the word {w!r} here")
    return out


@check(LAB, "the cell 'Exercise 4: a port forward by hand', function forward_rule")
def check_forward_rule(forward_rule: Any) -> str:
    for case in _FORWARD_CASES:
        wan, public_ip, proto, port, inside_ip, inside_port = case
        call = f"forward_rule{case!r}"
        text = forward_rule(*case)
        if not isinstance(text, str):
            fail(f"{call} returned {type(text).__name__}; return the rule as one line of text, as `nft list ruleset` "
                 "shows it.")
        try:
            got = parse_rule(text)
        except ValueError as exc:
            fail(f"{call} gave {text!r}: {exc}. A forward reads: iifname \"<wan>\" ip daddr <public ip> <proto> "
                 "dport <port> dnat ip to <inside ip>:<port>.")
        want = parse_rule(reference_forward_rule(*case))
        if got == want:
            continue
        st = got.get("statement")
        if st in ("snat", "masquerade"):
            fail(f"{call}: {st} rewrites the *source* of packets leaving the router. A forward changes where an "
                 "incoming packet goes: destination NAT, `dnat`, in the prerouting chain.")
        if st != "dnat":
            fail(f"{call} gave {text!r}: the rule must end in a `dnat ip to <inside ip>:<port>` statement.")
        if "oif" in got:
            fail(f"{call}: `oifname` matches the interface a packet *leaves* by, which prerouting does not know yet. "
                 f"Bob's packet comes *in* on the router's outside interface: iifname \"{wan}\".")
        if got.get("iif") != wan:
            fail(f"{call}: match the outside interface the packet arrives on, iifname \"{wan}\"; you matched "
                 f"{got.get('iif')!r}. Without it a packet from the LAN to the public address would be forwarded too.")
        if "saddr" in got:
            fail(f"{call}: `ip saddr` is where the packet comes from, and Bob may be anywhere. Match where it is "
                 f"going: ip daddr {public_ip}, the router's public address.")
        if got.get("daddr") != public_ip:
            fail(f"{call}: match the router's public address, ip daddr {public_ip}; you matched {got.get('daddr')!r}.")
        if got.get("proto") != proto:
            fail(f"{call}: the forward is for {proto.upper()}; you matched {str(got.get('proto')).upper()}. A {proto} "
                 f"dport match only sees {proto.upper()} packets.")
        if "sport" in got:
            fail(f"{call}: `sport` is Bob's source port, which he picks freely; match the port he sends to, "
                 f"{proto} dport {port}.")
        if got.get("dport") == str(inside_port) and got.get("to_port") == str(port) and port != inside_port:
            fail(f"{call}: the two ports are swapped. Match the outside port Bob sends to ({proto} dport {port}) "
                 f"and rewrite to the inside port ({inside_ip}:{inside_port}).")
        if got.get("dport") != str(port):
            fail(f"{call}: match the outside port Bob sends to, {proto} dport {port}.")
        if got.get("to") != inside_ip:
            fail(f"{call}: rewrite the destination to the inside host, {inside_ip}; you wrote {got.get('to')!r}.")
        if got.get("to_port") is None and port != inside_port:
            fail(f"{call}: `dnat ip to {inside_ip}` keeps the port ({port}), which is what a DMZ host does; the "
                 f"service listens on {inside_port}: write {inside_ip}:{inside_port}.")
        fail(f"{call}: rewrite to {inside_ip}:{inside_port}; you wrote {got.get('to')}:{got.get('to_port')}.")
    return ("the same rule p2plab writes for its lab routers, for all three forwards: in on the outside interface, "
            "to the public address and port, destination NAT to the inside host and port.")


def forward_in_sim(forward_rule: Callable, seed: int = 0) -> str:
    """For a demo cell: read your rule for UDP 8080 -> 192.168.1.10:5000 on nat-a, put that forward on
    Alice's router in the simulator, and let Bob knock on 203.0.113.10:8080. One sentence."""
    from .. import sim
    from .. import topology as topo
    from ..nat import PortForward, preset
    from ..recorded import Echo, Hello
    from ..scenarios.forwarding import BOB_PORT, SERVICE_PORT, explain
    from .common import try_it

    text = try_it(forward_rule, "wan", topo.ALICE_NAT_IP, "udp", 8080, topo.ALICE_IP, SERVICE_PORT,
                  _label="forward_rule")
    if text is None:
        return "no rule yet"
    try:
        r = parse_rule(text)
        if r.get("statement") != "dnat" or r.get("daddr") != topo.ALICE_NAT_IP or r.get("iif") != "wan":
            return f"your rule {text!r} does not send Bob's packet anywhere (it must be a dnat for packets in on wan to {topo.ALICE_NAT_IP})"
        fwd = PortForward(r.get("proto") or "udp", int(r["dport"]), r["to"], int(r["to_port"] or 0))
    except (ValueError, KeyError, TypeError) as exc:
        return f"your rule {text!r} cannot be read: {exc}"
    net = sim.Network.build(topo.one_nat(preset("port-restricted-cone", forwards=(fwd,))), seed=seed)
    net.run_protocol("alice", Echo(), SERVICE_PORT)
    bob = net.run_protocol("bob", Hello((topo.ALICE_NAT_IP, 8080), "knock knock"), BOB_PORT)
    net.run(until=1.0)
    events = [{"kind": e.kind, "time": e.time, **e.data} for e in bob.events]
    res = explain(events, net.trace, "forward", "port-restricted-cone", False, "sim")
    reason = res.reason.replace("the DMZ rule keeps the port", "your rule keeps the port")
    return f"{fwd.describe()}: {'reached' if res.reached else 'not reached'}. {reason}"


def nft_check(forward_rule: Callable) -> str:
    """For a demo cell: ask the real ``nft`` (when this machine has it and may use it) whether your rule
    is valid nftables, with ``nft -c`` (check only: nothing is installed). One sentence."""
    import subprocess

    from .. import systools
    from .common import try_it

    text = try_it(forward_rule, "wan", "203.0.113.10", "udp", 8080, "192.168.1.10", 5000, _label="forward_rule")
    if text is None:
        return "no rule yet"
    tool = systools.find("nft")
    if tool is None:
        return "nft is not installed here, so only the check's own reading of the rule counts"
    script = ("table ip p2plab_lab_check {\n chain pre {\n  type nat hook prerouting priority dstnat;\n  "
              + str(text).replace("\n", " ") + "\n }\n}\n")
    try:
        r = subprocess.run([tool, "-c", "-f", "-"], input=script, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nft could not run here ({exc})"
    if r.returncode == 0:
        return "nft -c accepts your rule: it is valid nftables"
    err = r.stderr.strip().splitlines()
    if any("Operation not permitted" in line or "Permission denied" in line for line in err):
        return "nft is installed but may not be used here (it needs root), so only the check's reading counts"
    return "nft -c refuses your rule: " + (err[0] if err else f"exit status {r.returncode}")


__all__ = ["check_map_request", "check_mapping_verdict", "check_who_sends_first", "check_forward_rule",
           "forward_in_sim", "nft_check", "parse_rule", "reference_forward_rule", "reference_request",
           "reference_verdict", "reference_who_sends_first", "registrations", "responses", "reversal_cases",
           "run_with_choice", "VERDICTS"]
