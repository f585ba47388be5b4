"""UPnP IGD (Internet Gateway Device) port mapping, sans-I/O: the bytes, nothing else.

UPnP is the oldest of the three ways to ask a home router for a port mapping, and the chattiest:

1. **Discovery (SSDP)** - the client multicasts an HTTP-like ``M-SEARCH * HTTP/1.1`` over UDP to
   239.255.255.250:1900 with ``ST:`` (search target) naming what it wants, e.g.
   ``urn:schemas-upnp-org:device:InternetGatewayDevice:1``; each matching device answers by unicast
   ``HTTP/1.1 200 OK`` with a ``LOCATION:`` header: the URL of its description
   (UPnP Device Architecture, section 1.3). ``msearch`` / ``parse_ssdp_response``; ``SsdpSearch``
   is the sans-I/O protocol that sends, retransmits and collects answers.
2. **Description** - an HTTP GET of that URL returns XML listing the devices and services; the
   client looks for a ``WANIPConnection`` service (``:2`` or ``:1``; ``WANPPPConnection:1`` on a
   PPP line) and its ``controlURL`` (``find_service``).
3. **Control (SOAP)** - an HTTP POST to the control URL with a ``SOAPACTION`` header and an XML
   envelope calls an action: ``GetExternalIPAddress``, ``AddPortMapping``, ``DeletePortMapping``
   (``soap_request`` / ``parse_soap_response``). A refusal is HTTP 500 with a SOAP fault whose
   ``UPnPError`` carries an ``errorCode`` (``ERRORS``, ``UpnpActionError``).

Unlike PCP and NAT-PMP nothing here is authenticated and the router is told *where to connect*
by whoever answers first - see ``check_location`` for why p2plab only follows URLs that point at
the gateway's own LAN address. ``p2plab.portmap.igd`` does the I/O (a UDP socket, ``http.client``).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from ..errors import P2PLabError
from ..sansio import Addr, DatagramProtocol

SSDP_GROUP: Addr = ("239.255.255.250", 1900)  # UDA section 1: the SSDP multicast address and port
SSDP_TTL = 2  # UDA 1.1: the IP TTL of multicast SSDP messages SHOULD default to 2

IGD_1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
IGD_2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
WANIP_1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
WANIP_2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
WANPPP_1 = "urn:schemas-upnp-org:service:WANPPPConnection:1"
SEARCH_TARGETS = (IGD_1, WANIP_1, WANIP_2)
SERVICE_TYPES = (WANIP_2, WANIP_1, WANPPP_1)  # in order of preference
PROTOCOLS = ("UDP", "TCP")
MAX_BODY = 256 * 1024  # bytes: a router's description is a few KiB; refuse to parse more

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENCODING = "http://schemas.xmlsoap.org/soap/encoding/"
CONTROL_NS = "urn:schemas-upnp-org:control-1-0"

# UPnP error codes a WANIPConnection action can return: 401-605 from the UPnP Device Architecture
# (its control section's table of error codes), 606 and 7xx from the WANIPConnection:1 and :2 service
# specifications (as miniupnpc's upnpcommands.h quotes them for AddPortMapping; the names as its
# upnperrors.c and miniupnpd's upnpsoap.c spell them). 724-727 are IGD v1 codes that WANIPConnection:2
# gateways must no longer send (clients must still understand them); 728, 729 and 732 are v2 additions.
ERRORS: dict[int, tuple[str, str]] = {
    401: ("Invalid Action", "no action by that name in this service"),
    402: ("Invalid Args", "an argument is missing, extra or of the wrong type"),
    501: ("Action Failed", "the router tried and failed (it gives no reason: look at its log)"),
    600: ("Argument Value Invalid", "an argument's value is not valid"),
    601: ("Argument Value Out of Range", "an argument's value is out of range"),
    602: ("Optional Action Not Implemented", "this router does not implement the action"),
    603: ("Out of Memory", "the router ran out of memory"),
    604: ("Human Intervention Required", "someone must act on the router itself"),
    605: ("String Argument Too Long", "a string argument is too long (e.g. the description)"),
    606: ("Action not authorized", "the action needs an authorization this client does not have (the "
                                   "router's rules do not let it map that port, or the mapping is another "
                                   "client's)"),
    713: ("SpecifiedArrayIndexInvalid", "no port mapping at that index"),
    714: ("NoSuchEntryInArray", "no port mapping matches the given external port and protocol"),
    715: ("WildCardNotPermittedInSrcIP", "the remote host cannot be a wildcard"),
    716: ("WildCardNotPermittedInExtPort", "the external port cannot be a wildcard (0)"),
    718: ("ConflictInMappingEntry", "that external port is already mapped to another client"),
    724: ("SamePortValuesRequired", "the router needs the internal and external ports to be equal (IGD v1)"),
    725: ("OnlyPermanentLeasesSupported", "the router only accepts lease duration 0 (permanent; IGD v1)"),
    726: ("RemoteHostOnlySupportsWildcard", "the remote host must be empty (any; IGD v1)"),
    727: ("ExternalPortOnlySupportsWildcard", "the external port must be a wildcard (IGD v1)"),
    728: ("NoPortMapsAvailable", "there are not enough free ports to complete the mapping"),
    729: ("ConflictWithOtherMechanisms", "the mapping conflicts with one made another way (PCP, NAT-PMP, "
                                         "the router's own forwarding rules)"),
    730: ("PortMappingNotFound", "no port mapping matches"),
    731: ("ReadOnly", "the value cannot be changed"),
    732: ("WildCardNotPermittedInIntPort", "the internal port cannot be a wildcard (0)"),
    733: ("InconsistentParameters", "the arguments contradict each other"),
}


class UpnpError(P2PLabError, ValueError):
    """Bytes or a URL that are not what a UPnP exchange needs (malformed, or unsafe to follow)."""


class UpnpActionError(P2PLabError):
    """The router refused a SOAP action: ``code`` (e.g. 718), ``name`` (``ConflictInMappingEntry``),
    ``description`` (what the router wrote), ``action``, and ``message`` in words."""

    def __init__(self, action: str, code: int | None, description: str = "", http_status: int = 500) -> None:
        self.action, self.code, self.description, self.http_status = action, code, description, http_status
        self.name, meaning = ERRORS.get(code, (description or "UnknownError",
                                               "an error code this client does not know")) if code else (
            f"HTTP {http_status}", "the router answered with an HTTP error and no UPnP error code")
        same = description.replace(" ", "").lower() == str(self.name).replace(" ", "").lower()
        said = f" (the router says {description!r})" if description and not same else ""
        self.message = f"the router refused {action}: UPnP error {code} {self.name} - {meaning}{said}" if code \
            else f"the router refused {action}: HTTP {http_status} without a UPnP error code{said}"
        super().__init__(self.message)


def error_name(code: int) -> str:
    """The name of a UPnP error code (``718`` -> ``ConflictInMappingEntry``), or ``UnknownError``."""
    return ERRORS.get(int(code), ("UnknownError", ""))[0]


# -- SSDP --------------------------------------------------------------------------------------------
def msearch(st: str = IGD_1, mx: int = 2) -> bytes:
    """An SSDP ``M-SEARCH`` request for search target ``st``; devices answer within ``mx`` seconds.

    UDA section 1.3.2: MX is required for a multicast search and should be 1 to 5 (a device
    treats a larger value as 5); ``MAN`` is the quoted string ``"ssdp:discover"``.
    """
    if not 1 <= int(mx) <= 5:
        raise UpnpError(f"MX must be 1 to 5 seconds (UPnP Device Architecture 1.3.2); got {mx}")
    if not st or any(c in st for c in "\r\n"):
        raise UpnpError(f"the search target must be one line of text, e.g. {IGD_1!r}; got {st!r}")
    return (f"M-SEARCH * HTTP/1.1\r\nHOST: {SSDP_GROUP[0]}:{SSDP_GROUP[1]}\r\nMAN: \"ssdp:discover\"\r\n"
            f"MX: {int(mx)}\r\nST: {st}\r\n\r\n").encode("ascii")


@dataclass(frozen=True)
class SsdpResponse:
    """A device's answer to ``M-SEARCH``: where its description is (``location``) and what it matched."""

    location: str
    st: str
    usn: str = ""
    server: str = ""
    max_age: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise UpnpError(f"malformed header line {line[:80]!r} (expected 'NAME: value')")
        out[name.strip().upper()] = value.strip()
    return out


