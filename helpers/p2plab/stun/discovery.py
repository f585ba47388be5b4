"""NAT behaviour discovery with an RFC 5780 STUN server, as a sans-I/O state machine.

The server has two IPs and two ports, and says where the other ones are (OTHER-ADDRESS).

Filtering (RFC 5780 section 4.4) - who may send to our mapping?
  Test I    Binding to the primary address: learn the mapping and OTHER-ADDRESS.
  Test II   ask for the answer from the *other IP and port* (CHANGE-REQUEST 0x06).
            An answer gets through: endpoint-independent filtering.
  Test III  ask for the answer from the *other port only* (CHANGE-REQUEST 0x02).
            An answer gets through: address-dependent; none: address-and-port-dependent.

Mapping (RFC 5780 section 4.3) - does the NAT keep our outside address per destination?
  Test I    (above) mapped address M1. If M1 is our own address there is no NAT.
  Test II   Binding to (other IP, primary port): M2 == M1 means endpoint-independent mapping.
  Test III  Binding to (other IP, other port): M3 == M2 means address-dependent,
            otherwise address-and-port-dependent mapping.

The filtering tests run first: mapping test II sends to the other IP, which would open an
address-dependent filter and spoil filtering test II. Tests that expect "no answer" wait for
a transaction timeout, so discovery uses a shorter schedule than a plain client (``rc=3``,
``rm=4``: 3.5 s with RTO 0.5 s).

Events: ``test`` (name, result) for each step and finally ``nat-type`` with ``mapping``,
``filtering``, ``classic`` (the RFC 3489 cone name), ``mapped`` and ``nat`` (is there a NAT?);
or ``failed`` (reason) when the server does not answer or lacks RFC 5780 support.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..nat import AD, APD, EI, classic_name
from ..sansio import Addr
from .client import RTO, Transaction, TransactionProtocol
from .message import (
    BINDING,
    CHANGE_IP,
    CHANGE_PORT,
    CHANGE_REQUEST,
    OTHER_ADDRESS,
    REQUEST,
    StunMessage,
)


@dataclass
class DiscoveryResult:
    """What the tests found, in RFC 4787 terms and as a classic cone name."""

    mapping: str
    filtering: str
    classic: str
    mapped: Addr
    nat: bool

    def describe(self) -> str:
        if not self.nat:
            return (f"no NAT: the server saw our own address {self.mapped[0]}:{self.mapped[1]}; "
                    f"filtering {self.filtering}")
        return (f"{self.mapping} mapping, {self.filtering} filtering ({self.classic}); "
                f"mapped address {self.mapped[0]}:{self.mapped[1]}")


class NatDiscovery(TransactionProtocol):
    """Runs the RFC 5780 tests against ``server`` when started. ``result`` holds the outcome."""

    def __init__(self, server: Addr, rto: float = RTO, rc: int = 3, rm: int = 4,
                 rng: random.Random | None = None) -> None:
        super().__init__(rto, rc, rm, rng)
        self.server = (server[0], int(server[1]))
        self.step = "idle"
        self.mapped: dict[str, Addr] = {}
        self.other: Addr | None = None
        self.filtering: str | None = None
        self.result: DiscoveryResult | None = None

    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        self._test("test1", self.server)

    def _test(self, step: str, target: Addr, change: int | None = None) -> None:
        self.step = step
        req = StunMessage(BINDING, REQUEST, rng=self.rng)
        if change is not None:
            req.add(CHANGE_REQUEST, change)
        self.send_request(req, target, step=step)

    def datagram_received(self, data: bytes, addr: Addr, now: float) -> None:
        super().datagram_received(data, addr, now)
        got = self.take_binding_response(data, addr)
        if got is None:
            return
        msg, tx, mapped, problem = got
        if problem:
            self._fail(f"{tx.context['step']}: {problem}")
            return
        self._advance(tx.context["step"], mapped, msg)

    def on_transaction_timeout(self, tx: Transaction, now: float) -> None:
        self._advance(tx.context["step"], None, None)

    def _fail(self, reason: str) -> None:
        self.step = "done"
        self.emit("failed", reason=reason)

    def _advance(self, step: str, mapped: Addr | None, msg: StunMessage | None) -> None:
        self.emit("test", name=step, result=mapped)
        if step == "test1":
            if mapped is None:
                self._fail(f"no answer from {self.server[0]}:{self.server[1]} (UDP blocked or server down)")
                return
            self.other = msg.get(OTHER_ADDRESS) if msg else None
            if self.other is None:
                self._fail("the server did not send OTHER-ADDRESS: it does not support RFC 5780 tests")
                return
            self.mapped["test1"] = mapped
            self._test("filter2", self.server, CHANGE_IP | CHANGE_PORT)
        elif step == "filter2":
            if mapped is not None:
                self.filtering = EI
                self._mapping_tests()
            else:
                self._test("filter3", self.server, CHANGE_PORT)
        elif step == "filter3":
            self.filtering = AD if mapped is not None else APD
            self._mapping_tests()
        elif step == "map2":
            if mapped is None:
                self._fail("no answer from the server's alternate address")
                return
            self.mapped["map2"] = mapped
            if mapped == self.mapped["test1"]:
                self._finish(EI)
            else:
                assert self.other is not None
                self._test("map3", self.other)
        elif step == "map3":
            if mapped is None:
                self._fail("no answer from the server's alternate address and port")
                return
            self._finish(AD if mapped == self.mapped["map2"] else APD)

    def _mapping_tests(self) -> None:
        m1 = self.mapped["test1"]
        if self.local_addr is not None and tuple(m1) == tuple(self.local_addr):
            self._finish(EI, nat=False)
            return
        assert self.other is not None
        self._test("map2", (self.other[0], self.server[1]))

    def _finish(self, mapping: str, nat: bool = True) -> None:
        assert self.filtering is not None
        self.step = "done"
        self.result = DiscoveryResult(mapping, self.filtering, classic_name(mapping, self.filtering),
                                      self.mapped["test1"], nat)
        self.emit("nat-type", mapping=mapping, filtering=self.filtering, classic=self.result.classic,
                  mapped=self.mapped["test1"], nat=nat, description=self.result.describe())
