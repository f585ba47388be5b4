"""A sans-I/O TURN server over UDP (RFC 8656): relays for clients that cannot reach peers directly.

A client *allocates* a relay address on the server (Allocate, authenticated with long-term
credentials: username, realm, password). The server then relays:

* client -> peer: Send indications or ChannelData frames arrive on the main address; the server
  sends the payload to the peer *from the relay address*;
* peer -> client: datagrams arriving on the relay address become Data indications (or
  ChannelData, once a channel is bound) sent to the client.

A peer can only send through the relay once the client has installed a *permission* for the
peer's IP address (CreatePermission, 300 s; ports do not matter), so the relay is not an open
door. Allocations live 600 s unless refreshed; Refresh with LIFETIME 0 deletes one at once.
Expired allocations and reservations are freed (with their ports) by a timer, so a client that
crashes holds its quota for at most its allocation's lifetime.

Allocate options (RFC 8656 section 7.2):

* EVEN-PORT asks for an even relay port; with its R bit the server also reserves port N+1 for
  30 s and answers with a RESERVATION-TOKEN (RTP on N, RTCP on N+1);
* RESERVATION-TOKEN allocates that reserved port (508 when the token is unknown or expired; 400
  when combined with EVEN-PORT or an address-family attribute);
* REQUESTED-ADDRESS-FAMILY asks for an IPv6 (or IPv4) relay, ADDITIONAL-ADDRESS-FAMILY for both
  (a dual allocation); 440 when the server has no relay address of that family (give it
  ``relay_ip6``);
* DONT-FRAGMENT: accepted, and Send indications carrying it leave with the DF bit set.

Channel numbers: RFC 8656 allows 0x4000-0x4FFF; RFC 5766 allowed 0x4000-0x7FFF and some
clients (coturn's ``turnutils_uclient -c``) still use that range, so the server accepts it too
unless ``rfc5766_channels=False``.

Security defaults: peers on loopback, unspecified or multicast addresses and the server's own
addresses are refused (403) unless ``allowed_peers`` lists a CIDR containing them; when
``allowed_peers`` is given, peers outside it are refused too. Each user may hold at most
``max_allocations_per_user`` allocations (486 beyond). Nonces are stateless (an HMAC of their
issue time) so junk traffic cannot fill memory.

Plain STUN: a Binding request gets its XOR-MAPPED-ADDRESS like from a STUN server, without
credentials (RFC 8656 section 5: TURN runs on STUN's ports), so one server on 3478 serves both.

Clients may also come over TCP or TLS (``p2plab.turn.stream`` frames the byte stream and feeds
each message here with a ``StreamClient`` address); relaying to peers is always UDP.

Relay sockets are described in ``p2plab.stun.server``: ``local_addresses()`` lists the relay
addresses in use, datagrams on them come in through ``datagram_received_on``, and outbox entries
carry ``.via`` (the relay address to send from).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import secrets
import struct
from dataclasses import dataclass, field

from ..addresses import fmt
from ..errors import ConfigurationError, StunParseError
from ..sansio import Addr
from ..stun.message import (
    ADDITIONAL_ADDRESS_FAMILY,
    ADDRESS_ERROR_CODE,
    ALLOCATE,
    BINDING,
    CHANGE_IP,
    CHANGE_PORT,
    CHANGE_REQUEST,
    CHANNEL_BIND,
    CHANNEL_MAX,
    CHANNEL_MAX_RFC5766,
    CHANNEL_MIN,
    CHANNEL_NUMBER,
    CREATE_PERMISSION,
    DATA,
    DATA_ATTR,
    DONT_FRAGMENT,
    EVEN_PORT,
    EVEN_PORT_R,
    FAMILY_IPV4,
    FAMILY_IPV6,
    INDICATION,
    LIFETIME,
    NONCE,
    REALM,
    REFRESH,
    REQUEST,
    REQUESTED_ADDRESS_FAMILY,
    REQUESTED_TRANSPORT,
    RESERVATION_TOKEN,
    SEND,
    SOFTWARE,
    SUCCESS,
    UNKNOWN_ATTRIBUTES,
    USERNAME,
    XOR_MAPPED_ADDRESS,
    XOR_PEER_ADDRESS,
    XOR_RELAYED_ADDRESS,
    ChannelData,
    StunMessage,
    is_stun,
    long_term_key,
)
from ..stun.precis import opaque_string
from ..stun.server import MultiAddressProtocol, Outgoing

log = logging.getLogger("p2plab.turn.server")

DEFAULT_LIFETIME = 600.0
MAX_LIFETIME = 3600.0
PERMISSION_LIFETIME = 300.0
CHANNEL_LIFETIME = 600.0
NONCE_LIFETIME = 600.0
RESERVATION_LIFETIME = 30.0  # RFC 8656 section 7.2: hold a reserved port at least 30 s
UDP = 17
_CHANNEL_HEADER = struct.Struct("!HH")
_UNBOUND = (None, 0.0)

FORBIDDEN_NETS = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32", "::/128", "::1/128", "ff00::/8",
)]


@dataclass
class Allocation:
    """One client's relay: who owns it, where it relays from, until when, and to whom."""

    client: Addr
    username: str
    key: bytes
    relay: Addr
    expires: float
    transaction_id: bytes
    response: bytes = b""
    permissions: dict[str, float] = field(default_factory=dict)  # peer IP -> expiry
    channels: dict[int, tuple[Addr, float]] = field(default_factory=dict)  # number -> (peer, expiry)
    peer_channels: dict[Addr, int] = field(default_factory=dict)
    relay6: Addr | None = None  # the IPv6 relay of a dual allocation (ADDITIONAL-ADDRESS-FAMILY)

    def permitted(self, ip: str, now: float) -> bool:
        return self.permissions.get(ip, -1.0) > now

    @property
    def relays(self) -> list[Addr]:
        """Every relay address of this allocation (two for a dual IPv4+IPv6 allocation)."""
        return [self.relay] if self.relay6 is None else [self.relay, self.relay6]

    def relay_for(self, ip: str) -> Addr | None:
        """The relay address of the same family as peer ``ip`` (None: no such relay)."""
        v6 = ":" in ip
        if (":" in self.relay[0]) == v6:
            return self.relay
        relay6 = self.relay6
        return relay6 if relay6 is not None and v6 else None


