"""A sans-I/O STUN client: ask a server "what address do you see me as?" (RFC 8489).

Over UDP a request can be lost, so the client retransmits (RFC 8489 section 6.2.1): it waits
RTO (500 ms), then doubles the wait each time, sending at most Rc = 7 requests; after the last
one it waits Rm x RTO = 16 x 500 ms more. So requests leave at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and
31.5 s and the client gives up at 39.5 s.

Events: ``mapped`` (``address``, ``server``, ``rtt``, ``other_address``, ``response_origin``),
``error`` (``code``, ``reason``) and ``timeout`` (``server``, ``after``).

>>> c = StunClient(("192.0.2.1", 3478))
>>> c.start(0.0)
>>> len(c.datagrams_to_send()), c.next_timer()
(1, 0.5)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..errors import StunParseError
from ..sansio import Addr, DatagramProtocol
from .message import (
    BINDING,
    CHANGE_REQUEST,
    ERROR,
    MAPPED_ADDRESS,
    OTHER_ADDRESS,
    REQUEST,
    RESPONSE_ORIGIN,
    SOFTWARE,
    SUCCESS,
    XOR_MAPPED_ADDRESS,
    StunMessage,
    is_stun,
)

RTO = 0.5
RC = 7
RM = 16


@dataclass
class Transaction:
    """Retransmission bookkeeping for one request (RFC 8489 section 6.2.1).

    ``send_times`` lists when the request went out; ``deadline`` is when to give up.
    """

    request: StunMessage
    data: bytes
    addr: Addr
    started: float
    rto: float = RTO
    rc: int = RC
    rm: int = RM
    key: bytes | None = None
    context: dict = field(default_factory=dict)
    sent: int = 0
    wait: float = 0.0
    next_time: float = 0.0
    send_times: list[float] = field(default_factory=list)

    def first_send(self, now: float) -> None:
        self.sent = 1
        self.wait = self.rto
        self.send_times.append(now)
        self.next_time = now + (self.rto if self.rc > 1 else self.rm * self.rto)

    def on_timer(self, now: float) -> str:
        """'send' (retransmit now) or 'timeout' (give up): call when ``next_time`` has come."""
        if self.sent >= self.rc:
            return "timeout"
        self.sent += 1
        self.send_times.append(now)
        if self.sent >= self.rc:
            self.next_time = now + self.rm * self.rto
        else:
            self.wait *= 2
            self.next_time = now + self.wait
        return "send"

    @property
    def gives_up_after(self) -> float:
        """Seconds from the first send to giving up, with no response at all."""
        return sum(self.rto * 2 ** i for i in range(self.rc - 1)) + self.rm * self.rto


class TransactionProtocol(DatagramProtocol):
    """Base for STUN/TURN clients: runs many transactions with retransmission timers."""

    def __init__(self, rto: float = RTO, rc: int = RC, rm: int = RM,
                 rng: random.Random | None = None) -> None:
        super().__init__()
        self.rto, self.rc, self.rm = rto, rc, rm
        self.rng = rng
        self.transactions: dict[bytes, Transaction] = {}
        self.bad_packets = 0

    def send_request(self, request: StunMessage, addr: Addr, key: bytes | None = None,
                     fingerprint: bool = True, **context) -> Transaction:
        data = request.encode(key=key, fingerprint=fingerprint)
        tx = Transaction(request, data, addr, self.now, self.rto, self.rc, self.rm, key, context)
        tx.first_send(self.now)
        self.transactions[request.transaction_id] = tx
        self.send(data, addr)
        self.set_timer(tx.next_time, "tx:" + request.transaction_id.hex())
        return tx

    def on_timer(self, name: str, now: float) -> None:
        if not name.startswith("tx:"):
            return
        tid = bytes.fromhex(name[3:])
        tx = self.transactions.get(tid)
        if tx is None or tx.next_time > now + 1e-9:
            return
        if tx.on_timer(now) == "send":
            self.send(tx.data, tx.addr)
            self.set_timer(tx.next_time, name)
        else:
            del self.transactions[tid]
            self.on_transaction_timeout(tx, now)

    def take_response(self, data: bytes, addr: Addr) -> tuple[StunMessage, Transaction] | None:
        """Decode a response and match it to a live transaction (else None, counted as bad)."""
        if not is_stun(data):
            return None
        try:
            msg = StunMessage.decode(data)
        except StunParseError:
            self.bad_packets += 1
            return None
        if msg.cls not in (SUCCESS, ERROR):
            return None
        tx = self.transactions.get(msg.transaction_id)
        if tx is None:
            return None
        if msg.has_fingerprint and not msg.check_fingerprint():
            self.bad_packets += 1
            return None
        if tx.key is not None and msg.has_integrity and not msg.check_integrity(tx.key):
            self.bad_packets += 1
            return None
        del self.transactions[msg.transaction_id]
        self.cancel_timers("tx:" + msg.transaction_id.hex())
        return msg, tx

    def take_binding_response(self, data: bytes, addr: Addr) -> tuple[StunMessage, Transaction, Addr | None, str] | None:
        """Like ``take_response``, for Binding answers: ``(msg, tx, mapped address, problem)``;
        ``problem`` is "" for a usable answer, else why there is no mapped address. None if the
        datagram is not an answer to one of our transactions."""
        got = self.take_response(data, addr)
        if got is None:
            return None
        msg, tx = got
        if msg.cls == ERROR:
            code, reason = msg.error or (0, "")
            return msg, tx, None, f"the server answered {code} {reason}"
        mapped = msg.get(XOR_MAPPED_ADDRESS) or msg.get(MAPPED_ADDRESS)
        return msg, tx, mapped, "" if mapped is not None else "response without a mapped address"

    def on_transaction_timeout(self, tx: Transaction, now: float) -> None:
        """Override: a transaction got no answer."""


class StunClient(TransactionProtocol):
    """Sends one Binding request to ``server`` when started and reports the mapped address.

    ``change_request`` (RFC 5780 flags 0x04 change IP, 0x02 change port) asks the server to
    answer from another address. ``rng`` makes transaction IDs reproducible in the simulator.
    Call ``query()`` to ask again later.
    """

    def __init__(self, server: Addr, rto: float = RTO, rc: int = RC, rm: int = RM,
                 rng: random.Random | None = None, change_request: int | None = None,
                 software: str | None = None, fingerprint: bool = True) -> None:
        super().__init__(rto, rc, rm, rng)
        self.server = (server[0], int(server[1]))
        self.change_request = change_request
        self.software = software
        self.fingerprint = fingerprint
        self.mapped: Addr | None = None

    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        self.query()

    def query(self, server: Addr | None = None, change_request: int | None = None) -> Transaction:
        """Send a new Binding request (to ``server``, default the one given at creation)."""
        req = StunMessage(BINDING, REQUEST, rng=self.rng)
        if self.software:
            req.add(SOFTWARE, self.software)
        cr = self.change_request if change_request is None else change_request
        if cr is not None:
            req.add(CHANGE_REQUEST, cr)
        target = server or self.server
        return self.send_request(req, target, fingerprint=self.fingerprint, change_request=cr)

    def datagram_received(self, data: bytes, addr: Addr, now: float) -> None:
        super().datagram_received(data, addr, now)
        got = self.take_binding_response(data, addr)
        if got is None:
            return
        msg, tx, mapped, problem = got
        if problem:
            code, reason = msg.error or (0, problem)
            self.emit("error", code=code, reason=reason, server=tx.addr)
            return
        self.mapped = mapped
        self.emit("mapped", address=mapped, server=tx.addr, source=addr, rtt=now - tx.send_times[-1],
                  other_address=msg.get(OTHER_ADDRESS), response_origin=msg.get(RESPONSE_ORIGIN),
                  transaction_id=msg.transaction_id, change_request=tx.context.get("change_request"))

    def on_transaction_timeout(self, tx: Transaction, now: float) -> None:
        self.emit("timeout", server=tx.addr, after=now - tx.started,
                  change_request=tx.context.get("change_request"))
