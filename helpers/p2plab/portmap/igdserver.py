"""What a router answers to UPnP IGD, sans-I/O: p2plab's own Internet Gateway Device for the lab router.

``IgdResponder`` wraps the ``PortMapServer`` that already serves PCP and NAT-PMP, so the three
protocols share one mapping table (and its nftables rules, ``p2plab.portmap.lab.serve``):

* ``ssdp_answers(data)`` - the search responses to one ``M-SEARCH`` datagram (none if it is
  not a search for an IGD, its WANIPConnection:1 service, ``upnp:rootdevice`` or ``ssdp:all``);
* ``http(data, client_ip, now)`` - the HTTP response to one request: the device description
  for ``GET /rootDesc.xml``, a SOAP answer for ``POST /ctl/IPConn``.

Actions: GetExternalIPAddress, GetStatusInfo, GetConnectionTypeInfo, AddPortMapping,
DeletePortMapping, GetSpecificPortMappingEntry, GetGenericPortMappingEntry. Like miniupnpd in
secure mode, a client may only map ports to itself (else 718 ConflictInMappingEntry) and delete
its own mappings (else 606 Action not authorized); an external port another client holds gets 718,
a port outside the server's ``port_range`` 606, deleting a mapping that does not exist 714
NoSuchEntryInArray; a server built with ``refuse`` (behind carrier-grade NAT) answers 501 ActionFailed.
Lease 0 (permanent) becomes 604800 s, as WANIPConnection:2 asks of a gateway (then the server's
lifetime limits apply).
"""

from __future__ import annotations

import ipaddress
import re

from . import upnp
from .server import PortMapServer

UUID = "uuid:5d1b7e36-2d6c-4c5e-9c1a-70326c61620a"  # fixed: a lab has one router of this kind
DESC_PATH, CONTROL_PATH, CIF_PATH = "/rootDesc.xml", "/ctl/IPConn", "/ctl/CmnIfCfg"
# miniupnpc (upnpc) counts a device as an IGD only if it lists this service; its actions (link
# speed, byte counters) are not implemented here and answer 401 Invalid Action
CIF_1 = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1"
MAX_LEASE = 604800  # seconds: WANIPConnection:2's maximum (and what a 0 lease becomes)
SERVER = "Linux UPnP/1.1 p2plab-igd/1"
SEARCHABLE = ("ssdp:all", "upnp:rootdevice", upnp.IGD_1, upnp.WANIP_1, UUID)
PROTO = {"UDP": 17, "TCP": 6}


def description(base_url: str) -> bytes:
    """The device description: an InternetGatewayDevice:1 whose WANDevice has a WANCommonInterfaceConfig:1
    service and whose WANConnectionDevice has the WANIPConnection:1 service."""
    return (f'<?xml version="1.0"?>\r\n<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major>'
            f'<minor>0</minor></specVersion><URLBase>{base_url}</URLBase><device>'
            f'<deviceType>{upnp.IGD_1}</deviceType><friendlyName>p2plab lab router</friendlyName>'
            '<manufacturer>p2plab</manufacturer><modelName>p2plab IGD</modelName>'
            f'<UDN>{UUID}</UDN><deviceList><device>'
            '<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><friendlyName>WAN</friendlyName>'
            f'<manufacturer>p2plab</manufacturer><modelName>p2plab IGD</modelName><UDN>{UUID}-wan</UDN>'
            f'<serviceList><service><serviceType>{CIF_1}</serviceType>'
            '<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId><SCPDURL>/WANCfg.xml</SCPDURL>'
            f'<controlURL>{CIF_PATH}</controlURL><eventSubURL>/evt/CmnIfCfg</eventSubURL></service></serviceList>'
            '<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>'
            '<friendlyName>WAN connection</friendlyName><manufacturer>p2plab</manufacturer>'
            f'<modelName>p2plab IGD</modelName><UDN>{UUID}-wanconn</UDN><serviceList><service>'
            f'<serviceType>{upnp.WANIP_1}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>'
            f'<SCPDURL>/WANIPCn.xml</SCPDURL><controlURL>{CONTROL_PATH}</controlURL>'
            '<eventSubURL>/evt/IPConn</eventSubURL></service></serviceList></device></deviceList></device>'
            '</deviceList></device></root>\r\n').encode()


def _http_response(status: int, body: bytes, content_type: str = 'text/xml; charset="utf-8"') -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
              500: "Internal Server Error"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Server: {SERVER}\r\nConnection: close\r\n\r\n").encode() + body


