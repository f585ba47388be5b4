"""Asking the NAT for a port mapping: a PCP (RFC 6887) or NAT-PMP (RFC 6886) client, sans-I/O.

>>> c = PortMapClient("pcp", ("192.168.1.1", 5351), internal_port=5000, client_ip="192.168.1.10")

Run it like every p2plab protocol (``net.run_protocol("alice", c)`` in the simulator,
``p2plab.aio`` on real sockets). Events:

* ``mapped``  - ``external`` (ip, port) the router now forwards to ``internal`` for ``lifetime``
  seconds; ``warning`` is set when that external address is not public (a carrier-grade NAT or
  another NAT beyond the router: the mapping is on the wrong box).
* ``failed``  - ``result`` (the result code's name, e.g. ``NETWORK_FAILURE``), ``code`` and
  ``message`` in words; or ``result="TIMEOUT"`` when no server answered.
* ``deleted`` - after ``delete()`` was confirmed.

Retransmission: NAT-PMP starts at 250 ms and doubles (RFC 6886 section 3.1); PCP starts at
3 s (IRT) and doubles up to 1024 s (MRT) with +-10 % randomisation (RFC 6887 section 8.1.1).
``initial_rto`` shortens the first wait for a lab, ``give_up_after`` bounds the whole attempt.
``lifetime=0`` asks the router to delete the mapping (give the same ``nonce`` for PCP); so does ``delete()``.
The mapping is renewed at half its lifetime when ``renew=True`` (RFC 6887 section 11.2.1 says
between 1/2 and 5/8; RFC 6886 section 3.3 half).
"""

from __future__ import annotations

import random
from typing import Any

from ..addresses import is_private, is_shared_cgn
from ..errors import ConfigurationError
from ..sansio import Addr, DatagramProtocol
from . import natpmp, pcp

PROTOCOLS = ("pcp", "natpmp")


def check_protocol(name: str) -> str:
    """'pcp' or 'natpmp' (also accepts 'nat-pmp'); a clear error otherwise."""
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in PROTOCOLS:
        raise ConfigurationError(f"unknown port mapping protocol {name!r}: use 'pcp' (RFC 6887) or 'natpmp' (RFC 6886)")
    return key


def external_warning(ip: str) -> str:
    """Why an external address a router reports does not make you reachable, or '' if it is public."""
    if is_shared_cgn(ip):
        return (f"the router's external address {ip} is carrier-grade NAT shared space (RFC 6598): a provider's "
                "NAT sits beyond it, so this mapping is on the wrong box and nobody on the internet can reach it")
    if is_private(ip):
        return (f"the router's external address {ip} is private (RFC 1918): another NAT sits beyond it, so this "
                "mapping does not make you reachable from the internet")
    return ""


