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

Security defaults: peers on loopback, unspecified or multicast addresses and the server's own
addresses are refused (403) unless ``allowed_peers`` lists a CIDR containing them; when
``allowed_peers`` is given, peers outside it are refused too. Each user may hold at most
``max_allocations_per_user`` allocations (486 beyond). Nonces are stateless (an HMAC of their
issue time) so junk traffic cannot fill memory.

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
from dataclasses import dataclass, field

from ..addresses import fmt
from ..errors import ConfigurationError, StunParseError
from ..sansio import Addr
from ..stun.message import (
    ALLOCATE,
    CHANNEL_BIND,
    CHANNEL_MAX,
    CHANNEL_MIN,
    CHANNEL_NUMBER,
    CREATE_PERMISSION,
    DATA,
    DATA_ATTR,
    EVEN_PORT,
    INDICATION,
    LIFETIME,
    NONCE,
    REALM,
    REFRESH,
    REQUEST,
    REQUESTED_ADDRESS_FAMILY,
    REQUESTED_TRANSPORT,
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
from ..stun.server import MultiAddressProtocol

log = logging.getLogger("p2plab.turn.server")

DEFAULT_LIFETIME = 600.0
MAX_LIFETIME = 3600.0
PERMISSION_LIFETIME = 300.0
CHANNEL_LIFETIME = 600.0
NONCE_LIFETIME = 600.0
UDP = 17

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

    def permitted(self, ip: str, now: float) -> bool:
        return self.permissions.get(ip, -1.0) > now


class TurnServer(MultiAddressProtocol):
    """A TURN server. ``users`` maps usernames to passwords; ``relay_ip`` defaults to the
    listening IP; relay ports are drawn from ``relay_ports``."""

    def __init__(self, users: dict[str, str], realm: str = "p2plab", relay_ip: str | None = None,
                 relay_ports: tuple[int, int] = (49152, 65535), allowed_peers: list[str] | None = None,
                 max_allocations_per_user: int = 10, default_lifetime: float = DEFAULT_LIFETIME,
                 max_lifetime: float = MAX_LIFETIME, nonce_lifetime: float = NONCE_LIFETIME,
                 software: str | None = "p2plab", rng: random.Random | None = None,
                 max_allocations: int = 1000) -> None:
        super().__init__()
        if not users:
            raise ConfigurationError("a TURN server needs at least one user, e.g. users={'alice': 'secret'}")
        self.users = dict(users)
        self.realm = realm
        self.relay_ip = relay_ip
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
        self._expiry_timer: float | None = None

    # -- addresses --------------------------------------------------------------------------
    def local_addresses(self) -> set[Addr]:
        return set(self.by_relay)

    def _own_ips(self) -> set[str]:
        ips = {self.relay_ip} if self.relay_ip else set()
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
        if local is not None and local != self.local_addr and local in self.by_relay:
            self._from_peer(self.by_relay[local], data, addr)
        elif data[:1] and 0x40 <= data[0] <= 0x4F:
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
        password = self.users.get(username)
        key = long_term_key(username, realm, password) if password is not None else None
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

    def _error(self, req: StunMessage, addr: Addr, key: bytes, code: int, reason: str | None = None) -> None:
        self.stats[f"error-{code}"] += 1
        self._reply(req.error_response(code, reason), addr, key)

    def _lifetime(self, req: StunMessage) -> float:
        asked = req.get(LIFETIME)
        if asked is None:
            return self.default_lifetime
        return min(max(float(asked), self.default_lifetime), self.max_lifetime)

    def _allocate(self, req: StunMessage, addr: Addr, username: str, key: bytes) -> None:
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
        family = req.get(REQUESTED_ADDRESS_FAMILY)
        relay_v6 = ":" in (self.relay_ip or (self.local_addr[0] if self.local_addr else ""))
        if family is not None and family != (0x02 if relay_v6 else 0x01):
            self._error(req, addr, key, 440)
            return
        if sum(1 for a in self.allocations.values() if a.username == username) >= self.max_per_user:
            self._error(req, addr, key, 486)
            return
        if len(self.allocations) >= self.max_allocations:
            self._error(req, addr, key, 508)
            return
        relay = self._pick_relay(even=req.get(EVEN_PORT) is not None)
        if relay is None:
            self._error(req, addr, key, 508)
            return
        lifetime = self._lifetime(req)
        alloc = Allocation(addr, username, key, relay, self.now + lifetime, req.transaction_id)
        resp = req.response(SUCCESS, [(XOR_RELAYED_ADDRESS, relay), (LIFETIME, int(lifetime)),
                                      (XOR_MAPPED_ADDRESS, addr)])
        self.allocations[addr] = alloc
        self.by_relay[relay] = alloc
        alloc.response = self._reply(resp, addr, key)
        self.emit("allocated", client=addr, relay=relay, username=username, lifetime=lifetime)

    def _pick_relay(self, even: bool = False) -> Addr | None:
        """A free relay address (an even port when the client sent EVEN-PORT; p2plab does not
        reserve the next port, so it never returns RESERVATION-TOKEN)."""
        ip = self.relay_ip or (self.local_addr[0] if self.local_addr else "0.0.0.0")
        lo, hi = self.relay_ports
        for _ in range(64):
            port = self.rng.randint(lo, hi)
            if even and port % 2:
                port = port - 1 if port > lo else port + 1
                if port > hi:
                    continue
            cand = (ip, port)
            if cand in self.by_relay or cand == self.local_addr:
                continue
            if self.reserve_port is None or self.reserve_port(ip, port):
                return cand
        return None

    def _refresh(self, req: StunMessage, addr: Addr, username: str, key: bytes) -> None:
        alloc = self.allocations.get(addr)
        if alloc is None:
            self._error(req, addr, key, 437)
            return
        if alloc.username != username:
            self._error(req, addr, key, 441)
            return
        asked = req.get(LIFETIME)
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
            if (":" in ip) != (":" in alloc.relay[0]):
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
        if not CHANNEL_MIN <= number <= CHANNEL_MAX:
            self._error(req, addr, key, 400, "channel number outside 0x4000-0x4FFF")
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
        self.stats["relayed-to-peer"] += 1
        self.send_from(data, peer, alloc.relay)

    def _channel_data_from_client(self, data: bytes, addr: Addr) -> None:
        try:
            frame = ChannelData.decode(data)
        except StunParseError as exc:
            self.bad_packet(addr, str(exc))
            return
        alloc = self.allocations.get(addr)
        bound = alloc.channels.get(frame.channel) if alloc else None
        if alloc is None or bound is None or bound[1] <= self.now:
            self.stats["dropped"] += 1
            return
        peer = bound[0]
        if not alloc.permitted(peer[0], self.now):
            self.stats["dropped-no-permission"] += 1
            return
        self.stats["relayed-to-peer"] += 1
        self.send_from(frame.data, peer, alloc.relay)

    def _from_peer(self, alloc: Allocation, data: bytes, peer: Addr) -> None:
        if not alloc.permitted(peer[0], self.now):
            self.stats["dropped-no-permission"] += 1
            return
        number = alloc.peer_channels.get(peer)
        if number is not None and alloc.channels.get(number, (None, 0.0))[1] > self.now:
            frame = ChannelData(number, data[:0xFFFF]).encode()
        else:
            msg = StunMessage(DATA, INDICATION, rng=self.rng,
                              attributes=[(XOR_PEER_ADDRESS, peer), (DATA_ATTR, data)])
            frame = msg.encode()
        self.stats["relayed-to-client"] += 1
        self.send(frame, alloc.client)

    # -- expiry -----------------------------------------------------------------------------
    def _delete(self, alloc: Allocation, why: str) -> None:
        self.allocations.pop(alloc.client, None)
        self.by_relay.pop(alloc.relay, None)
        log.info("allocation %s for %s %s", fmt(alloc.relay), fmt(alloc.client), why)
        self.emit(why, client=alloc.client, relay=alloc.relay)

    def _expire(self, now: float) -> None:
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
