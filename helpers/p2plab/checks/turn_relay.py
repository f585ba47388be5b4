"""Lab 06 - TURN: allocate a relay, permit the peer, relay data; and what relaying costs.

The learner writes

* ``authenticate(msg, username, realm, nonce, password)``: the bytes of ``msg`` with USERNAME,
  REALM, NONCE and MESSAGE-INTEGRITY (long-term credentials, RFC 8489 section 9.2),
* ``RelayClient(server, username, password, peer, message)``: a sans-I/O protocol
  (``p2plab.sansio.DatagramProtocol``) that allocates (answering the 401 challenge), creates a
  permission for the peer, sends ``message`` to the peer in a Send indication and collects what the
  peer sends back (Data indications) in ``self.received`` as ``(peer, data)``,
* ``relay_bill(users, bitrate_mbps, price_per_gb, hours_per_day=24, days=30)``: the relay's
  bandwidth in and out and the monthly bill, compared with ``p2plab.costs.relay_cost``.

The lab's network (``world()``): Alice behind a NAT, Bob on a public address (198.51.100.9), a
p2plab ``TurnServer`` on 192.0.2.1:3478. Bob answers whatever reaches his port 5000, once from
that port and once from port 6000 - a TURN permission is per IP address, so both come through.
"""

from __future__ import annotations

import random
from typing import Any

from .. import sim, topology
from ..addresses import fmt
from ..costs import relay_cost
from ..stun.message import (
    ALLOCATE,
    ERROR,
    NONCE,
    REALM,
    REQUEST,
    REQUESTED_TRANSPORT,
    USERNAME,
    XOR_RELAYED_ADDRESS,
    StunMessage,
    long_term_key,
    short_term_key,
)
from ..turn import TurnServer
from .common import check, close, fail, is_number, try_it
from .predict import Question, register

LAB = "turn_relay"
TURN_PORT = 3478
SERVER = (topology.SERVER_IP, TURN_PORT)
USER, PASSWORD = "alice", "alice-secret"
BOB = (topology.BOB_PUBLIC_IP, 5000)
BOB_OTHER_PORT = 6000
REPLY = b"hello alice, bob here"
REPLY_OTHER = b"and hello from bob's other port"

register(Question(
    "turn.permission-per-ip",
    "Alice's relay has a permission for Bob's 198.51.100.9:5000. Bob now sends to Alice's relay address "
    "from port 6000 of the same machine. Does the TURN server relay it to Alice? (yes/no)",
    ["2c133abd77d2cbf73c7ef785109d4aff04f10eb474d08b52e552d5c689ed0258"],
    "A TURN permission is for an IP address only; the port in XOR-PEER-ADDRESS is ignored (RFC 8656 "
    "section 9). Any port of 198.51.100.9 may now send to Alice through the relay.",
    kind="yes/no",
    feedback={"0093034a8f4d294279fb8104a3e156da40bb1c4911b8fb574dd3963f4e1c0f96":
              "That would be true if permissions were per transport address; they are per IP address."},
))


class _LoggingTurnServer(TurnServer):
    """p2plab's TURN server, noting every answer it gives: (time, method, class, error code)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answers: list[tuple[float, str, int, int | None]] = []
        self.requests: list[tuple[float, str, bool]] = []

    def _request(self, req: StunMessage, addr: Any) -> None:
        self.requests.append((self.now, req.method_name, req.has_integrity))
        super()._request(req, addr)

    def _reply(self, resp: StunMessage, addr: Any, key: Any) -> bytes:
        err = resp.error
        self.answers.append((self.now, resp.method_name, resp.cls, err[0] if err else None))
        return super()._reply(resp, addr, key)


class World:
    """Lab 06's network: Alice behind ``nat``, Bob at 198.51.100.9 (public), a TURN server on 192.0.2.1:3478."""

    def __init__(self, seed: int = 0, nat: str = "port-restricted-cone") -> None:
        self.net = sim.Network.build(topology.one_nat(nat), seed=seed)
        self.turn = _LoggingTurnServer({USER: PASSWORD}, realm="p2plab", rng=random.Random(seed))
        self.net.run_protocol("server", self.turn, TURN_PORT)
        self.server = SERVER
        self.username, self.password = USER, PASSWORD
        self.peer = BOB
        self.alice_nat_ip = topology.ALICE_NAT_IP
        bob = self.net.host("bob")
        self.bob_socket = bob.udp_socket(BOB[1])
        self.bob_other = bob.udp_socket(BOB_OTHER_PORT)
        self.bob_got: list[tuple[float, bytes, tuple[str, int]]] = []
        self.bob_socket.on_datagram = self._bob_receives

    def _bob_receives(self, data: bytes, addr: tuple[str, int]) -> None:
        self.bob_got.append((self.net.now, data, addr))
        if len(self.bob_got) == 1:  # answer the first datagram: from port 5000, then from port 6000
            self.bob_socket.sendto(REPLY, addr)
            self.net.after(0.05, self.bob_other.sendto, REPLY_OTHER, addr)

    @property
    def relays(self) -> list[tuple[str, int]]:
        return [a.relay for a in self.turn.allocations.values()]

    def __repr__(self) -> str:
        return (f"<World: alice 192.168.1.10 behind a NAT ({topology.ALICE_NAT_IP}), bob at {fmt(BOB)} "
                f"(answers from ports {BOB[1]} and {BOB_OTHER_PORT}), TURN server {fmt(SERVER)}, "
                f"user {USER!r}>")