class PortMapClient(DatagramProtocol):
    """Asks the router ``server`` for a mapping of ``internal_port`` (UDP by default)."""

    def __init__(self, protocol: str, server: Addr, internal_port: int, *, proto: int = 17,
                 lifetime: int = 7200, suggested_port: int = 0, client_ip: str | None = None,
                 nonce: bytes | None = None, initial_rto: float | None = None, give_up_after: float = 30.0,
                 renew: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.protocol = check_protocol(protocol)
        self.server = (server[0], int(server[1]))
        if not 1 <= int(internal_port) <= 65535:
            raise ConfigurationError(f"internal_port must be 1-65535 (the port your application listens on); got {internal_port}")
        if proto not in (6, 17):
            raise ConfigurationError(f"proto must be 17 (UDP) or 6 (TCP); got {proto}")
        self.internal_port = int(internal_port)
        self.proto = proto
        self.lifetime = int(lifetime)
        self.suggested_port = int(suggested_port)
        self.client_ip = client_ip
        self.rng = random.Random(seed)
        self.nonce = nonce if nonce is not None else bytes(self.rng.getrandbits(8) for _ in range(12))
        self.initial_rto = initial_rto if initial_rto is not None else (0.25 if self.protocol == "natpmp" else 3.0)
        self.give_up_after = give_up_after
        self.renew = renew
        self.state = "new"
        self.external: Addr | None = None
        self.external_ip: str | None = None
        self.granted_lifetime: int | None = None
        self.epoch: int | None = None
        self.attempts = 0
        self._rto = self.initial_rto
        self._deadline = 0.0
        self._want_lifetime = self.lifetime

    # -- requests ---------------------------------------------------------------------------
    def _requests(self) -> list[bytes]:
        if self.protocol == "natpmp":
            out = [natpmp.MapRequest(self.proto, self.internal_port,
                                     0 if self._want_lifetime == 0 else self.suggested_port, self._want_lifetime).encode()]
            if self.external_ip is None and self._want_lifetime:
                out.insert(0, natpmp.ExternalAddressRequest().encode())
            return out
        ip = self.client_ip or (self.local_addr[0] if self.local_addr else "0.0.0.0")
        mp = pcp.MapData(self.nonce, self.proto, self.internal_port,
                         0 if self._want_lifetime == 0 else self.suggested_port, pcp.ALL_ZEROS_V4)
        return [pcp.Request(pcp.OP_MAP, self._want_lifetime, ip, mp).encode()]

    def _send_all(self) -> None:
        self.attempts += 1
        for data in self._requests():
            self.send(data, self.server)
        rto = self._rto
        if self.protocol == "pcp":
            rto *= 1 + self.rng.uniform(-0.1, 0.1)
        self.set_timer(self.now + rto, "retransmit")
        self._rto = min(self._rto * 2, 64.0 if self.protocol == "natpmp" else 1024.0)

    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        self._begin("deleting" if self._want_lifetime == 0 else "requesting")

    def _begin(self, state: str) -> None:
        self.state = state
        self._rto = self.initial_rto
        self._deadline = self.now + self.give_up_after
        self.cancel_timers("retransmit")
        self._send_all()

    def delete(self) -> None:
        """Ask the router to remove the mapping (lifetime 0)."""
        self._want_lifetime = 0
        self.cancel_timers("renew")
        self._begin("deleting")

    def on_timer(self, name: str, now: float) -> None:
        if name == "retransmit" and self.state in ("requesting", "renewing", "deleting"):
            if now >= self._deadline:
                self.cancel_timers("retransmit")
                kind = {"requesting": "mapping", "renewing": "renewal", "deleting": "deletion"}[self.state]
                self.state = "failed"
                self.emit("failed", result="TIMEOUT", code=None, protocol=self.protocol,
                          message=(f"no {self.protocol.upper()} answer from {self.server[0]}:{self.server[1]} to "
                                   f"{self.attempts} {kind} requests in {self.give_up_after:g} s: this router does "
                                   "not run a port mapping server (or it is turned off)"))
                return
            self._send_all()
        elif name == "renew" and self.state == "mapped":
            self._begin("renewing")

    # -- responses --------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        if (addr[0], int(addr[1])) != self.server or self.state not in ("requesting", "renewing", "deleting"):
            return
        try:
            if self.protocol == "natpmp":
                self._natpmp(natpmp.decode(data))
            else:
                msg = pcp.decode(data)
                if isinstance(msg, pcp.Response):
                    self._pcp(msg)
        except (natpmp.NatPmpError, pcp.PcpError):
            return  # not for us / garbage: keep waiting (RFC 6887 section 8.3: the client silently drops it)

    def _fail(self, name: str, code: int, text: str) -> None:
        self.cancel_timers("retransmit")
        self.state = "failed"
        hint = ""
        if name == "NETWORK_FAILURE":
            hint = (" The router cannot forward to its external address - miniupnpd says this when that address "
                    "is private or reserved, i.e. the router is itself behind another NAT (carrier-grade NAT).")
        elif name == "NOT_AUTHORIZED":
            hint = " Port mapping is turned off on this router, or the mapping belongs to someone else."
        elif name == "NO_RESOURCES":
            hint = (" The router could not add the mapping; miniupnpd answers this to PCP when its external address "
                    "is private or reserved (the router is behind another NAT), so no mapping can help.")
        elif name == "ADDRESS_MISMATCH":
            hint = " Ask the router you are directly behind (your default gateway)."
        self.emit("failed", result=name, code=code, protocol=self.protocol,
                  message=f"the router at {self.server[0]} refused the {self.protocol.upper()} request: {name} "
                          f"({text}).{hint}")

    def _done(self, external: Addr, lifetime: int, epoch: int) -> None:
        self.cancel_timers("retransmit")
        self.epoch = epoch
        if self.state == "deleting":
            self.state = "deleted"
            self.external = None
            self.emit("deleted", internal_port=self.internal_port, protocol=self.protocol)
            return
        renewed = self.state == "renewing"
        self.state = "mapped"
        self.external = external
        self.granted_lifetime = lifetime
        self.emit("mapped", external=external, internal_port=self.internal_port, lifetime=lifetime, epoch=epoch,
                  protocol=self.protocol, renewed=renewed, attempts=self.attempts,
                  warning=external_warning(external[0]))
        if self.renew and lifetime > 0:
            self.set_timer(self.now + lifetime / 2, "renew")

    def _natpmp(self, msg: natpmp.Message) -> None:
        if isinstance(msg, natpmp.ExternalAddressResponse):
            if msg.result == natpmp.SUCCESS:
                self.external_ip = msg.external_ip
            return
        if isinstance(msg, natpmp.ErrorResponse):
            if msg.opcode == natpmp.RESPONSE + natpmp.OP_OF_PROTO[self.proto] or msg.result == natpmp.UNSUPP_VERSION:
                self._fail(natpmp.result_name(msg.result), msg.result, natpmp.result_text(msg.result))
            return
        if not isinstance(msg, natpmp.MapResponse) or msg.proto != self.proto or msg.internal_port != self.internal_port:
            return
        if msg.result != natpmp.SUCCESS:
            self._fail(natpmp.result_name(msg.result), msg.result, natpmp.result_text(msg.result))
            return
        if self.state != "deleting" and self.external_ip is None:
            return  # wait for the external address (its request was sent first; a retransmit repeats both)
        self._done((self.external_ip or "0.0.0.0", msg.external_port), msg.lifetime, msg.epoch)

    def _pcp(self, msg: pcp.Response) -> None:
        if msg.opcode != pcp.OP_MAP:
            return
        if msg.map is not None and (msg.map.nonce != self.nonce or msg.map.internal_port != self.internal_port):
            return  # RFC 6887 section 11.4: a response whose nonce does not match is not ours
        if msg.result != pcp.SUCCESS:
            self._fail(pcp.result_name(msg.result), msg.result, pcp.result_text(msg.result))
            return
        if msg.map is None:
            return
        self._done((msg.map.external_ip, msg.map.external_port), msg.lifetime, msg.epoch)
