"""A sans-I/O STUN server: answers Binding requests with the address it saw (RFC 8489, RFC 5780).

Sending from more than one local address
----------------------------------------
A plain server answers from the socket the request came in on. Two servers need more:

* an RFC 5780 server has a second IP and port and must be able to answer *from* them (that is
  how CHANGE-REQUEST tests a NAT's filtering), and
* a TURN server relays through extra "relay" sockets, one per allocation.

``MultiAddressProtocol`` (the base of ``StunServer`` and ``TurnServer``) handles this without
touching sockets:

* ``local_addresses()`` - the extra local ``(ip, port)`` addresses the protocol wants sockets
  on *right now* (besides the main one given to ``start``). Drivers open sockets for new ones
  and close sockets for ones that disappear (an expired TURN allocation frees its port).
* ``datagram_received_on(data, addr, local, now)`` - a datagram arrived on local address
  ``local`` (``datagram_received`` means "on the main address").
* outbox entries are ``Outgoing`` objects: they unpack like the usual ``(data, addr)`` pair and
  carry ``.via``, the local address to send from (None = the main socket). Drivers that do not
  know about ``via`` still work; they just send everything from the main socket.
* ``reserve_port`` - optional hook a real-socket driver sets: ``reserve_port(ip, port) -> bool``
  opens the socket at once and says whether that port was free (the simulator leaves it None).

RESPONSE-PORT (RFC 5780 section 7.5) is honoured: the answer goes to that port of the
requester's IP (never to another IP, so the server cannot reflect traffic to third parties).

Amplification: a STUN server must not become a tool to flood someone with spoofed requests.
``StunServer`` adds optional attributes only while the response stays within
``max_amplification`` x the request size (default 3).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from ..addresses import fmt
from ..errors import StunParseError
from ..sansio import Addr, DatagramProtocol
from .message import (
    BINDING,
    CHANGE_IP,
    CHANGE_PORT,
    CHANGE_REQUEST,
    MAPPED_ADDRESS,
    OTHER_ADDRESS,
    REQUEST,
    RESPONSE_ORIGIN,
    RESPONSE_PORT,
    SOFTWARE,
    SUCCESS,
    UNKNOWN_ATTRIBUTES,
    XOR_MAPPED_ADDRESS,
    StunMessage,
    is_stun,
)

log = logging.getLogger("p2plab.stun.server")

DEFAULT_SOFTWARE = "p2plab"


class Outgoing(tuple):
    """An outbox entry: unpacks as ``(data, addr)``; ``.via`` is the local address to send from
    (None means the protocol's main socket)."""

    def __new__(cls, data: bytes, addr: Addr, via: Addr | None = None) -> Outgoing:
        obj = super().__new__(cls, (data, addr))
        obj.via = via
        return obj

    def __repr__(self) -> str:
        return f"Outgoing({len(self[0])} bytes to {fmt(self[1])} via {fmt(self.via) if self.via else 'main'})"


class MultiAddressProtocol(DatagramProtocol):
    """A sans-I/O protocol that may receive on and send from several local addresses."""

    reserve_port: Callable[[str, int], bool] | None = None

    def __init__(self) -> None:
        super().__init__()
        self.stats: Counter[str] = Counter()

    def send_from(self, data: bytes, addr: Addr, via: Addr | None = None) -> None:
        """Queue ``data`` for ``addr``, sent from local address ``via`` (None: the main socket)."""
        if via is not None and self.local_addr is not None and tuple(via) == tuple(self.local_addr):
            via = None
        self._outbox.append(Outgoing(bytes(data), (addr[0], int(addr[1])), via))

    def send(self, data: bytes, addr: Addr) -> None:
        self._outbox.append(Outgoing(bytes(data), (addr[0], int(addr[1])), None))

    def local_addresses(self) -> set[Addr]:
        """Extra local addresses this protocol needs sockets on now (override)."""
        return set()

    def datagram_received(self, data: bytes, addr: Addr, now: float) -> None:
        self.datagram_received_on(data, addr, self.local_addr, now)

    def datagram_received_on(self, data: bytes, addr: Addr, local: Addr | None, now: float) -> None:
        """A datagram arrived on local address ``local`` (override)."""
        self.now = now

    def bad_packet(self, addr: Addr, why: str) -> None:
        """Count a malformed datagram and log it in one line (never a traceback)."""
        self.stats["bad"] += 1
        log.debug("bad packet from %s: %s", fmt(addr), why)


class StunServer(MultiAddressProtocol):
    """Answers Binding requests with XOR-MAPPED-ADDRESS (+ MAPPED-ADDRESS), SOFTWARE, FINGERPRINT.

    With ``alt_ip`` and ``alt_port`` it is an RFC 5780 server listening on four addresses
    (primary/alternate IP x primary/alternate port): responses carry OTHER-ADDRESS and
    RESPONSE-ORIGIN, and CHANGE-REQUEST makes it answer from another IP and/or port.
    """

    def __init__(self, alt_ip: str | None = None, alt_port: int | None = None,
                 software: str | None = DEFAULT_SOFTWARE, mapped_address: bool = True,
                 fingerprint: bool = True, max_amplification: float = 3.0) -> None:
        super().__init__()
        if (alt_ip is None) != (alt_port is None):
            from ..errors import ConfigurationError

            raise ConfigurationError(
                "an RFC 5780 server needs both an alternate IP and an alternate port, e.g. "
                "StunServer(alt_ip='127.0.0.2', alt_port=3479); give both or neither"
            )
        self.alt_ip = alt_ip
        self.alt_port = alt_port
        self.software = software
        self.mapped_address = mapped_address
        self.fingerprint = fingerprint
        self.max_amplification = max_amplification

    # -- addresses ------------------------------------------------------------------------------
    @property
    def rfc5780(self) -> bool:
        return self.alt_ip is not None and self.local_addr is not None

    def _grid(self) -> tuple[str, str, int, int]:
        assert self.local_addr is not None and self.alt_ip is not None and self.alt_port is not None
        return self.local_addr[0], self.alt_ip, self.local_addr[1], self.alt_port

    def local_addresses(self) -> set[Addr]:
        if not self.rfc5780:
            return set()
        ip1, ip2, p1, p2 = self._grid()
        return {(ip1, p2), (ip2, p1), (ip2, p2)}

    def _swap(self, local: Addr, change_ip: bool, change_port: bool) -> Addr:
        ip1, ip2, p1, p2 = self._grid()
        ip, port = local
        if change_ip:
            ip = ip2 if ip == ip1 else ip1
        if change_port:
            port = p2 if port == p1 else p1
        return ip, port

    # -- requests -------------------------------------------------------------------------------
    def datagram_received_on(self, data: bytes, addr: Addr, local: Addr | None, now: float) -> None:
        self.now = now
        self.stats["datagrams"] += 1
        if not is_stun(data):
            self.bad_packet(addr, f"not a STUN message ({len(data)} bytes)")
            return
        try:
            req = StunMessage.decode(data)
        except StunParseError as exc:
            self.bad_packet(addr, str(exc))
            return
        if req.cls != REQUEST:
            self.stats["ignored"] += 1
            return
        if req.has_fingerprint and not req.check_fingerprint():
            self.bad_packet(addr, "wrong FINGERPRINT")
            return
        local = local or self.local_addr or ("0.0.0.0", 0)
        budget = max(int(len(data) * self.max_amplification), 20)
        if req.method != BINDING:
            self._reply(req.error_response(400, "Only Binding"), addr, None, budget, req)
            return
        unknown = req.unknown_required()
        if unknown:
            resp = req.error_response(420, "Unknown", [(UNKNOWN_ATTRIBUTES, tuple(unknown[:4]))])
            self._reply(resp, addr, None, budget, req)
            return
        via: Addr | None = local
        change = req.get(CHANGE_REQUEST, 0) & (CHANGE_IP | CHANGE_PORT)
        if change and not self.rfc5780:
            self._reply(req.error_response(420, "Unknown", [(UNKNOWN_ATTRIBUTES, (CHANGE_REQUEST,))]),
                        addr, local, budget, req)
            return
        if change:
            via = self._swap(local, bool(change & CHANGE_IP), bool(change & CHANGE_PORT))
        target = addr
        if req.get(RESPONSE_PORT):  # RFC 5780 section 7.5: answer to another port of the same IP
            target = (addr[0], req.get(RESPONSE_PORT))
        resp = req.response(SUCCESS, [(XOR_MAPPED_ADDRESS, addr)])
        optional: list[tuple[int, object]] = []
        if self.rfc5780:
            optional.append((OTHER_ADDRESS, self._swap(local, True, True)))
            optional.append((RESPONSE_ORIGIN, via))
        self._reply(resp, target, via, budget, req, optional, mapped=addr)
        log.info("Binding from %s on %s%s -> %s", fmt(addr), fmt(local),
                 f" CHANGE-REQUEST 0x{change:02x}" if change else "", fmt(target))
        self.emit("binding", client=addr, local=local, via=via, change_request=change)

    def _reply(self, resp: StunMessage, addr: Addr, via: Addr | None, budget: int, req: StunMessage,
               optional: list[tuple[int, object]] | None = None, mapped: Addr | None = None) -> None:
        """Add optional attributes while the response fits ``budget`` bytes, then queue it."""
        optional = list(optional or [])
        if self.mapped_address and resp.cls == SUCCESS:
            optional.append((MAPPED_ADDRESS, mapped or addr))
        if self.software:
            optional.append((SOFTWARE, self.software))
        size = len(resp.encode())
        fp = False
        if self.fingerprint and size + 8 <= budget:
            fp, size = True, size + 8
        for atype, value in optional:
            trial = StunMessage(resp.method, resp.cls, resp.transaction_id, resp.attributes + [(atype, value)])
            new_size = len(trial.encode()) + (8 if fp else 0)
            if new_size <= budget:
                resp.attributes.append((atype, value))
                size = new_size
        data = resp.encode(fingerprint=fp)
        self.stats["responses"] += 1
        self.send_from(data, addr, via)


__all__ = ["StunServer", "MultiAddressProtocol", "Outgoing"]