def world(seed: int = 0, nat: str = "port-restricted-cone") -> World:
    """A fresh lab network."""
    return World(seed, nat)


def run(RelayClient: Any, message: bytes = b"hello bob, via the relay", seed: int = 0, nat: str = "port-restricted-cone",
        until: float = 3.0) -> dict:
    """Run ``RelayClient`` on Alice (port 5000) in the lab's network; returns the world, the client and what happened."""
    w = world(seed, nat)
    client = RelayClient(w.server, w.username, w.password, w.peer, message)
    runner = w.net.run_protocol("alice", client, 5000)
    w.net.run(until=until)
    return {"world": w, "client": client, "runner": runner, "net": w.net, "bob_got": w.bob_got,
            "relays": w.relays, "answers": w.turn.answers, "stats": dict(w.turn.stats)}


def relay_with(RelayClient: Any, message: bytes = b"hello bob, via the relay", seed: int = 0) -> str | None:
    """For demo cells: run your RelayClient and say what Bob and Alice received (never raises)."""
    out = try_it(run, RelayClient, message, seed, _label=getattr(RelayClient, "__name__", "RelayClient"))
    if out is None:
        return None
    lines = ["TURN server answers: " + (", ".join(_answer_text(a) for a in out["answers"]) or "none")]
    relay = out["relays"][0] if out["relays"] else None
    lines.append(f"relay address allocated for alice: {fmt(relay) if relay else 'none'}")
    for t, data, src in out["bob_got"]:
        lines.append(f"t={t:.3f} bob got {data!r} from {fmt(src)}"
                     + (" (the relay)" if src == relay else " (NOT the relay)"))
    for peer, data in getattr(out["client"], "received", []) or []:
        lines.append(f"alice got {data!r} from {fmt(peer) if peer else peer} through the relay")
    return "\n".join(lines)


def _answer_text(a: tuple) -> str:
    _, method, cls, code = a
    return f"{method} {code}" if cls == ERROR else f"{method} ok"


# -- exercise 1 ------------------------------------------------------------------------------------
def _challenge(realm: str) -> tuple[TurnServer, str, str]:
    s = TurnServer({"alice": "alice-secret", "carol": "c4rol"}, realm=realm, rng=random.Random(7))
    s.start(0.0, SERVER)
    s.datagram_received(StunMessage(ALLOCATE, REQUEST, attributes=[(REQUESTED_TRANSPORT, 17)]).encode(), CLIENT, 0.0)
    resp = StunMessage.decode(s.datagrams_to_send()[0][0])
    return s, resp.get(REALM), resp.get(NONCE)


CLIENT = ("203.0.113.10", 40000)


