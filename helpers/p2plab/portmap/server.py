"""A PCP (RFC 6887) and NAT-PMP (RFC 6886) server for a NAT router, sans-I/O.

``PortMapServer`` answers both protocols on one socket (they share port 5351; the first byte,
the version, tells them apart: 0 NAT-PMP, 2 PCP). It keeps the table of mappings it granted and
says what the router must do through events:

* ``mapped``   - install a static mapping: ``proto``, ``internal`` (ip, port), ``external`` (ip, port),
  ``lifetime``, ``protocol`` ("pcp"/"natpmp"). Renewals emit ``mapped`` again with ``renewed=True``.
* ``unmapped`` - remove it again: same fields plus ``why`` ("expired" or "deleted").
* ``refused``  - a request it answered with an error: ``result`` (name), ``message``.

Its timers expire mappings at the end of their lifetime. A driver (the simulated router,
``p2plab.portmap.lab`` in the real lab) turns ``mapped``/``unmapped`` into NAT rules.

Rules it follows: the client must be on the LAN; PCP's client address field must equal the
source address, else ``ADDRESS_MISMATCH`` (RFC 6887 section 8.2: a NAT between client and server);
an existing PCP mapping is only changed by a request with the same nonce, else ``NOT_AUTHORIZED``
(section 11.3); lifetimes are clamped to ``[min_lifetime, max_lifetime]`` (section 15); lifetime 0
deletes (RFC 6887 section 15, RFC 6886 section 3.4). ``refuse`` makes it answer every mapping request
with an error, as miniupnpd does when its external address is reserved.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..sansio import Addr, DatagramProtocol
from . import natpmp, pcp

Key = tuple[int, str, int]  # (proto, internal ip, internal port)


@dataclass
class GrantedMapping:
    """One mapping the server granted."""

    proto: int
    internal: Addr
    external: Addr
    expires: float
    protocol: str  # "pcp" or "natpmp"
    nonce: bytes = b""
    created: float = 0.0

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        d = {"proto": {17: "udp", 6: "tcp"}.get(self.proto, self.proto), "internal": f"{self.internal[0]}:{self.internal[1]}",
             "external": f"{self.external[0]}:{self.external[1]}", "protocol": self.protocol,
             "expires": round(self.expires, 3)}
        if now is not None:
            d["remaining"] = round(self.expires - now, 3)
        return d


class PortMapServer(DatagramProtocol):
    """Grants static mappings on a NAT router's external address to clients on its LAN.

    ``external_ip`` is the router's outside address; ``lan`` the inside network allowed to ask;
    ``port_range`` where external ports are allocated when the suggested one is not free;
    ``port_free(proto, port)`` asks the router whether an external port is unused (default: only
    this server's own mappings count). ``refuse`` = ``(pcp_result, natpmp_result, message)`` makes it
    refuse every mapping.
    """

    def __init__(self, external_ip: str, lan: str = "192.168.0.0/16", *, min_lifetime: int = 120,
                 max_lifetime: int = 86400, port_range: tuple[int, int] = (1024, 65535),
                 port_free: Callable[[int, int], bool] | None = None, refuse: tuple[int, int, str] | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.external_ip = external_ip
        self.lan = ipaddress.ip_network(lan, strict=False)
        self.min_lifetime, self.max_lifetime = min_lifetime, max_lifetime
        self.port_range = port_range
        self.port_free = port_free
        self.refuse = refuse
        self.rng = random.Random(seed)
        self.mappings: dict[Key, GrantedMapping] = {}
        self.started_at = 0.0
        self.log: list[str] = []

    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        self.started_at = now

    @property
    def epoch(self) -> int:
        """Seconds since this server (its mapping table) started: both protocols send it."""
        return int(self.now - self.started_at) & 0xFFFFFFFF

    # -- helpers ---------------------------------------------------------------------------
    def _free(self, proto: int, port: int, key: Key) -> bool:
        for k, m in self.mappings.items():
            if k != key and m.proto == proto and m.external[1] == port:
                return False
        return self.port_free(proto, port) if self.port_free is not None else True

    def _allocate(self, proto: int, key: Key, suggested: int) -> int | None:
        lo, hi = self.port_range
        for port in (suggested, key[2]):
            if port and lo <= port <= hi and self._free(proto, port, key):
                return port
        for _ in range(256):
            port = self.rng.randint(lo, hi)
            if self._free(proto, port, key):
                return port
        return None

    def _clamp(self, lifetime: int) -> int:
        return max(self.min_lifetime, min(self.max_lifetime, lifetime))

    def _grant(self, key: Key, port: int, lifetime: int, protocol: str, nonce: bytes) -> GrantedMapping:
        old = self.mappings.get(key)
        m = GrantedMapping(key[0], (key[1], key[2]), (self.external_ip, port), self.now + lifetime, protocol,
                           nonce, old.created if old else self.now)
        self.mappings[key] = m
        self.set_timer(m.expires, "expire")
        self.emit("mapped", proto=key[0], internal=m.internal, external=m.external, lifetime=lifetime,
                  protocol=protocol, renewed=old is not None and old.external == m.external)
        self.log.append(f"t={self.now:.3f} {protocol} mapped {m.internal[0]}:{m.internal[1]} -> "
                        f"{m.external[0]}:{m.external[1]} for {lifetime} s")
        return m

    def _delete(self, key: Key, why: str) -> None:
        m = self.mappings.pop(key, None)
        if m is not None:
            self.emit("unmapped", proto=m.proto, internal=m.internal, external=m.external, lifetime=0,
                      protocol=m.protocol, why=why)
            self.log.append(f"t={self.now:.3f} {m.protocol} mapping {m.internal[0]}:{m.internal[1]} -> "
                            f"{m.external[0]}:{m.external[1]} {why}")

    def on_timer(self, name: str, now: float) -> None:
        if name == "expire":
            for key in [k for k, m in self.mappings.items() if m.expires <= now + 1e-9]:
                self._delete(key, "expired")

    def table(self) -> list[dict[str, Any]]:
        """The granted mappings now."""
        return [m.as_dict(self.now) for m in self.mappings.values()]

    # -- requests --------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        data = bytes(data)
        if len(data) < 2:
            return  # too short to answer (RFC 6887 section 8.2: silently dropped)
        if data[1] & 0x80:
            return  # a response: servers never answer responses
        try:
            inside = ipaddress.ip_address(addr[0]) in self.lan
        except ValueError:
            inside = False
        if data[0] == natpmp.VERSION:
            self._natpmp(data, addr, inside)
        elif data[0] == pcp.VERSION:
            self._pcp(data, addr, inside)
        else:  # RFC 6887 section 9: answer with the highest version supported
            self.send(pcp.Response(data[1] & 0x7F, pcp.UNSUPP_VERSION, 1800, self.epoch).encode()[:pcp.HEADER], addr)

    def _refuse(self, result_name: str, message: str, addr: Addr, protocol: str) -> None:
        self.emit("refused", result=result_name, message=message, client=addr, protocol=protocol)
        self.log.append(f"t={self.now:.3f} {protocol} refused {addr[0]}:{addr[1]}: {result_name} ({message})")

    def _natpmp(self, data: bytes, addr: Addr, inside: bool) -> None:
        try:
            req = natpmp.decode(data)
        except natpmp.NatPmpError as exc:
            self.send(natpmp.ErrorResponse(natpmp.RESPONSE + data[1], natpmp.UNSUPP_OPCODE, self.epoch).encode(), addr)
            self._refuse("UNSUPP_OPCODE", str(exc), addr, "natpmp")
            return
        if isinstance(req, natpmp.ExternalAddressRequest):
            ok = self.refuse is None and inside
            result = natpmp.SUCCESS if ok else (self.refuse[1] if self.refuse else natpmp.NOT_AUTHORIZED)
            self.send(natpmp.ExternalAddressResponse(result, self.epoch, self.external_ip if ok else "0.0.0.0").encode(),
                      addr)
            return
        if not isinstance(req, natpmp.MapRequest):
            return
        if not inside or self.refuse is not None:
            code = natpmp.NOT_AUTHORIZED if not inside else self.refuse[1]
            why = f"{addr[0]} is not on {self.lan}" if not inside else self.refuse[2]
            self.send(natpmp.MapResponse(req.proto, code, self.epoch, req.internal_port, 0, 0).encode(), addr)
            self._refuse(natpmp.result_name(code), why, addr, "natpmp")
            return
        key = (req.proto, addr[0], req.internal_port)
        if req.lifetime == 0:  # RFC 6886 section 3.4: delete (internal port 0 = all of this client's)
            keys = [k for k in self.mappings if k[0] == req.proto and k[1] == addr[0]
                    and (req.internal_port == 0 or k[2] == req.internal_port)]
            for k in keys:
                self._delete(k, "deleted")
            self.send(natpmp.MapResponse(req.proto, natpmp.SUCCESS, self.epoch, req.internal_port, 0, 0).encode(), addr)
            return
        old = self.mappings.get(key)
        port = old.external[1] if old else self._allocate(req.proto, key, req.suggested_external_port)
        if port is None:
            self.send(natpmp.MapResponse(req.proto, natpmp.OUT_OF_RESOURCES, self.epoch, req.internal_port, 0, 0).encode(),
                      addr)
            self._refuse("OUT_OF_RESOURCES", "no free external port", addr, "natpmp")
            return
        life = self._clamp(req.lifetime)
        self._grant(key, port, life, "natpmp", b"")
        self.send(natpmp.MapResponse(req.proto, natpmp.SUCCESS, self.epoch, req.internal_port, port, life).encode(), addr)

    def _pcp_error(self, data: bytes, code: int, addr: Addr, message: str, opcode: int = 0) -> None:
        # RFC 6887 section 8.2: an error response copies the request's opcode data (when parsable).
        # Lifetimes of errors are p2plab's choice: 30 min for long lifetime errors, 30 s for short ones.
        body = data[pcp.HEADER:pcp.MAX_SIZE] if len(data) >= pcp.HEADER and len(data) % 4 == 0 else b""
        life = 1800 if code in pcp.LONG_LIFETIME_ERRORS else 30
        self.send(pcp.Response(opcode, code, life, self.epoch, opaque=bytes(body)).encode(), addr)
        self._refuse(pcp.result_name(code), message, addr, "pcp")

    def _pcp(self, data: bytes, addr: Addr, inside: bool) -> None:
        opcode = data[1] & 0x7F
        try:
            req = pcp.decode(data)
        except pcp.PcpError as exc:
            if len(data) < 4:
                return
            self._pcp_error(data, exc.result, addr, str(exc), opcode)
            return
        assert isinstance(req, pcp.Request)
        if req.client_ip != addr[0]:
            self._pcp_error(data, pcp.ADDRESS_MISMATCH, addr,
                            f"the request says the client is {req.client_ip} but it came from {addr[0]}: a NAT "
                            "between client and server rewrote the source address", opcode)
            return
        for opt in req.options:
            if opt.code < 128:  # mandatory to process, and p2plab implements no options
                self._pcp_error(data, pcp.UNSUPP_OPTION, addr, f"option {opt.code} is not supported", opcode)
                return
        if opcode == pcp.OP_ANNOUNCE:  # section 14.1: a client may send ANNOUNCE to learn the epoch
            self.send(pcp.Response(pcp.OP_ANNOUNCE, pcp.SUCCESS, 0, self.epoch).encode(), addr)
            return
        if opcode != pcp.OP_MAP:
            self._pcp_error(data, pcp.UNSUPP_OPCODE, addr, f"opcode {pcp.OPCODES.get(opcode, opcode)} is not supported",
                            opcode)
            return
        mp = req.map
        assert mp is not None
        if not inside:
            self._pcp_error(data, pcp.NOT_AUTHORIZED, addr, f"{addr[0]} is not on {self.lan}", opcode)
            return
        if self.refuse is not None:
            self._pcp_error(data, self.refuse[0], addr, self.refuse[2], opcode)
            return
        if mp.proto not in (6, 17) or mp.internal_port == 0:
            if req.lifetime == 0 and mp.internal_port == 0:  # delete all of this client's mappings
                for k in [k for k in self.mappings if k[1] == addr[0] and (mp.proto in (0, k[0]))]:
                    if self.mappings[k].nonce == mp.nonce:
                        self._delete(k, "deleted")
                self.send(pcp.Response(pcp.OP_MAP, pcp.SUCCESS, 0, self.epoch, mp).encode(), addr)
                return
            self._pcp_error(data, pcp.UNSUPP_PROTOCOL, addr,
                            f"p2plab maps one UDP (17) or TCP (6) port; got protocol {mp.proto} port {mp.internal_port}",
                            opcode)
            return
        key = (mp.proto, addr[0], mp.internal_port)
        old = self.mappings.get(key)
        if old is not None and old.protocol == "pcp" and old.nonce != mp.nonce:
            self._pcp_error(data, pcp.NOT_AUTHORIZED, addr,
                            f"{addr[0]}:{mp.internal_port} is already mapped with another nonce", opcode)
            return
        if req.lifetime == 0:
            self._delete(key, "deleted")
            self.send(pcp.Response(pcp.OP_MAP, pcp.SUCCESS, 0, self.epoch, mp).encode(), addr)
            return
        port = old.external[1] if old else self._allocate(mp.proto, key, mp.external_port)
        if port is None:
            self._pcp_error(data, pcp.NO_RESOURCES, addr, "no free external port", opcode)
            return
        life = self._clamp(req.lifetime)
        self._grant(key, port, life, "pcp", mp.nonce)
        out = pcp.MapData(mp.nonce, mp.proto, mp.internal_port, port, self.external_ip)
        self.send(pcp.Response(pcp.OP_MAP, pcp.SUCCESS, life, self.epoch, out).encode(), addr)
