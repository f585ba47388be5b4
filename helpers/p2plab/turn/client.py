"""A sans-I/O TURN client (RFC 8656 over UDP): allocate a relay, open permissions, bind channels.

Typical use (any driver: simulator or ``p2plab.aio``)::

    c = TurnClient(("192.0.2.1", 3478), "alice", "secret")
    c.start(now, local_addr)          # sends Allocate; a 401 answer brings REALM and NONCE,
                                      # and the client retries with MESSAGE-INTEGRITY
    # event "allocated": relayed=(ip, port), mapped=(ip, port), lifetime=600
    c.create_permission(peer)         # event "permission"
    c.channel_bind(peer)              # event "channel-bound" (channel=0x4000...)
    c.send_to(b"hello", peer)         # ChannelData if a channel is bound, else a Send indication
    # data from the peer: event "data" with peer=(ip, port) and the bytes in ev.payload
    # (also ev.data["data"]; ``ev.data`` itself is the event's dict of details)

An IPv6 relay: ``TurnClient(..., family=6)`` (REQUESTED-ADDRESS-FAMILY; 440 if the server has none).
Over TCP or TLS: ``TurnClient(server, user, password, transport="tcp")`` run by
``p2plab.turn.stream.StreamDriver`` (no retransmissions on a reliable transport).

Other events: ``refreshed`` (lifetime), ``deallocated``, ``error`` (method, code, reason),
``timeout`` (method). The allocation is refreshed automatically a minute before it expires, and
so are permissions (they last 300 s) and channel bindings (re-bound every 240 s, which also keeps
their permission), as long as the allocation lives; ``auto_refresh=False`` turns all that off.

Cleaning up: ``c.close()`` (or ``c.deallocate()``) sends Refresh with LIFETIME 0 so the server
frees the relay port and the user's quota at once; an Allocate still in flight is deleted as soon
as its answer arrives. ``p2plab.aio.Driver`` calls ``close()`` when it closes, also when the code
inside ``async with Driver(...)`` raised. A client that dies without closing holds its allocation
until the server expires it (its lifetime, 600 s by default).
"""

from __future__ import annotations

import random

