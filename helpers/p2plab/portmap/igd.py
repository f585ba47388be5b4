"""A UPnP IGD client on real sockets: SSDP over UDP multicast, description and SOAP over ``http.client``.

The bytes are built and parsed by the sans-I/O ``p2plab.portmap.upnp``; this module only moves
them. It runs on a lab host (``lab.run_python("alice", map_port, ...)``):

>>> out = map_port(5000, client_ip="192.168.1.10", lan="192.168.1.0/24",   # doctest: +SKIP
...                gateway="192.168.1.1")
>>> out["state"], out["external"], [e["kind"] for e in out["events"]]     # doctest: +SKIP
('mapped', ['203.0.113.10', 5000], ['found', 'described', 'external-ip', 'mapped'])

Network safety: SSDP multicasts on the LAN, so ``discover`` refuses to run unless ``client_ip``
sits on a p2plab lab interface (inside a lab namespace): it never multicasts on this machine's
own network. And it only follows URLs pointing at the gateway (``upnp.check_location``).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from typing import Any

from .. import systools
from ..errors import ConfigurationError
from . import upnp
from .client import external_warning

LAB_PREFIX = "p2plab-"  # every interface a p2plab lab creates starts with this (p2plab.netns.lab)


def lab_interface(ip: str) -> str:
    """The name of the interface holding ``ip`` - which must be a p2plab lab interface.

    Raises ``ConfigurationError`` otherwise: SSDP multicast must stay inside the lab's namespaces.
    """
    out = subprocess.run([systools.require("ip"), "-j", "-4", "addr", "show"], capture_output=True, text=True)
    try:
        links = json.loads(out.stdout or "[]")
    except ValueError:
        links = []
    for link in links:
        for a in link.get("addr_info", []):
            if a.get("local") == ip:
                name = link.get("ifname", "")
                if not name.startswith(LAB_PREFIX):
                    raise ConfigurationError(
                        f"{ip} is on interface {name!r} of this machine, not on a p2plab lab interface: UPnP "
                        "discovery multicasts on the LAN, so p2plab only runs it inside a lab namespace "
                        "(lab.run_python('alice', ...))")
                return name
    raise ConfigurationError(f"no interface here has address {ip}: run this on the lab host that owns it "
                             "(lab.run_python('alice', ...)) and give that host's LAN address as client_ip")


def discover(client_ip: str, lan: str, gateway: str | None = None, *, timeout: float = 3.0,
             interval: float = 1.0, linger: float = 0.0) -> dict[str, Any]:
    """Multicast ``M-SEARCH`` from ``client_ip`` and wait for an Internet gateway's answer.

    Returns ``{"found": SsdpResponse | None, "events": [...], "raw": [(source, bytes), ...]}``.
    The multicast leaves only through the lab interface holding ``client_ip``, with TTL 2.
    ``linger``: once a gateway answered, keep the socket open up to that many seconds more and collect
    the later answers, until there is one per ``M-SEARCH`` sent (a router answers each search target
    after its own random delay of up to MX = 1 s; an answer meeting a closed port makes this host's
    kernel send back an ICMP port unreachable).
    """
    lab_interface(client_ip)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(client_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, upnp.SSDP_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.bind((client_ip, 0))
        search = upnp.SsdpSearch(lan, gateway, interval=interval, timeout=timeout)
        raw: list[tuple[list, bytes]] = []
        events: list[dict[str, Any]] = []
        t0 = time.monotonic()
        search.start(0.0, sock.getsockname())
        while True:
            for data, addr in search.datagrams_to_send():
                sock.sendto(data, addr)
            for ev in search.events():
                events.append({"kind": ev.kind, "time": round(ev.time, 4), **ev.data})
            if search.state != "searching":
                break
            now = time.monotonic() - t0
            at = search.next_timer()
            sock.settimeout(max(0.001, (at if at is not None else now + 0.1) - now))
            try:
                data, addr = sock.recvfrom(8192)
            except (TimeoutError, BlockingIOError):
                search.handle_timer(time.monotonic() - t0)
                continue
            raw.append(([addr[0], addr[1]], data))
            search.datagram_received(data, addr, time.monotonic() - t0)
        end = time.monotonic() + (linger if search.found is not None else 0.0)
        # an answer per search sent is all a router gives (one per search target it matches): stop then
        while (left := end - time.monotonic()) > 0 and len(raw) < search.sent:
            sock.settimeout(left)
            try:
                data, addr = sock.recvfrom(8192)
            except (TimeoutError, BlockingIOError):
                break
            raw.append(([addr[0], addr[1]], data))
    finally:
        sock.close()
    return {"found": search.found, "events": events, "raw": raw}


def _http(method: str, url: str, lan: str, gateway: str | None, client_ip: str | None, *, body: bytes | None = None,
          headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    host, port, path = upnp.check_location(url, lan, gateway)
    conn = http.client.HTTPConnection(host, port, timeout=timeout,
                                      source_address=(client_ip, 0) if client_ip else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read(upnp.MAX_BODY + 1)
        return resp.status, data
    finally:
        conn.close()


class IgdClient:
    """Calls SOAP actions on a router's WAN connection service (``service`` from ``upnp.find_service``).

    Every URL it uses has passed ``upnp.check_location`` for ``lan``/``gateway``. ``exchanges``
    keeps each call's request and response bytes (to read, or to test a parser against).
    """

    def __init__(self, service: upnp.Service, lan: str, gateway: str | None = None, client_ip: str | None = None,
                 timeout: float = 5.0) -> None:
        upnp.check_location(service.control_url, lan, gateway)
        self.service, self.lan, self.gateway, self.client_ip, self.timeout = service, lan, gateway, client_ip, timeout
        self.exchanges: list[dict[str, Any]] = []

    @classmethod
    def from_location(cls, location: str, lan: str, gateway: str | None = None, client_ip: str | None = None,
                      timeout: float = 5.0) -> IgdClient:
        """Fetch the description at ``location`` (HTTP GET) and find the WAN connection service."""
        status, body = _http("GET", location, lan, gateway, client_ip, timeout=timeout)
        if status != 200:
            raise upnp.UpnpError(f"GET {location} answered HTTP {status}: no device description there")
        client = cls(upnp.find_service(body, location, lan, gateway), lan, gateway, client_ip, timeout)
        client.description = body
        return client

    def call(self, action: str, args: list[tuple[str, Any]] | None = None) -> dict[str, str]:
        """POST one SOAP action; its output arguments, or ``UpnpActionError`` with the router's error code."""
        headers, body = upnp.soap_request(self.service.service_type, action, args)
        status, data = _http("POST", self.service.control_url, self.lan, self.gateway, self.client_ip,
                             body=body, headers=headers, timeout=self.timeout)
        self.exchanges.append({"action": action, "request": body, "status": status, "response": data})
        return upnp.parse_soap_response(status, data, action)

    def external_ip(self) -> str:
        """``GetExternalIPAddress``: the router's WAN address ('' when it has no usable one)."""
        return self.call("GetExternalIPAddress").get("NewExternalIPAddress", "")

    def add_port_mapping(self, external_port: int, protocol: str, internal_port: int, internal_client: str, *,
                         lease: int = 3600, description: str = "p2plab") -> None:
        """``AddPortMapping``: forward ``external_port`` on the router to ``internal_client:internal_port``."""
        self.call("AddPortMapping", upnp.add_port_mapping_args(external_port, protocol, internal_port,
                                                               internal_client, lease=lease,
                                                               description=description))

    def delete_port_mapping(self, external_port: int, protocol: str) -> None:
        """``DeletePortMapping`` of ``external_port``/``protocol``."""
        self.call("DeletePortMapping", upnp.delete_port_mapping_args(external_port, protocol))