@dataclass
class Reservation:
    """A relay port held for a later Allocate with RESERVATION-TOKEN (EVEN-PORT with R=1)."""

    relay: Addr
    expires: float


class TurnServer(MultiAddressProtocol):
    """A TURN server. ``users`` maps usernames to passwords; ``relay_ip`` defaults to the
    listening IP; relay ports are drawn from ``relay_ports``."""

    def __init__(self, users: dict[str, str], realm: str = "p2plab", relay_ip: str | None = None,
                 relay_ports: tuple[int, int] = (49152, 65535), allowed_peers: list[str] | None = None,
                 max_allocations_per_user: int = 10, default_lifetime: float = DEFAULT_LIFETIME,
                 max_lifetime: float = MAX_LIFETIME, nonce_lifetime: float = NONCE_LIFETIME,
                 software: str | None = "p2plab", rng: random.Random | None = None,
                 max_allocations: int = 1000, relay_ip6: str | None = None,
                 rfc5766_channels: bool = True, reservation_lifetime: float = RESERVATION_LIFETIME) -> None:
        super().__init__()
        if not users:
            raise ConfigurationError("a TURN server needs at least one user, e.g. users={'alice': 'secret'}")
        self.users = {}
        for name, password in users.items():
            try:  # RFC 8489: usernames and passwords are prepared with OpaqueString (RFC 8265)
                self.users[opaque_string(name, "username")] = password
                long_term_key(name, realm, password)
            except ConfigurationError as exc:
                raise ConfigurationError(f"TURN user {name!r}: {exc}") from None
        self.realm = realm
        self.relay_ip = relay_ip
        if relay_ip6 is not None and ":" not in relay_ip6:
            raise ConfigurationError(f"relay_ip6 must be an IPv6 address like '::1'; got {relay_ip6!r}")
        self.relay_ip6 = relay_ip6
        self.rfc5766_channels = rfc5766_channels
        self.reservation_lifetime = reservation_lifetime
        # True when sent datagrams can carry the DF bit (the aio driver sets it for its platform)
        self.can_dont_fragment = True
        lo, hi = relay_ports
        if not 1 <= lo <= hi <= 65535:
            raise ConfigurationError(f"relay_ports {relay_ports} is not a port range like (49152, 65535)")
        self.relay_ports = (lo, hi)
        try:
            self.allowed_peers = ([ipaddress.ip_network(c, strict=False) for c in allowed_peers]
                                  if allowed_peers is not None else None)
        except ValueError as exc:
            raise ConfigurationError(f"allowed_peers must be CIDRs like '10.0.0.0/8': {exc}") from None
        self.max_per_user = max_allocations_per_user
        self.max_allocations = max_allocations
        self.default_lifetime = default_lifetime
        self.max_lifetime = max_lifetime
        self.nonce_lifetime = nonce_lifetime
        self.software = software
        self.rng = rng or random.Random(secrets.randbits(64))
        self._secret = self.rng.getrandbits(128).to_bytes(16, "big")
        self.allocations: dict[Addr, Allocation] = {}
        self.by_relay: dict[Addr, Allocation] = {}
        self.reservations: dict[bytes, Reservation] = {}  # token -> reserved relay address
        self._expiry_timer: float | None = None
        # bumped whenever local_addresses() may have changed, so a driver re-reads it only then
        self.addresses_version = 0

    # -- transports ---------------------------------------------------------------------------
    def send(self, data: bytes, addr: Addr) -> None:
        """Queue ``data`` for a client: ``addr`` keeps its type, so an answer to a TCP/TLS client
        (a ``turn.stream.StreamClient``) goes back on its connection."""
        dest = addr if getattr(addr, "transport", None) is not None else (addr[0], int(addr[1]))
        self._outbox.append(Outgoing(bytes(data), dest, None))

    def stream_closed(self, client: Addr) -> None:
        """A TCP/TLS client's connection closed: its allocation goes with it (that 5-tuple can
        never carry an answer again)."""
        alloc = self.allocations.get(client)
        if alloc is not None:
            self._delete(alloc, "deleted")
            self._schedule_expiry()

    # -- addresses --------------------------------------------------------------------------
    def local_addresses(self) -> set[Addr]:
        return set(self.by_relay) | {r.relay for r in self.reservations.values()}

    def relay_ips(self) -> dict[int, str]:
        """The relay IP for each address family the server can relay from: {4: ip, 6: ip}."""
        ips: dict[int, str] = {}
        main = self.relay_ip or (self.local_addr[0] if self.local_addr else "0.0.0.0")
        ips[6 if ":" in main else 4] = main
        if self.relay_ip6:
            ips.setdefault(6, self.relay_ip6)
        return ips

    def _own_ips(self) -> set[str]:
        ips = {ip for ip in (self.relay_ip, self.relay_ip6) if ip}
        if self.local_addr:
            ips.add(self.local_addr[0])
        return ips

    def peer_allowed(self, ip: str) -> bool:
        """May clients relay to/from this peer IP? (see the module docstring)"""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if self.allowed_peers is not None:
            return any(addr in net for net in self.allowed_peers if net.version == addr.version)
        if ip in self._own_ips():
            return False
        return not any(addr in net for net in FORBIDDEN_NETS if net.version == addr.version)

    # -- nonces -----------------------------------------------------------------------------
    def make_nonce(self) -> str:
        stamp = f"{int(self.now * 1000):x}"
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha1).hexdigest()[:16]
        return f"{stamp}-{mac}"

    def nonce_valid(self, nonce: str) -> bool:
        stamp, _, mac = nonce.partition("-")
        good = hmac.new(self._secret, stamp.encode(), hashlib.sha1).hexdigest()[:16]
        if not hmac.compare_digest(good, mac):
            return False
        try:
            issued = int(stamp, 16) / 1000
        except ValueError:
            return False
        return issued <= self.now + 1e-6 and self.now - issued < self.nonce_lifetime

    # -- input ------------------------------------------------------------------------------
    def datagram_received_on(self, data: bytes, addr: Addr, local: Addr | None, now: float) -> None:
        self.now = now
        if self._expiry_timer is not None and now >= self._expiry_timer:
            self._expiry_timer = None
            self._expire(now)
            self._schedule_expiry()
        if local is not None and local != self.local_addr:
            alloc = self.by_relay.get(local)
            if alloc is not None:
                self._from_peer(alloc, data, addr)
            else:  # a reserved port (or one just freed): nobody to relay to
                self.stats["dropped"] += 1
        elif data[:1] and 0x40 <= data[0] <= (0x7F if self.rfc5766_channels else 0x4F):
            self._channel_data_from_client(data, addr)
        elif is_stun(data):
            try:
                msg = StunMessage.decode(data)
            except StunParseError as exc:
                self.bad_packet(addr, str(exc))
                return
            if msg.has_fingerprint and not msg.check_fingerprint():
                self.bad_packet(addr, "wrong FINGERPRINT")
            elif msg.cls == REQUEST:
                self._request(msg, addr)
                if msg.method != BINDING:  # a Binding changes no state: no timer to recompute
                    self._schedule_expiry()
            elif msg.cls == INDICATION and msg.method == SEND:
                self._send_indication(msg, addr)
            else:
                self.stats["ignored"] += 1
        else:
            self.bad_packet(addr, f"neither STUN nor ChannelData ({len(data)} bytes)")

    def on_timer(self, name: str, now: float) -> None:
        if name == "expire":
            self._expiry_timer = None
            self._expire(now)
            self._schedule_expiry()

    # -- requests ---------------------------------------------------------------------------
    def _reply(self, resp: StunMessage, addr: Addr, key: bytes | None) -> bytes:
        if self.software:
            resp.add(SOFTWARE, self.software)
        data = resp.encode(key=key, fingerprint=True)
        self.send(data, addr)
        return data

    def _challenge(self, req: StunMessage, addr: Addr, code: int) -> None:
        resp = req.error_response(code, None, [(REALM, self.realm), (NONCE, self.make_nonce())])
        self._reply(resp, addr, None)

    def _request(self, req: StunMessage, addr: Addr) -> None:
        handlers = {ALLOCATE: self._allocate, REFRESH: self._refresh,
                    CREATE_PERMISSION: self._create_permission, CHANNEL_BIND: self._channel_bind}
        handler = handlers.get(req.method)
        self.stats["requests"] += 1
        if req.method == BINDING:
            self._binding(req, addr)
            return
        if handler is None:
            self._reply(req.error_response(400, "Unsupported method"), addr, None)
            return
        # authentication (RFC 8489 section 9.2.4)
        if not req.has_integrity:
            self._challenge(req, addr, 401)
            return
        username, realm, nonce = req.get(USERNAME), req.get(REALM), req.get(NONCE)
        if username is None or realm is None or nonce is None:
            self._reply(req.error_response(400, "Missing USERNAME, REALM or NONCE"), addr, None)
            return
        if not self.nonce_valid(nonce):
            self._challenge(req, addr, 438)
            return
        try:
            password = self.users.get(opaque_string(username, "username"))
            key = long_term_key(username, realm, password) if password is not None else None
        except ConfigurationError:  # a USERNAME or REALM that OpaqueString refuses: no such user
            key = None
        if key is None or realm != self.realm or not req.check_integrity(key):
            self.stats["auth-failed"] += 1
            log.info("%s %s from %s: wrong credentials for %r", req.method_name, "request", fmt(addr), username)
            self._challenge(req, addr, 401)
            return
        unknown = req.unknown_required()
        if unknown:
            log.info("%s from %s: unknown attributes %s", req.method_name, fmt(addr),
                     ", ".join(f"0x{t:04x}" for t in unknown))
            self._reply(req.error_response(420, None, [(UNKNOWN_ATTRIBUTES, tuple(unknown[:8]))]), addr, key)
            return
        log.info("%s from %s (%s)", req.method_name, fmt(addr), username)
        handler(req, addr, username, key)

    def _binding(self, req: StunMessage, addr: Addr) -> None:
        """A plain STUN Binding request (RFC 8489): answered like a STUN server, without
        credentials, with the address the request came from. RFC 8656 section 5 runs TURN on
        STUN's ports (3478) and applies STUN's base rules to every STUN-formatted message, so one
        server on 3478 serves both (coturn does the same)."""
        unknown = req.unknown_required()
        if req.get(CHANGE_REQUEST, 0) & (CHANGE_IP | CHANGE_PORT):
            # no alternate address here: RFC 5780 section 6.1 asks for a 420; like p2plab's plain
            # StunServer, treat a CHANGE-REQUEST that asks for a change as unknown (420)
            unknown = [*unknown, CHANGE_REQUEST]
        if unknown:
            self._reply(req.error_response(420, None, [(UNKNOWN_ATTRIBUTES, tuple(unknown[:8]))]), addr, None)
            return
        self.stats["bindings"] += 1
        self._reply(req.response(SUCCESS, [(XOR_MAPPED_ADDRESS, (addr[0], int(addr[1])))]), addr, None)
        self.emit("binding", client=addr)

    def _error(self, req: StunMessage, addr: Addr, key: bytes, code: int, reason: str | None = None,
               attributes: list | None = None) -> None:
        self.stats[f"error-{code}"] += 1
        if reason:
            log.info("%s from %s: %d %s", req.method_name, fmt(addr), code, reason)
            reason = reason[:127]  # RFC 8489 section 14.8: fewer than 128 characters
        self._reply(req.error_response(code, reason, attributes), addr, key)

    def _lifetime(self, req: StunMessage) -> float:
        asked = req.get(LIFETIME)
        if asked is None:
            return self.default_lifetime
        return min(max(float(asked), self.default_lifetime), self.max_lifetime)

    def _allocate(self, req: StunMessage, addr: Addr, username: str, key: bytes) -> None:
        """RFC 8656 section 7.2, checks in the RFC's order."""
        existing = self.allocations.get(addr)
        if existing is not None:
            if existing.transaction_id == req.transaction_id and existing.response:
                self.send(existing.response, addr)  # a retransmitted Allocate: same answer
            else:
                self._error(req, addr, key, 437)
            return
        transport = req.get(REQUESTED_TRANSPORT)
        if transport is None:
            self._error(req, addr, key, 400, "REQUESTED-TRANSPORT missing")
            return
        if transport != UDP:
            self._error(req, addr, key, 442)
            return
        if DONT_FRAGMENT in req and not self.can_dont_fragment:
            # section 7.2 step 4: a server that cannot set DF treats it as unknown
            self._error(req, addr, key, 420, None, [(UNKNOWN_ATTRIBUTES, (DONT_FRAGMENT,))])
            return
        token, even = req.get(RESERVATION_TOKEN), req.get(EVEN_PORT)
        family, additional = req.get(REQUESTED_ADDRESS_FAMILY), req.get(ADDITIONAL_ADDRESS_FAMILY)
        reservation = None
        if token is not None:
            if even is not None or family is not None or additional is not None:
                self._error(req, addr, key, 400, "RESERVATION-TOKEN cannot be combined with EVEN-PORT, "
                            "REQUESTED-ADDRESS-FAMILY or ADDITIONAL-ADDRESS-FAMILY")
                return
            reservation = self.reservations.get(token)
            if reservation is None or reservation.expires <= self.now:
                self._error(req, addr, key, 508, "RESERVATION-TOKEN unknown or expired (reservations last "
                            f"{self.reservation_lifetime:g} s)")
                return
        if family is not None and additional is not None:
            self._error(req, addr, key, 400, "REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY together")
            return
        ips = self.relay_ips()
        if family is not None:
            version = {FAMILY_IPV4: 4, FAMILY_IPV6: 6}.get(family)
            if version not in ips:
                what = f"IPv{version}" if version else f"address family 0x{family:02x}"
                self._error(req, addr, key, 440, f"Address Family not Supported: no {what} relay address "
                            "on this server" + (" (start it with relay_ip6 / --relay-host6)" if version == 6 else ""))
                return
        elif reservation is not None:
            version = 6 if ":" in reservation.relay[0] else 4
        else:
            version = 4
            if 4 not in ips:
                self._error(req, addr, key, 440, "Address Family not Supported: this server relays only from "
                            "IPv6; ask for it with REQUESTED-ADDRESS-FAMILY 0x02")
                return
        reserve_next = even is not None and bool(even & EVEN_PORT_R)
        if reserve_next and additional is not None:
            self._error(req, addr, key, 400, "EVEN-PORT with the R bit cannot be combined with "
                        "ADDITIONAL-ADDRESS-FAMILY")
            return
        if additional is not None and additional != FAMILY_IPV6:
            self._error(req, addr, key, 400, "ADDITIONAL-ADDRESS-FAMILY must ask for IPv6 (0x02)")
            return
        held = sum(1 for a in self.allocations.values() if a.username == username)
        if held >= self.max_per_user:
            log.info("user %r holds %d allocations, the per-user quota is %d: raise it with "
                     "max_allocations_per_user / turn-server --max-allocations N; unused allocations expire "
                     "after their lifetime, or clients delete them with Refresh LIFETIME=0", username, held,
                     self.max_per_user)
            self._error(req, addr, key, 486, f"Allocation Quota Reached: {username[:20]!r} has {held}, "
                        f"quota is {self.max_per_user} (raise: --max-allocations)")
            return
        if len(self.allocations) >= self.max_allocations:
            self._error(req, addr, key, 508, f"Insufficient Capacity: the server holds its maximum of "
                        f"{self.max_allocations} allocations")
            return
        token_out = None
        if reservation is not None:
            relay = reservation.relay
            del self.reservations[token]
            self.addresses_version += 1
        elif reserve_next:
            pair = self._pick_pair(ips[version])
            if pair is None:
                self._error(req, addr, key, 508, "Insufficient Capacity: no free pair of ports N, N+1")
                return
            relay = pair
            token_out = self.rng.getrandbits(64).to_bytes(8, "big")
            self.reservations[token_out] = Reservation((pair[0], pair[1] + 1), self.now + self.reservation_lifetime)
            self.addresses_version += 1
        else:
            relay = self._pick_relay(even=even is not None, ip=ips[version])
            if relay is None:
                self._error(req, addr, key, 508)
                return
        relay6, address_error = None, None
        if additional is not None:
            if 6 in ips:
                relay6 = self._pick_relay(ip=ips[6])
                if relay6 is None:
                    address_error = (FAMILY_IPV6, 508, "Insufficient Capacity")
            else:
                address_error = (FAMILY_IPV6, 440, "Address Family not Supported")
        lifetime = self._lifetime(req)
        alloc = Allocation(addr, username, key, relay, self.now + lifetime, req.transaction_id, relay6=relay6)
        attrs: list = [(XOR_RELAYED_ADDRESS, r) for r in alloc.relays]
        attrs.append((LIFETIME, int(lifetime)))
        if token_out is not None:
            attrs.append((RESERVATION_TOKEN, token_out))
        if address_error is not None:
            attrs.append((ADDRESS_ERROR_CODE, address_error))
        attrs.append((XOR_MAPPED_ADDRESS, addr))
        self.allocations[addr] = alloc
        for r in alloc.relays:
            self.by_relay[r] = alloc
        self.addresses_version += 1
        alloc.response = self._reply(req.response(SUCCESS, attrs), addr, key)
        self.emit("allocated", client=addr, relay=relay, username=username, lifetime=lifetime,
                  **({"relay6": relay6} if relay6 else {}), **({"reserved": token_out} if token_out else {}))

    def _taken(self, cand: Addr) -> bool:
        return (cand in self.by_relay or cand == self.local_addr
                or any(r.relay == cand for r in self.reservations.values()))

    def _pick_relay(self, even: bool = False, ip: str | None = None) -> Addr | None:
        """A free relay address (an even port when the client sent EVEN-PORT)."""
        ip = ip or self.relay_ip or (self.local_addr[0] if self.local_addr else "0.0.0.0")
        lo, hi = self.relay_ports
        for _ in range(64):
            port = self.rng.randint(lo, hi)
            if even and port % 2:
                port = port - 1 if port > lo else port + 1
                if port > hi:
                    continue
            cand = (ip, port)
            if self._taken(cand):
                continue
            if self.reserve_port is None or self.reserve_port(ip, port):
                return cand
        return None

    def _pick_pair(self, ip: str) -> Addr | None:
        """(ip, N) with N even and both N and N+1 free (EVEN-PORT with the R bit)."""
        lo, hi = self.relay_ports
        first = lo + (lo % 2)
        if first + 1 > hi:
            return None
        for _ in range(64):
            port = self.rng.randrange(first, hi, 2)
            if self._taken((ip, port)) or self._taken((ip, port + 1)):
                continue
            if self.reserve_port is None or (self.reserve_port(ip, port) and self.reserve_port(ip, port + 1)):
                return (ip, port)
        return None

    def _refresh(self, req: StunMessage, addr: Addr, username: str, key: bytes) -> None:
        alloc = self.allocations.get(addr)
        if alloc is None:
            self._error(req, addr, key, 437)
            return
        if alloc.username != username:
            self._error(req, addr, key, 441)
            return
        family = req.get(REQUESTED_ADDRESS_FAMILY)
        if family is not None:
            wanted = {FAMILY_IPV4: False, FAMILY_IPV6: True}.get(family)
            if wanted is None or not any((":" in r[0]) == wanted for r in alloc.relays):
                self._error(req, addr, key, 443, "REQUESTED-ADDRESS-FAMILY does not match the allocation's relay")
                return
        asked = req.get(LIFETIME)
        if asked == 0 and family is not None and alloc.relay6 is not None:
            # a dual allocation: delete only the relay of that family (RFC 8656 section 8)
            gone = alloc.relay6 if family == FAMILY_IPV6 else alloc.relay
            self.by_relay.pop(gone, None)
            self.addresses_version += 1
            if family == FAMILY_IPV6:
                alloc.relay6 = None
            else:
                alloc.relay, alloc.relay6 = alloc.relay6, None
            self._reply(req.response(SUCCESS, [(LIFETIME, 0)]), addr, key)
            return
        if asked == 0:
            self._delete(alloc, "deleted")
            self._reply(req.response(SUCCESS, [(LIFETIME, 0)]), addr, key)
            return
        lifetime = self._lifetime(req)
        alloc.expires = self.now + lifetime
        self._reply(req.response(SUCCESS, [(LIFETIME, int(lifetime))]), addr, key)
        self.emit("refreshed", client=addr, relay=alloc.relay, lifetime=lifetime)

    def _peer_checks(self, req: StunMessage, addr: Addr, key: bytes, peers: list[Addr]) -> Allocation | None:
        alloc = self.allocations.get(addr)
        if alloc is None:
            self._error(req, addr, key, 437)
            return None
        if not peers:
            self._error(req, addr, key, 400, "XOR-PEER-ADDRESS missing")
            return None
        for ip, _port in peers:
            if alloc.relay_for(ip) is None:
                self._error(req, addr, key, 443)
                return None
            if not self.peer_allowed(ip):
                self.stats["forbidden-peer"] += 1
                log.info("refused peer %s for %s", ip, fmt(addr))
                self._error(req, addr, key, 403, "Peer address not allowed")
                return None
        return alloc

    def _create_permission(self, req: StunMessage, addr: Addr, username: str, key: bytes) -> None:
        peers = req.get_all(XOR_PEER_ADDRESS)
        alloc = self._peer_checks(req, addr, key, peers)
        if alloc is None:
            return
        for ip, _ in peers:
            alloc.permissions[ip] = self.now + PERMISSION_LIFETIME
        self._reply(req.response(SUCCESS), addr, key)
        self.emit("permission", client=addr, peers=[ip for ip, _ in peers])

    def _channel_bind(self, req: StunMessage, addr: Addr, username: str, key: bytes) -> None:
        number = req.get(CHANNEL_NUMBER)
        peer = req.get(XOR_PEER_ADDRESS)
        if number is None or peer is None:
            alloc = self.allocations.get(addr)
            self._error(req, addr, key, 437 if alloc is None else 400, None if alloc is None else
                        "CHANNEL-NUMBER and XOR-PEER-ADDRESS are both needed")
            return
        alloc = self._peer_checks(req, addr, key, [peer])
        if alloc is None:
            return
        top = CHANNEL_MAX_RFC5766 if self.rfc5766_channels else CHANNEL_MAX
        if not CHANNEL_MIN <= number <= top:
            self._error(req, addr, key, 400, f"channel number 0x{number:04x} outside 0x4000-0x{top:04X}")
            return
        bound = alloc.channels.get(number)
        if (bound is not None and bound[0] != peer) or alloc.peer_channels.get(peer, number) != number:
            self._error(req, addr, key, 400, "channel or peer already bound")
            return
        alloc.channels[number] = (peer, self.now + CHANNEL_LIFETIME)
        alloc.peer_channels[peer] = number
        alloc.permissions[peer[0]] = self.now + PERMISSION_LIFETIME
        self._reply(req.response(SUCCESS), addr, key)
        self.emit("channel-bound", client=addr, channel=number, peer=peer)

    # -- relaying ---------------------------------------------------------------------------
    def _send_indication(self, msg: StunMessage, addr: Addr) -> None:
        alloc = self.allocations.get(addr)
        peer, data = msg.get(XOR_PEER_ADDRESS), msg.get(DATA_ATTR)
        if alloc is None or peer is None or data is None:
            self.stats["dropped"] += 1
            return
        if not alloc.permitted(peer[0], self.now) or not self.peer_allowed(peer[0]):
            self.stats["dropped-no-permission"] += 1
            return
        relay = alloc.relay_for(peer[0])
        if relay is None:
            self.stats["dropped"] += 1
            return
        self.stats["relayed-to-peer"] += 1
        if DONT_FRAGMENT in msg:
            out = Outgoing(bytes(data), (peer[0], int(peer[1])), relay)
            out.df = True  # the driver sends it with the IP DF bit set (RFC 8656 section 14)
            self._outbox.append(out)
        else:
            self.send_from(data, peer, relay)

    def _channel_data_from_client(self, data: bytes, addr: Addr) -> None:
        # the hot path of a busy server: header checked inline, dict lookups only, one slice
        # (the first byte was checked by the caller: the channel number is in range)
        size = len(data)
        length = (data[2] << 8 | data[3]) if size >= 4 else -1
        if length < 0 or not 0 <= size - 4 - length <= 3:
            try:  # malformed: let the codec say exactly what is wrong
                ChannelData.decode(data, rfc5766=self.rfc5766_channels)
                why = "malformed ChannelData"
            except StunParseError as exc:
                why = str(exc)
            self.bad_packet(addr, why)
            return
        alloc = self.allocations.get(addr)
        bound = alloc.channels.get(data[0] << 8 | data[1]) if alloc is not None else None
        if bound is None or bound[1] <= self.now:
            self.stats["dropped"] += 1
            return
        peer = bound[0]
        ip = peer[0]
        if alloc.permissions.get(ip, -1.0) <= self.now:
            self.stats["dropped-no-permission"] += 1
            return
        self.stats["relayed-to-peer"] += 1
        relay = alloc.relay_for(ip) or alloc.relay
        self._outbox.append(Outgoing(data[4:4 + length], peer, None if relay == self.local_addr else relay))

    def _from_peer(self, alloc: Allocation, data: bytes, peer: Addr) -> None:
        if alloc.permissions.get(peer[0], -1.0) <= self.now:
            self.stats["dropped-no-permission"] += 1
            return
        number = alloc.peer_channels.get(peer)
        if number is not None and alloc.channels.get(number, _UNBOUND)[1] > self.now:
            if len(data) > 0xFFFF:
                data = data[:0xFFFF]
            frame = _CHANNEL_HEADER.pack(number, len(data)) + data
        else:
            msg = StunMessage(DATA, INDICATION, rng=self.rng,
                              attributes=[(XOR_PEER_ADDRESS, peer), (DATA_ATTR, data)])
            frame = msg.encode()
        self.stats["relayed-to-client"] += 1
        self.send(frame, alloc.client)

    # -- expiry -----------------------------------------------------------------------------
    def _delete(self, alloc: Allocation, why: str) -> None:
        self.allocations.pop(alloc.client, None)
        for r in alloc.relays:
            self.by_relay.pop(r, None)
        self.addresses_version += 1
        log.info("allocation %s for %s %s", fmt(alloc.relay), fmt(alloc.client), why)
        self.emit(why, client=alloc.client, relay=alloc.relay)

    def _expire(self, now: float) -> None:
        for token, res in list(self.reservations.items()):
            if res.expires <= now:
                del self.reservations[token]
                self.addresses_version += 1
                log.info("reservation of %s expired", fmt(res.relay))
        for alloc in list(self.allocations.values()):
            if alloc.expires <= now:
                self._delete(alloc, "expired")
                continue
            for ip, t in list(alloc.permissions.items()):
                if t <= now:
                    del alloc.permissions[ip]
            for number, (peer, t) in list(alloc.channels.items()):
                if t <= now:
                    del alloc.channels[number]
                    alloc.peer_channels.pop(peer, None)

    def _schedule_expiry(self) -> None:
        times = [a.expires for a in self.allocations.values()]
        times.extend(r.expires for r in self.reservations.values())
        for a in self.allocations.values():
            times.extend(a.permissions.values())
            times.extend(t for _, t in a.channels.values())
        if not times:
            return
        at = min(times)
        if self._expiry_timer is None or at < self._expiry_timer - 1e-9:
            self._expiry_timer = at
            self.cancel_timers("expire")
            self.set_timer(at, "expire")