@check(LAB, "the cell 'Exercise 1: sign a request', function authenticate")
def check_authenticate(authenticate: Any) -> str:
    for user, password, realm in (("alice", "alice-secret", "p2plab"), ("carol", "c4rol", "example.org")):
        server, realm, nonce = _challenge(realm)
        msg = StunMessage(ALLOCATE, REQUEST, attributes=[(REQUESTED_TRANSPORT, 17)])
        data = authenticate(msg, user, realm, nonce, password)
        if not isinstance(data, (bytes, bytearray)):
            fail(f"authenticate returned {type(data).__name__}; return the message's bytes: msg.encode(key=...).")
        try:
            got = StunMessage.decode(bytes(data))
        except Exception as exc:  # noqa: BLE001 - StunParseError, explained
            fail(f"your bytes are not a STUN message ({exc}).")
        if got.transaction_id != msg.transaction_id or got.method != ALLOCATE:
            fail("your bytes are a different message: add the attributes to `msg` itself and encode it, so the "
                 "request keeps its method and transaction ID.")
        if got.get(REQUESTED_TRANSPORT) != 17:
            fail("the signed request lost its REQUESTED-TRANSPORT: keep the request's own attributes and add the "
                 "credentials after them.")
        missing = [name for name, attr in (("USERNAME", USERNAME), ("REALM", REALM), ("NONCE", NONCE)) if attr not in got]
        if missing:
            fail(f"the request has no {', '.join(missing)}: the server needs all three (USERNAME, and the REALM "
                 "and NONCE from its 401 answer, sent back unchanged) to find the key and check the nonce.")
        if (got.get(USERNAME), got.get(REALM), got.get(NONCE)) != (user, realm, nonce):
            fail(f"USERNAME/REALM/NONCE are {got.get(USERNAME)!r}/{got.get(REALM)!r}/{got.get(NONCE)!r}; send the "
                 f"username you were given and the realm and nonce exactly as the server sent them (this server's "
                 f"realm is {realm!r}).")
        if not got.has_integrity:
            fail("no MESSAGE-INTEGRITY: pass the key to encode (msg.encode(key=key)); it appends the HMAC-SHA1 of "
                 "the message as the last attribute.")
        key = long_term_key(user, realm, password)
        if not got.check_integrity(key):
            if got.check_integrity(short_term_key(password)):
                fail("your MESSAGE-INTEGRITY uses the short-term key (the password alone, as ICE does). TURN uses "
                     "long-term credentials: key = MD5(username:realm:password), long_term_key(username, realm, "
                     "password).")
            if any(got.check_integrity(long_term_key(*args)) for args in
                   ((realm, user, password), (user, password, realm), (password, realm, user), (user, "p2plab", password))):
                fail("the key is MD5 of 'username:realm:password' in that order, with this server's realm: "
                     "long_term_key(username, realm, password).")
            fail("MESSAGE-INTEGRITY does not verify with the long-term key MD5(username:realm:password): encode "
                 "with that key, and add every attribute *before* encoding (anything after the integrity "
                 "attribute is not covered).")
        server.datagram_received(bytes(data), CLIENT, 1.0)
        answer = StunMessage.decode(server.datagrams_to_send()[0][0])
        if answer.cls == ERROR:
            fail(f"the TURN server still refuses it: {answer.error[0]} {answer.error[1]}.")
        if answer.get(XOR_RELAYED_ADDRESS) is None:
            fail("the server's answer has no relay address.")
    return "the TURN server accepts your signed Allocate (two users, two realms)."


# -- exercise 2 ------------------------------------------------------------------------------------
def _requests(out: dict, method: str) -> list[tuple]:
    return [a for a in out["answers"] if a[1] == method]