from ..errors import ConfigurationError, StunParseError
from ..sansio import Addr
from ..stun.client import RC, RM, RTO, Transaction, TransactionProtocol
from ..stun.message import (
    ALLOCATE,
    CHANNEL_BIND,
    CHANNEL_MIN,
    CHANNEL_NUMBER,
    CREATE_PERMISSION,
    DATA,
    DATA_ATTR,
    ERROR,
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
    SEND,
    SOFTWARE,
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

BINDING_REFRESH = 240.0  # permissions last 300 s (RFC 8656 section 9): refresh a minute early


class TurnClient(TransactionProtocol):
    """Talks to one TURN server with long-term credentials ``username``/``password``."""

    def __init__(self, server: Addr, username: str, password: str, lifetime: int = 600,
                 rng: random.Random | None = None, software: str | None = "p2plab",
                 auto_allocate: bool = True, auto_refresh: bool = True,
                 rto: float = RTO, rc: int = RC, rm: int = RM, transport: str = "udp",
                 family: int | None = None) -> None:
        if transport not in ("udp", "tcp", "tls"):
            raise ConfigurationError(f"transport must be 'udp', 'tcp' or 'tls'; got {transport!r}")
        if transport != "udp" and (rto, rc, rm) == (RTO, RC, RM):
            # reliable transport: no retransmissions, give up after Ti = 39.5 s (RFC 8489 6.2.2)
            rto, rc, rm = 39.5, 1, 1
        if family not in (None, 4, 6):
            raise ConfigurationError(f"family must be 4 or 6 (the relay's IP version) or None; got {family!r}")
        super().__init__(rto, rc, rm, rng)
        self.transport = transport
        self.family = family
        self.server = (server[0], int(server[1]))
        # RFC 8489: USERNAME and the password are prepared with OpaqueString (RFC 8265); bad
        # characters fail here, with the character named, rather than as a 401 later
        self.username = opaque_string(username, "username")
        self.password = password
        long_term_key(self.username, "realm", password)
        self.lifetime = lifetime
        self.software = software
        self.auto_allocate = auto_allocate
        self.auto_refresh = auto_refresh
        self.realm: str | None = None
        self.nonce: str | None = None
        self.key: bytes | None = None
        self.relayed: Addr | None = None
        self.mapped: Addr | None = None
        self.expires: float | None = None
        self.channels: dict[Addr, int] = {}
        self.channel_peers: dict[int, Addr] = {}
        self._next_channel = CHANNEL_MIN
        self.closed = False
        self._permitted: dict[str, Addr] = {}  # peer IP -> a peer address, for refreshing

    # -- requests -----------------------------------------------------------------------------
    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        if self.auto_allocate:
            self.allocate()

    def _request(self, method: int, attrs: list, retries: int = 0, **context) -> Transaction:
        req = StunMessage(method, REQUEST, rng=self.rng, attributes=attrs)
        key = None
        if self.key is not None:
            req.add(USERNAME, self.username).add(REALM, self.realm).add(NONCE, self.nonce)
            key = self.key
        if self.software:
            req.add(SOFTWARE, self.software)
        return self.send_request(req, self.server, key=key, attrs=attrs, retries=retries, **context)

    def allocate(self) -> Transaction:
        """Ask for a relay address (UDP); with ``family=6`` an IPv6 one (REQUESTED-ADDRESS-FAMILY)."""
        attrs = [(REQUESTED_TRANSPORT, 17), (LIFETIME, self.lifetime)]
        if self.family is not None:
            attrs.append((REQUESTED_ADDRESS_FAMILY, FAMILY_IPV4 if self.family == 4 else FAMILY_IPV6))
        return self._request(ALLOCATE, attrs)

    def refresh(self, lifetime: int | None = None) -> Transaction:
        """Extend the allocation (``lifetime=0`` deletes it)."""
        return self._request(REFRESH, [(LIFETIME, self.lifetime if lifetime is None else lifetime)])

    def _forget_bindings(self) -> None:
        for ip in self._permitted:
            self.cancel_timers(f"perm:{ip}")
        for channel in self.channel_peers:
            self.cancel_timers(f"chan:{channel}")
        self._permitted.clear()

    def deallocate(self) -> Transaction | None:
        """Delete the allocation now (Refresh LIFETIME=0); None when there is none."""
        self.cancel_timers("refresh")
        self._forget_bindings()
        if self.relayed is None or self.key is None:
            return None
        return self.refresh(0)

    def close(self) -> None:
        """Stop refreshing and delete the allocation (now, or when a pending Allocate succeeds).
        Safe to call more than once."""
        if self.closed:
            return
        self.closed = True
        self.deallocate()

    def create_permission(self, *peers: Addr) -> Transaction:
        """Let these peers' IP addresses send to us through the relay (for 300 s)."""
        return self._request(CREATE_PERMISSION, [(XOR_PEER_ADDRESS, tuple(p)) for p in peers], peers=peers)

    def channel_bind(self, peer: Addr, channel: int | None = None) -> Transaction:
        """Bind a channel number (0x4000-0x4FFF) to ``peer`` so data uses 4-byte headers."""
        peer = (peer[0], int(peer[1]))
        if channel is None:
            channel = self.channels.get(peer) or self._next_channel
            if channel == self._next_channel:
                self._next_channel += 1
        return self._request(CHANNEL_BIND, [(CHANNEL_NUMBER, channel), (XOR_PEER_ADDRESS, peer)],
                             peer=peer, channel=channel)

    def send_to(self, data: bytes, peer: Addr) -> None:
        """Send application data to ``peer`` through the relay."""
        peer = (peer[0], int(peer[1]))
        channel = self.channels.get(peer)
        if channel is not None:
            self.send(ChannelData(channel, data).encode(), self.server)
        else:
            msg = StunMessage(SEND, INDICATION, rng=self.rng,
                              attributes=[(XOR_PEER_ADDRESS, peer), (DATA_ATTR, data)])
            self.send(msg.encode(), self.server)

    # -- responses ----------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: Addr, now: float) -> None:
        super().datagram_received(data, addr, now)
        if addr != self.server:
            return
        if data[:1] and 0x40 <= data[0] <= 0x4F:
            try:
                frame = ChannelData.decode(data)
            except StunParseError:
                self.bad_packets += 1
                return
            peer = self.channel_peers.get(frame.channel)
            if peer is not None:
                self.emit("data", peer=peer, data=frame.data, payload=frame.data, channel=frame.channel)
            return
        if not is_stun(data):
            return
        got = self.take_response(data, addr)
        if got is None:
            try:
                msg = StunMessage.decode(data)
            except StunParseError:
                return
            if msg.method == DATA and msg.cls == INDICATION:
                peer, payload = msg.get(XOR_PEER_ADDRESS), msg.get(DATA_ATTR)
                if peer is not None and payload is not None:
                    self.emit("data", peer=peer, data=payload, payload=payload, channel=None)
            return
        msg, tx = got
        if msg.cls == ERROR:
            self._on_error(msg, tx)
        else:
            self._on_success(msg, tx)

    def _on_error(self, msg: StunMessage, tx: Transaction) -> None:
        code, reason = msg.error or (0, "")
        retries = tx.context.get("retries", 0)
        if code == 437 and tx.request.method == REFRESH and self.relayed is not None:
            # the server no longer has our allocation (it expired or was deleted)
            self.relayed, self.expires = None, None
            self.cancel_timers("refresh")
            self._forget_bindings()
        if code in (401, 438) and msg.get(NONCE) and retries < 2:
            if code == 401 and self.key is not None and tx.key is not None and msg.get(REALM) == self.realm:
                pass  # credentials were used and rejected: do not loop
            else:
                self.realm = msg.get(REALM, self.realm)
                self.nonce = msg.get(NONCE)
                try:
                    self.key = long_term_key(self.username, self.realm or "", self.password)
                except ConfigurationError as exc:  # the server's REALM cannot be prepared
                    self.emit("error", method=tx.request.method_name, code=code, reason=f"server realm: {exc}")
                    return
                ctx = {k: v for k, v in tx.context.items() if k not in ("attrs", "retries")}
                self._request(tx.request.method, tx.context["attrs"], retries=retries + 1, **ctx)
                return
        self.emit("error", method=tx.request.method_name, code=code, reason=reason)

    def _on_success(self, msg: StunMessage, tx: Transaction) -> None:
        method = tx.request.method
        if method == ALLOCATE:
            self.relayed = msg.get(XOR_RELAYED_ADDRESS)
            self.mapped = msg.get(XOR_MAPPED_ADDRESS)
            if self.closed:  # closed while the Allocate was in flight: give it straight back
                self.deallocate()
                return
            lifetime = msg.get(LIFETIME, self.lifetime)
            self._set_expiry(lifetime)
            self.emit("allocated", relayed=self.relayed, mapped=self.mapped, lifetime=lifetime)
        elif method == REFRESH:
            lifetime = msg.get(LIFETIME, 0)
            if lifetime == 0:
                self.relayed = None
                self.expires = None
                self.cancel_timers("refresh")
                self._forget_bindings()
                self.emit("deallocated")
            else:
                self._set_expiry(lifetime)
                self.emit("refreshed", lifetime=lifetime)
        elif method == CREATE_PERMISSION:
            peers = list(tx.context.get("peers", ()))
            for peer in peers:
                self._keep(f"perm:{peer[0]}")
                self._permitted[peer[0]] = (peer[0], int(peer[1]))
            if not tx.context.get("auto"):
                self.emit("permission", peers=peers)
        elif method == CHANNEL_BIND:
            peer, channel = tx.context["peer"], tx.context["channel"]
            self.channels[peer] = channel
            self.channel_peers[channel] = peer
            self._keep(f"chan:{channel}")
            if not tx.context.get("auto"):
                self.emit("channel-bound", peer=peer, channel=channel)

    def _keep(self, timer: str) -> None:
        """(Re)arm the refresh of a permission or channel binding."""
        if self.auto_refresh and self.relayed is not None and not self.closed:
            self.cancel_timers(timer)
            self.set_timer(self.now + BINDING_REFRESH, timer)

    def _set_expiry(self, lifetime: int) -> None:
        self.expires = self.now + lifetime
        if self.auto_refresh and lifetime > 0:
            self.cancel_timers("refresh")
            self.set_timer(self.now + max(lifetime - 60, lifetime / 2), "refresh")

    def on_timer(self, name: str, now: float) -> None:
        if name == "refresh":
            if self.relayed is not None and not self.closed:
                self.refresh()
            return
        if name.startswith(("perm:", "chan:")):
            if self.relayed is None or self.closed:
                return
            if name.startswith("perm:") and name[5:] in self._permitted:
                peer = self._permitted[name[5:]]
                self._request(CREATE_PERMISSION, [(XOR_PEER_ADDRESS, peer)], peers=(peer,), auto=True)
            elif name.startswith("chan:") and int(name[5:]) in self.channel_peers:
                channel = int(name[5:])
                peer = self.channel_peers[channel]
                self._request(CHANNEL_BIND, [(CHANNEL_NUMBER, channel), (XOR_PEER_ADDRESS, peer)],
                              peer=peer, channel=channel, auto=True)
            return
        super().on_timer(name, now)

    def on_transaction_timeout(self, tx: Transaction, now: float) -> None:
        self.emit("timeout", method=tx.request.method_name)