def parse_http_request(data: bytes) -> tuple[str, str, dict[str, str], bytes] | None:
    """(method, path, headers, body) of one complete HTTP request; None while incomplete;
    ``UpnpError`` if it is not HTTP."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        if len(data) > 16384:
            raise upnp.UpnpError("an HTTP request head longer than 16 KiB")
        return None
    lines = head.decode("latin-1").split("\r\n")
    m = re.fullmatch(r"([A-Z]+) (\S+) HTTP/1\.[01]", lines[0])
    if not m:
        raise upnp.UpnpError(f"not an HTTP request line: {lines[0][:80]!r}")
    headers = upnp._headers(lines[1:])
    length = headers.get("CONTENT-LENGTH", "0")
    if not length.isdigit() or int(length) > upnp.MAX_BODY:
        raise upnp.UpnpError(f"bad Content-Length {length[:20]!r}")
    if len(rest) < int(length):
        return None
    return m.group(1), m.group(2), headers, rest[: int(length)]


class IgdResponder:
    """The UPnP IGD side of a lab router whose mappings live in ``server`` (a ``PortMapServer``)."""

    def __init__(self, server: PortMapServer, lan_ip: str, http_port: int) -> None:
        self.server, self.lan_ip, self.http_port = server, lan_ip, int(http_port)
        self.base_url = f"http://{lan_ip}:{self.http_port}/"
        self.log: list[str] = []

    # -- SSDP --------------------------------------------------------------------------------------
    def ssdp_answers(self, data: bytes) -> list[bytes]:
        """The unicast answers to one M-SEARCH (UDA section 1.3.3), or [] if it is not one for us."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return []
        lines = text.split("\r\n")
        if lines[0] != "M-SEARCH * HTTP/1.1":
            return []
        try:
            h = upnp._headers(lines[1:])
        except upnp.UpnpError:
            return []
        if h.get("MAN") != '"ssdp:discover"' or not h.get("MX", "").isdigit():
            return []  # UDA: a multicast search without MX (or without this MAN) is silently ignored
        st = h.get("ST", "")
        targets = [t for t in SEARCHABLE if t != "ssdp:all"] if st == "ssdp:all" else [st] if st in SEARCHABLE else []
        out = []
        for t in targets:
            usn = UUID if t == UUID else f"{UUID}::{t}"
            out.append((f"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: {t}\r\nUSN: {usn}\r\nEXT:\r\n"
                        f"SERVER: {SERVER}\r\nLOCATION: {self.base_url}{DESC_PATH.lstrip('/')}\r\n\r\n").encode())
        return out

    # -- HTTP --------------------------------------------------------------------------------------
    def http(self, data: bytes, client_ip: str, now: float) -> bytes:
        """The response to one complete HTTP request from ``client_ip`` (``parse_http_request``)."""
        try:
            req = parse_http_request(data)
        except upnp.UpnpError:
            return _http_response(400, b"")
        if req is None:
            return _http_response(400, b"")
        method, path, headers, body = req
        if path == DESC_PATH:
            return _http_response(200, description(self.base_url)) if method == "GET" else _http_response(405, b"")
        if path not in (CONTROL_PATH, CIF_PATH):
            return _http_response(404, b"")
        if method != "POST":
            return _http_response(405, b"")
        if path == CIF_PATH:
            return _http_response(*_fault(401, "Invalid Action"))
        status, out = self.soap(headers.get("SOAPACTION", ""), body, client_ip, now)
        return _http_response(status, out)

    def soap(self, soapaction: str, body: bytes, client_ip: str, now: float) -> tuple[int, bytes]:
        """Run one SOAP action; (HTTP status, SOAP body)."""
        m = re.fullmatch(r'"?([^"#]+)#([A-Za-z]+)"?', soapaction.strip())
        try:
            root = upnp._xml(body, "SOAP request")
            call = next(el for b in root if upnp._local(b.tag) == "Body" for el in b)
        except (upnp.UpnpError, StopIteration):
            return _fault(402, "Invalid Args")
        action = upnp._local(call.tag)
        if not m or m.group(2) != action or m.group(1) != upnp.WANIP_1:
            return _fault(401, "Invalid Action")
        args = {upnp._local(c.tag): (c.text or "").strip() for c in call}
        self.server.now = now
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            return _fault(401, "Invalid Action")
        try:
            out = handler(args, client_ip)
        except _Refuse as r:
            self.log.append(f"t={now:.3f} upnp {action} from {client_ip}: {r.code} {r.name}")
            return _fault(r.code, r.name)
        inner = "".join(f"<{k}>{upnp._esc(v)}</{k}>" for k, v in out)
        return 200, (f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="{upnp.SOAP_ENV}" s:encodingStyle='
                     f'"{upnp.SOAP_ENCODING}"><s:Body><u:{action}Response xmlns:u="{upnp.WANIP_1}">{inner}'
                     f'</u:{action}Response></s:Body></s:Envelope>\r\n').encode()

    # -- actions -----------------------------------------------------------------------------------
    def _do_GetExternalIPAddress(self, args: dict, client: str) -> list:
        return [("NewExternalIPAddress", self.server.external_ip)]

    def _do_GetStatusInfo(self, args: dict, client: str) -> list:
        return [("NewConnectionStatus", "Connected"), ("NewLastConnectionError", "ERROR_NONE"),
                ("NewUptime", int(self.server.now))]

    def _do_GetConnectionTypeInfo(self, args: dict, client: str) -> list:
        return [("NewConnectionType", "IP_Routed"), ("NewPossibleConnectionTypes", "IP_Routed")]

    def _entry(self, args: dict) -> tuple[int, int]:
        proto = PROTO.get(args.get("NewProtocol", "").upper())
        port = args.get("NewExternalPort", "")
        if proto is None or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise _Refuse(402, "Invalid Args")
        if int(port) == 0:
            raise _Refuse(716, "WildCardNotPermittedInExtPort")
        return proto, int(port)

    def _find(self, proto: int, eport: int):
        return next(((k, m) for k, m in self.server.mappings.items() if k[0] == proto and m.external[1] == eport),
                    (None, None))

    def _do_AddPortMapping(self, args: dict, client: str) -> list:
        proto, eport = self._entry(args)
        iclient, iport, lease = (args.get("NewInternalClient", ""), args.get("NewInternalPort", ""),
                                 args.get("NewLeaseDuration", "0"))
        try:
            ipaddress.IPv4Address(iclient)
        except ValueError:
            raise _Refuse(402, "Invalid Args") from None
        if not iport.isdigit() or not 1 <= int(iport) <= 65535 or not lease.isdigit():
            raise _Refuse(402, "Invalid Args")
        if args.get("NewRemoteHost", "") not in ("", "*"):
            raise _Refuse(726, "RemoteHostOnlySupportsWildcard")
        if self.server.refuse is not None:
            raise _Refuse(501, "ActionFailed")  # the router cannot forward (as miniupnpd behind a reserved address)
        if iclient != client:
            raise _Refuse(718, "ConflictInMappingEntry")  # secure mode: only for yourself
        lo, hi = self.server.port_range
        if not lo <= eport <= hi:
            raise _Refuse(606, "Action not authorized")  # outside the ports this router lets clients map
        key = (proto, iclient, int(iport))
        if not self.server._free(proto, eport, key):
            raise _Refuse(718, "ConflictInMappingEntry")
        lifetime = int(lease)
        lifetime = self.server._clamp(MAX_LEASE if lifetime == 0 or lifetime > MAX_LEASE else lifetime)
        old = next((k for k, m in self.server.mappings.items() if k == key and m.external[1] != eport), None)
        if old is not None:
            self.server._delete(old, "replaced by a UPnP mapping of another external port")
        self.server._grant(key, eport, lifetime, "upnp", b"")
        return []

    def _do_DeletePortMapping(self, args: dict, client: str) -> list:
        key, m = self._find(*self._entry(args))
        if m is None:
            raise _Refuse(714, "NoSuchEntryInArray")
        if m.internal[0] != client:
            raise _Refuse(606, "Action not authorized")
        self.server._delete(key, "deleted by its client (UPnP)")
        return []

    def _row(self, m) -> list:
        left = max(0, int(round(m.expires - self.server.now)))
        return [("NewInternalPort", m.internal[1]), ("NewInternalClient", m.internal[0]), ("NewEnabled", 1),
                ("NewPortMappingDescription", f"p2plab {m.protocol}"), ("NewLeaseDuration", left)]

    def _do_GetSpecificPortMappingEntry(self, args: dict, client: str) -> list:
        _, m = self._find(*self._entry(args))
        if m is None:
            raise _Refuse(714, "NoSuchEntryInArray")
        return self._row(m)

    def _do_GetGenericPortMappingEntry(self, args: dict, client: str) -> list:
        idx = args.get("NewPortMappingIndex", "")
        rows = sorted(self.server.mappings.values(), key=lambda m: (m.proto, m.external[1]))
        if not idx.isdigit() or int(idx) >= len(rows):
            raise _Refuse(713, "SpecifiedArrayIndexInvalid")
        m = rows[int(idx)]
        return [("NewRemoteHost", ""), ("NewExternalPort", m.external[1]),
                ("NewProtocol", {17: "UDP", 6: "TCP"}[m.proto]), *self._row(m)]


class _Refuse(Exception):
    def __init__(self, code: int, name: str) -> None:
        super().__init__(name)
        self.code, self.name = code, name


def _fault(code: int, name: str) -> tuple[int, bytes]:
    return 500, (f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="{upnp.SOAP_ENV}" s:encodingStyle='
                 f'"{upnp.SOAP_ENCODING}"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError'
                 f'</faultstring><detail><UPnPError xmlns="{upnp.CONTROL_NS}"><errorCode>{code}</errorCode>'
                 f'<errorDescription>{name}</errorDescription></UPnPError></detail></s:Fault></s:Body>'
                 '</s:Envelope>\r\n').encode()