@check(LAB, "the cell 'Exercise 2: the relay client', method datagram_received")
def check_relay_client(RelayClient: Any) -> str:
    message = b"hello bob, this went through the relay"
    out = run(RelayClient, message)
    client = out["client"]
    allocs = _requests(out, "Allocate")
    if not allocs:
        fail("the TURN server never heard an Allocate from your client: keep the given start().")
    if not any(a[3] is None for a in allocs):
        if len(allocs) == 1:
            fail("the server answered your Allocate with 401 Unauthenticated (with a REALM and a NONCE) and your client "
                 "did nothing: on that error response, remember realm and nonce and send the same request again "
                 "with self.request(...) - now signed with authenticate().")
        codes = ", ".join(str(a[3]) for a in allocs)
        fail(f"every Allocate was refused ({codes}): after the 401, the retry must carry the server's REALM and "
             "NONCE (check that self.realm and self.nonce are set before you call self.request again).")
    if len(allocs) > 3:
        fail(f"your client sent {len(allocs)} Allocate requests: retry once after the 401, not in a loop.")
    relay = out["relays"][0] if out["relays"] else None
    mine = getattr(client, "relayed", None)
    if mine is not None and tuple(mine) != relay:
        if tuple(mine)[0] == topology.ALICE_NAT_IP:
            fail(f"self.relayed is {fmt(mine)}, Alice's NAT (XOR-MAPPED-ADDRESS: how the server sees her). The relay "
                 f"address is XOR-RELAYED-ADDRESS ({fmt(relay)}).")
        fail(f"self.relayed is {mine!r}, but the server allocated {fmt(relay)} (XOR-RELAYED-ADDRESS).")
    perms = _requests(out, "CreatePermission")
    if not perms:
        fail("the allocation succeeded, but no CreatePermission followed: a relay only lets peers in (and your "
             "data out) after a permission for the peer's address.")
    if all(p[3] == 401 for p in perms):
        fail("your CreatePermission got 401: once you know the realm and nonce, *every* request must be signed "
             "(USERNAME, REALM, NONCE, MESSAGE-INTEGRITY), not only the Allocate.")
    if all(p[3] is not None for p in perms):
        fail(f"your CreatePermission was refused ({perms[-1][3]}): give XOR-PEER-ADDRESS the peer's address "
             f"(self.peer, {fmt(BOB)}).")
    sent_by = {src for _, data, src in out["bob_got"] if data == message}
    if not sent_by:
        if out["stats"].get("dropped-no-permission"):
            fail("the server dropped your data: no permission for that peer (yet). Send only after the "
                 "CreatePermission success response arrives, and to the IP the permission is for.")
        fail("Bob never received the message: after the permission is granted, send it to the server in a Send "
             "indication (method SEND, class INDICATION) with XOR-PEER-ADDRESS = the peer and DATA = the bytes.")
    if relay not in sent_by:
        src = next(iter(sent_by))
        fail(f"Bob got the message from {fmt(src)}, not from the relay address {fmt(relay) if relay else '?'}: that "
             "is a direct path. Wrap the data in a Send indication to the TURN server; the server sends it on "
             "from the relay address.")
    received = [(tuple(p) if p else p, bytes(d)) for p, d in (getattr(client, "received", None) or [])]
    if not received:
        fail("Bob answered (to the relay address), but self.received is empty: the server brings his data in a "
             "Data indication (method DATA, class INDICATION): append (XOR-PEER-ADDRESS, DATA) to self.received.")
    if (BOB, REPLY) not in received:
        fail(f"self.received is {received!r}; Bob's answer {REPLY!r} came from {fmt(BOB)}: store (XOR-PEER-ADDRESS, "
             "DATA) of each Data indication.")
    if ((BOB[0], BOB_OTHER_PORT), REPLY_OTHER) not in received:
        fail(f"Bob also wrote from port {BOB_OTHER_PORT} and the server relayed it (a permission is per IP address, "
             f"not per port), but it is not in self.received: accept Data indications from any port of the peer.")
    # the same client in a second network: a symmetric NAT in front of Alice, another message
    again = run(RelayClient, b"second run", seed=3, nat="symmetric")
    if not any(d == b"second run" and s in again["relays"] for _, d, s in again["bob_got"]):
        fail("your client works in the first network but not behind a symmetric NAT with another message: use "
             "self.peer, self.message and the addresses you are given, nothing fixed.")
    return (f"allocated {fmt(relay)} after the 401 challenge, permitted {BOB[0]}, Bob got the message from the "
            f"relay and his answers (ports {BOB[1]} and {BOB_OTHER_PORT}) came back.")


# -- exercise 3 ------------------------------------------------------------------------------------
BILL_KEYS = ("in_mbps", "out_mbps", "total_mbps", "monthly_gb", "bill")