def parse_ssdp_response(data: bytes) -> SsdpResponse:
    """Decode a search response (``HTTP/1.1 200 OK`` with ``LOCATION`` and ``ST``); ``UpnpError`` otherwise."""
    if len(data) > 8192:
        raise UpnpError(f"an SSDP response of {len(data)} bytes is too long (they fit one datagram of a few hundred)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UpnpError(f"an SSDP response is UTF-8 text; byte {exc.start} is not") from None
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    m = re.fullmatch(r"HTTP/1\.[01] (\d{3})(?: .*)?", lines[0])
    if not m:
        raise UpnpError(f"not an SSDP search response: the first line is {lines[0][:80]!r} "
                        "(expected 'HTTP/1.1 200 OK'; an 'M-SEARCH' or 'NOTIFY' is another client or an announcement)")
    if m.group(1) != "200":
        raise UpnpError(f"the SSDP response has status {m.group(1)}, not 200")
    h = _headers(lines[1:])
    for need in ("LOCATION", "ST"):
        if not h.get(need):
            raise UpnpError(f"the SSDP response has no {need} header (a search response must carry LOCATION and ST)")
    age = None
    cc = re.search(r"max-age\s*=\s*(\d+)", h.get("CACHE-CONTROL", ""))
    if cc:
        age = int(cc.group(1))
    return SsdpResponse(h["LOCATION"], h["ST"], h.get("USN", ""), h.get("SERVER", ""), age, h)


def check_location(url: str, lan: str, gateway: str | None = None) -> tuple[str, int, str]:
    """Split a description or control URL into (host, port, path) - only if it is safe to follow.

    SSDP is unauthenticated multicast: any device on the LAN (a compromised camera, malware on a
    laptop) can answer an ``M-SEARCH`` and put any URL in ``LOCATION``, and the description it then
    serves chooses the control URL the client will POST to. Following such URLs blindly lets a
    stranger make this client fetch and send data to any host - inside the network or on the
    internet - and feed it XML of the stranger's choosing. Only the router we are behind can map a
    port on its NAT, so p2plab follows a URL only if it is plain ``http://`` to an IPv4 address
    inside the router's LAN subnet ``lan`` (and equal to ``gateway``, the router's LAN address,
    when given). Anything else raises ``UpnpError`` saying why.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 80
    except ValueError as exc:
        raise UpnpError(f"not a usable URL {url[:120]!r}: {exc}") from None
    if parts.scheme != "http":
        raise UpnpError(f"refusing UPnP URL {url[:120]!r}: a router's description and control URLs are plain "
                        "'http://' on its LAN address")
    try:
        host = ipaddress.IPv4Address(parts.hostname or "")
    except ValueError:
        raise UpnpError(f"refusing UPnP URL {url[:120]!r}: the host must be an IPv4 address on the LAN, "
                        "not a name (a name could resolve anywhere)") from None
    net = ipaddress.IPv4Network(lan, strict=False)
    if host not in net:
        raise UpnpError(f"refusing UPnP URL {url[:120]!r}: {host} is outside the router's LAN {net}; "
                        "an SSDP answer pointing elsewhere is another device's, or an attack")
    if gateway is not None and str(host) != gateway:
        raise UpnpError(f"refusing UPnP URL {url[:120]!r}: {host} is on the LAN but is not the router "
                        f"({gateway}); only the router can map its own ports")
    return str(host), port, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class SsdpSearch(DatagramProtocol):
    """Multicast ``M-SEARCH`` for an IGD and collect answers, sans-I/O.

    Sends one request per search target in ``targets`` to 239.255.255.250:1900 and repeats them
    every ``interval`` seconds (UDP is lossy: a lost search or answer is tried again) until an
    acceptable answer arrives or ``timeout`` passes. An answer is acceptable when it comes from
    inside ``lan`` and its LOCATION passes ``check_location``. Events:

    * ``found``   - ``location``, ``st``, ``server``, ``source`` (who answered), ``after`` (seconds);
    * ``refused`` - an answer whose LOCATION is unsafe (``reason``); the search goes on;
    * ``failed``  - nobody acceptable answered: ``message`` says so.
    """

    def __init__(self, lan: str, gateway: str | None = None, *, targets: tuple[str, ...] = SEARCH_TARGETS,
                 mx: int = 1, interval: float = 1.0, timeout: float = 3.0) -> None:
        super().__init__()
        ipaddress.IPv4Network(lan, strict=False)
        self.lan, self.gateway = lan, gateway
        self.requests = [msearch(st, mx) for st in targets]
        self.interval, self.timeout = float(interval), float(timeout)
        self.state = "new"
        self.found: SsdpResponse | None = None
        self.answers: list[tuple[Addr, SsdpResponse]] = []
        self.sent = 0
        self._t0 = 0.0

    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        self._t0 = now
        self.state = "searching"
        self._send()

    def _send(self) -> None:
        for data in self.requests:
            self.send(data, SSDP_GROUP)
            self.sent += 1
        nxt = min(self.now + self.interval, self._t0 + self.timeout)
        self.set_timer(nxt, "search")

    def on_timer(self, name: str, now: float) -> None:
        if name != "search" or self.state != "searching":
            return
        if now - self._t0 >= self.timeout - 1e-9:
            self.state = "failed"
            heard = (f"; {len(self.answers)} answer(s) were refused (see the 'refused' events)"
                     if self.answers else "")
            self.emit("failed", sent=self.sent, message=(
                f"no UPnP Internet Gateway Device answered {self.sent} M-SEARCH requests in {self.timeout:g} s"
                f"{heard}: this router does not run UPnP IGD (or it is turned off)"))
            return
        self._send()

    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        if self.state != "searching":
            return
        try:
            resp = parse_ssdp_response(data)
        except UpnpError:
            return  # not a search response (another client's M-SEARCH, a NOTIFY, garbage): ignore
        self.answers.append(((addr[0], int(addr[1])), resp))
        try:
            if ipaddress.IPv4Address(addr[0]) not in ipaddress.IPv4Network(self.lan, strict=False):
                raise UpnpError(f"the answer came from {addr[0]}, outside the LAN {self.lan}")
            check_location(resp.location, self.lan, self.gateway)
        except (UpnpError, ValueError) as exc:
            self.emit("refused", source=list(addr), location=resp.location, reason=str(exc))
            return
        self.state = "found"
        self.found = resp
        self.cancel_timers("search")
        self.emit("found", location=resp.location, st=resp.st, server=resp.server, source=list(addr),
                  after=round(now - self._t0, 6))


# -- description -------------------------------------------------------------------------------------
def _xml(data: bytes, what: str) -> ET.Element:
    if len(data) > MAX_BODY:
        raise UpnpError(f"the {what} is {len(data)} bytes; a router's is a few KiB (limit {MAX_BODY})")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        # UPnP XML has no DTD; refusing one rules out entity-expansion attacks ("billion laughs")
        raise UpnpError(f"the {what} contains a DOCTYPE/ENTITY declaration, which UPnP never uses: refusing it")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise UpnpError(f"the {what} is not well-formed XML: {exc}") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(el: ET.Element, name: str) -> str:
    for c in el:
        if _local(c.tag) == name:
            return (c.text or "").strip()
    return ""


@dataclass(frozen=True)
class Service:
    """The WAN connection service found in a description: what to POST to (``control_url``) and the
    ``service_type`` to name in ``SOAPACTION``; ``device_type``/``friendly_name`` of the root device."""

    service_type: str
    control_url: str
    device_type: str = ""
    friendly_name: str = ""
    services: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        """1 or 2: the service's version (the number after the last colon)."""
        return int(self.service_type.rsplit(":", 1)[1])


def find_service(description: bytes, location: str, lan: str | None = None, gateway: str | None = None) -> Service:
    """Find the WANIPConnection (``:2`` before ``:1``; else WANPPPConnection:1) service in a device
    description and resolve its control URL against the description's ``URLBase`` (UPnP 1.0) or, without one,
    the ``location`` it was fetched from.
    With ``lan`` the control URL must pass ``check_location`` too."""
    root = _xml(description, "device description")
    if _local(root.tag) != "root":
        raise UpnpError(f"a UPnP device description's top element is <root>, not <{_local(root.tag)}>")
    base = location
    for c in root:
        if _local(c.tag) == "URLBase" and (c.text or "").strip():
            base = c.text.strip()
    device = next((c for c in root if _local(c.tag) == "device"), None)
    if device is None:
        raise UpnpError("the device description has no <device> element")
    found: dict[str, str] = {}
    listed: list[str] = []
    for el in root.iter():
        if _local(el.tag) != "service":
            continue
        st, ctl = _child_text(el, "serviceType"), _child_text(el, "controlURL")
        listed.append(st)
        if st in SERVICE_TYPES and ctl and st not in found:
            found[st] = ctl
    for st in SERVICE_TYPES:
        if st in found:
            url = urllib.parse.urljoin(base, found[st])
            if lan is not None:
                check_location(url, lan, gateway)
            return Service(st, url, _child_text(device, "deviceType"), _child_text(device, "friendlyName"),
                           tuple(listed))
    raise UpnpError("the device description lists no WANIPConnection or WANPPPConnection service (it has "
                    f"{', '.join(listed) or 'no services'}): this device is not an Internet gateway")


# -- SOAP control ------------------------------------------------------------------------------------
def _esc(value: str) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def soap_request(service_type: str, action: str, args: list[tuple[str, Any]] | None = None) -> tuple[dict[str, str], bytes]:
    """The headers and body of a SOAP call of ``action`` (UDA section 3.2.1): POST them to the control URL.

    The ``SOAPACTION`` header is the quoted ``service type#action``; the body is a SOAP 1.1
    envelope with one element per argument, in the order the service description lists them.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", action):
        raise UpnpError(f"a UPnP action name is a word like 'AddPortMapping'; got {action!r}")
    inner = "".join(f"<{k}>{_esc(v)}</{k}>" for k, v in (args or []))
    body = (f'<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="{SOAP_ENV}" s:encodingStyle="{SOAP_ENCODING}">'
            f'<s:Body><u:{action} xmlns:u="{service_type}">{inner}</u:{action}></s:Body></s:Envelope>\r\n')
    data = body.encode("utf-8")
    headers = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": f'"{service_type}#{action}"',
               "Content-Length": str(len(data))}
    return headers, data


def add_port_mapping_args(external_port: int, protocol: str, internal_port: int, internal_client: str, *,
                          description: str = "p2plab", lease: int = 3600, remote_host: str = "",
                          enabled: bool = True) -> list[tuple[str, Any]]:
    """The eight ``AddPortMapping`` arguments, in the order WANIPConnection defines them.

    ``remote_host=""`` means any remote host; ``lease`` is seconds (0 = permanent, which
    WANIPConnection:2 routers replace by their maximum, 604800 s).
    """
    proto = check_protocol(protocol)
    for name, port in (("external_port", external_port), ("internal_port", internal_port)):
        if not 1 <= int(port) <= 65535:
            raise UpnpError(f"{name} must be 1-65535; got {port}")
    ipaddress.IPv4Address(internal_client)
    if not 0 <= int(lease) <= 0xFFFFFFFF:
        raise UpnpError(f"lease must be 0 (permanent) or a number of seconds; got {lease}")
    return [("NewRemoteHost", remote_host), ("NewExternalPort", int(external_port)), ("NewProtocol", proto),
            ("NewInternalPort", int(internal_port)), ("NewInternalClient", internal_client),
            ("NewEnabled", 1 if enabled else 0), ("NewPortMappingDescription", description),
            ("NewLeaseDuration", int(lease))]


def delete_port_mapping_args(external_port: int, protocol: str, remote_host: str = "") -> list[tuple[str, Any]]:
    """The three ``DeletePortMapping`` arguments."""
    if not 1 <= int(external_port) <= 65535:
        raise UpnpError(f"external_port must be 1-65535; got {external_port}")
    return [("NewRemoteHost", remote_host), ("NewExternalPort", int(external_port)),
            ("NewProtocol", check_protocol(protocol))]


def check_protocol(protocol: str | int) -> str:
    """'UDP' or 'TCP' (also 17 / 6, any case); a clear error otherwise."""
    p = {17: "UDP", 6: "TCP"}.get(protocol, str(protocol).strip().upper()) if isinstance(protocol, int) \
        else str(protocol).strip().upper()
    if p not in PROTOCOLS:
        raise UpnpError(f"UPnP maps 'UDP' or 'TCP' ports; got {protocol!r}")
    return p


def parse_soap_response(status: int, body: bytes, action: str) -> dict[str, str]:
    """The output arguments of a successful ``action`` (``{"NewExternalIPAddress": "..."}``), or
    ``UpnpActionError`` with the UPnP error code of a fault (UDA section 3.2.2: HTTP 500 and a
    ``<s:Fault>`` whose ``<detail><UPnPError>`` holds ``errorCode`` and ``errorDescription``)."""
    if status != 200:
        code, desc = None, ""
        if body.strip():
            try:
                root = _xml(body, f"{action} error response")
            except UpnpError:
                root = None
            if root is not None:
                for el in root.iter():
                    if _local(el.tag) == "UPnPError":
                        raw = _child_text(el, "errorCode")
                        desc = _child_text(el, "errorDescription")
                        code = int(raw) if raw.isdigit() and len(raw) <= 6 else None
        raise UpnpActionError(action, code, desc, status)
    root = _xml(body, f"{action} response")
    want = f"{action}Response"
    for el in root.iter():
        if _local(el.tag) == want:
            return {_local(c.tag): (c.text or "").strip() for c in el}
    raise UpnpError(f"the {action} response has no <{want}> element in its SOAP body")