NO_EXTERNAL = ("the router reports no usable external address (GetExternalIPAddress answered an empty string; "
               "WANIPConnection:2 says a gateway does that when it cannot get one, and miniupnpd does it when "
               "its WAN address is private or reserved): it is behind another NAT - carrier-grade NAT - so a "
               "mapping on this router cannot make you reachable")


def map_port(internal_port: int, *, client_ip: str, lan: str, gateway: str, external_port: int | None = None,
             protocol: str = "UDP", lease: int = 3600, delete: bool = False, timeout: float = 3.0,
             description: str = "p2plab", ssdp_linger: float = 0.0) -> dict[str, Any]:
    """Discover the IGD, read its description, ask its external address, map ``internal_port``.

    Run it on a lab host (``lab.run_python``). Returns ``events`` (``found``, ``described``,
    ``external-ip``, then ``mapped`` or ``failed``, and ``deleted`` with ``delete=True``), ``state``,
    ``external`` ([ip, port] or None), ``exchanges`` (the SOAP requests and responses) and ``ssdp``
    (the raw SSDP answers). A failure's event carries ``stage``, ``result`` (e.g.
    ``ConflictInMappingEntry`` or ``TIMEOUT``), ``code`` (the UPnP error code) and ``message``.
    ``ssdp_linger``: seconds to keep listening for the router's later SSDP answers (``discover``'s ``linger``).
    """
    external_port = int(external_port or internal_port)
    out: dict[str, Any] = {"events": [], "state": "failed", "external": None, "exchanges": [], "ssdp": []}
    t0 = time.monotonic()

    def ev(kind: str, **data: Any) -> None:
        out["events"].append({"kind": kind, "time": round(time.monotonic() - t0, 4), **data})

    def fail(stage: str, result: str, message: str, code: int | None = None) -> dict[str, Any]:
        ev("failed", stage=stage, result=result, code=code, message=message, protocol="upnp")
        return out

    found = discover(client_ip, lan, gateway, timeout=timeout, linger=ssdp_linger)
    out["ssdp"] = [[src, data.decode(errors="replace")] for src, data in found["raw"]]
    out["events"] += [e for e in found["events"] if e["kind"] == "refused"]
    if found["found"] is None:
        failed = next(e for e in found["events"] if e["kind"] == "failed")
        return fail("discovery", "TIMEOUT", failed["message"])
    loc = found["found"].location
    ev("found", location=loc, st=found["found"].st, server=found["found"].server)
    try:
        client = IgdClient.from_location(loc, lan, gateway, client_ip, timeout=timeout)
    except (upnp.UpnpError, OSError) as exc:
        return fail("description", "BAD_DESCRIPTION", f"could not use the description at {loc}: {exc}")
    ev("described", service=client.service.service_type, control_url=client.service.control_url,
       device=client.service.device_type)
    ext_ip: str | None = None
    try:
        try:
            ext_ip = client.external_ip()
        finally:
            out["exchanges"] = client.exchanges
        ev("external-ip", external_ip=ext_ip)
        client.add_port_mapping(external_port, protocol, internal_port, client_ip, lease=lease,
                                description=description)
    except upnp.UpnpActionError as exc:
        msg = exc.message
        if exc.code == 501 and ext_ip == "":
            msg += f". {NO_EXTERNAL[0].upper()}{NO_EXTERNAL[1:]}"
        return fail(exc.action, exc.name, msg, exc.code)
    except (upnp.UpnpError, OSError) as exc:
        return fail("control", "BAD_RESPONSE", f"the router's SOAP answer was unusable: {exc}")
    if not ext_ip:
        return fail("AddPortMapping", "NO_EXTERNAL_ADDRESS",
                    f"the router accepted the mapping of port {external_port}, but {NO_EXTERNAL}")
    out["state"] = "mapped"
    out["external"] = [ext_ip, external_port]
    ev("mapped", external=[ext_ip, external_port], internal_port=internal_port, lifetime=lease, protocol="upnp",
       warning=external_warning(ext_ip))
    if delete:
        try:
            client.delete_port_mapping(external_port, protocol)
        except upnp.UpnpActionError as exc:
            return fail(exc.action, exc.name, exc.message, exc.code)
        out["state"] = "deleted"
        ev("deleted", internal_port=internal_port, protocol="upnp")
    return out



def transcript(client_ip: str, lan: str, gateway: str, calls: list[tuple[str, list[tuple[str, Any]]]], *,
               timeout: float = 3.0) -> dict[str, Any]:
    """Discover the IGD, fetch its description and make raw SOAP ``calls`` ([(action, args), ...]);
    return every byte exchanged (SSDP answers, the description, each call's request and response)
    without interpreting refusals - what a test or a learner reads to see the protocol itself."""
    found = discover(client_ip, lan, gateway, timeout=timeout)
    out: dict[str, Any] = {"ssdp": found["raw"], "location": None, "description": None, "calls": []}
    if found["found"] is None:
        return out
    loc = out["location"] = found["found"].location
    status, body = _http("GET", loc, lan, gateway, client_ip, timeout=timeout)
    out["description"] = body
    client = IgdClient(upnp.find_service(body, loc, lan, gateway), lan, gateway, client_ip, timeout)
    for action, args in calls:
        try:
            client.call(action, args)
        except (upnp.UpnpActionError, upnp.UpnpError):
            pass
    out["calls"] = client.exchanges
    return out