@check(LAB, "the cell 'Exercise 3: the bill', function relay_bill")
def check_relay_bill(relay_bill: Any) -> str:
    cases = [(30, 2.0, 0.05, 24, 30), (1000, 2.0, 0.08, 24, 30), (250, 1.5, 0.05, 8, 22), (1, 4.0, 0.12, 24, 31),
             (0, 2.0, 0.05, 24, 30)]
    for users, rate, price, hours, days in cases:
        got = relay_bill(users, rate, price, hours_per_day=hours, days=days)
        if not isinstance(got, dict):
            fail(f"relay_bill returned {type(got).__name__}; return a dict with the keys {', '.join(BILL_KEYS)}.")
        missing = [k for k in BILL_KEYS if k not in got]
        if missing:
            fail(f"your dict has no {', '.join(missing)}; return all of {', '.join(BILL_KEYS)}.")
        bad = [k for k in BILL_KEYS if not is_number(got[k])]
        if bad:
            fail(f"{bad[0]} is {got[bad[0]]!r}; every value is a number.")
        ref = relay_cost(users, rate, price_per_gb=price, hours_per_day=hours, days=days)
        want = {"in_mbps": ref.in_mbps, "out_mbps": ref.out_mbps, "total_mbps": ref.in_mbps + ref.out_mbps,
                "monthly_gb": ref.billable_gb, "bill": ref.monthly_cost}
        case = f"{users} users x {rate:g} Mbit/s, {hours} h/day for {days} days at ${price:g}/GB"
        if users == 0:
            if any(abs(got[k]) > 1e-9 for k in BILL_KEYS):
                fail("with 0 users the relay carries nothing and costs nothing; something in your function does not "
                     "scale with users.")
            continue
        if not close(got["in_mbps"], want["in_mbps"], 1e-6):
            fail(f"{case}: in_mbps = {got['in_mbps']:g}. Every user's stream enters the relay: users x bitrate.")
        if not close(got["out_mbps"], want["out_mbps"], 1e-6):
            if got["out_mbps"] == 0:
                fail(f"{case}: out_mbps = 0. A relay receives every byte *and sends it on*: what goes in comes out.")
            fail(f"{case}: out_mbps = {got['out_mbps']:g}; the relay sends on exactly what it receives.")
        if not close(got["total_mbps"], want["total_mbps"], 1e-6):
            if close(got["total_mbps"], want["in_mbps"], 1e-6):
                fail(f"{case}: total_mbps = {got['total_mbps']:g}, only one direction. Forgetting the outbound "
                     "direction halves the relay's traffic: the total is in + out, twice the users' streams.")
            fail(f"{case}: total_mbps = {got['total_mbps']:g}; the relay's total traffic is in + out.")
        gb, wgb = got["monthly_gb"], want["monthly_gb"]
        if not close(gb, wgb, 1e-6):
            if close(gb, wgb * 8, 1e-6):
                fail(f"{case}: monthly_gb = {gb:,.1f}, 8 times too much. Mbit/s are mega*bits*; a gigabyte is 10^9 "
                     "*bytes*: divide by 8 (Mbps vs MB/s).")
            if close(gb, wgb / 8, 1e-6) or close(gb, wgb / 64, 1e-6):
                fail(f"{case}: monthly_gb = {gb:,.1f}, 8 times too little: bits to bytes is a division by 8, "
                     "not a multiplication.")
            if close(gb, wgb * 2, 1e-6):
                fail(f"{case}: monthly_gb = {gb:,.1f}, twice the egress. Clouds bill the bytes that *leave* the "
                     "server (egress); incoming traffic is usually free. Count out_mbps only.")
            if close(gb, wgb * 1e9 / 2**30, 1e-6):
                fail(f"{case}: monthly_gb = {gb:,.1f}: you divided by 2^30 (GiB). Providers bill GB = 10^9 bytes.")
            if close(gb, wgb * 1000, 1e-6) or close(gb, wgb / 1000, 1e-6):
                fail(f"{case}: monthly_gb = {gb:,.1f}, off by a factor 1000: megabits -> bytes -> gigabytes "
                     "(x 10^6 / 8 / 10^9).")
            if close(gb, wgb * 24 / hours, 1e-6):
                fail(f"{case}: monthly_gb = {gb:,.1f}: the streams run {hours} hours a day, not 24 - use "
                     "hours_per_day.")
            if close(gb, wgb * 30 / days, 1e-6) or close(gb, wgb / days, 1e-6):
                fail(f"{case}: monthly_gb = {gb:,.1f}: use the `days` you are given.")
            fail(f"{case}: monthly_gb = {gb:,.1f}; expected about {wgb:,.1f}. Mbit/s x 10^6 / 8 = bytes per second; "
                 "x seconds in the period; / 10^9 = GB.")
        if not close(got["bill"], want["bill"], 1e-6):
            if close(got["bill"], got["monthly_gb"] * price * 2, 1e-6):
                fail(f"{case}: bill = {got['bill']:,.2f}: that charges both directions; the bill is monthly_gb x "
                     "price (egress).")
            fail(f"{case}: bill = {got['bill']:,.2f}; it is monthly_gb x price_per_gb = {want['bill']:,.2f}.")
    price = 0.05  # the course's assumed egress price (notebooks 01 and 09, lab 06)
    ref = relay_cost(1000, 2.0, price_per_gb=price)
    return (f"matches p2plab.costs.relay_cost; e.g. 1000 users x 2 Mbit/s: {ref.out_gb:,.0f} GB out a month, "
            f"${ref.monthly_cost:,.0f} at the course's assumed ${price:.2f}/GB.")


__all__ = ["world", "World", "run", "relay_with", "check_authenticate", "check_relay_client", "check_relay_bill",
           "SERVER", "BOB", "REPLY", "REPLY_OTHER"]
