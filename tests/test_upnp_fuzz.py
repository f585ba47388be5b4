"""Fuzzing the UPnP IGD parsers and the sans-I/O SSDP search: junk raises UpnpError (or, for a
SOAP fault, UpnpActionError) only; the search never raises and never follows a URL off the
gateway; any argument text survives the trip through a SOAP request."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2plab.portmap import upnp

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATA = Path(__file__).parent / "data" / "miniupnpd-2.3.1"
SSDP = (DATA / "ssdp-response.txt").read_bytes()
XML = [(DATA / n).read_bytes() for n in ("rootDesc.xml", "GetExternalIPAddress.xml", "AddPortMapping-718.xml",
                                         "AddPortMapping-ok.xml")]
LAN, GW = "192.168.1.0/24", "192.168.1.1"


def mutated(templates: list[bytes]) -> st.SearchStrategy[bytes]:
    def mutate(args) -> bytes:
        template, edits, cut = args
        data = bytearray(template)
        for pos, val in edits:
            data[pos % len(data)] = val
        return bytes(data[: cut if cut is not None else len(data)])

    return st.tuples(st.sampled_from(templates), st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)),
                                                          max_size=6),
                     st.one_of(st.none(), st.integers(0, 4000))).map(mutate)


@SETTINGS
@given(st.one_of(st.binary(max_size=600), mutated([SSDP])))
def test_ssdp_parser_raises_only_upnp_error(data: bytes) -> None:
    try:
        r = upnp.parse_ssdp_response(data)
    except upnp.UpnpError as exc:
        assert str(exc)
    else:
        assert r.location and r.st


@SETTINGS
@given(st.one_of(st.binary(max_size=600), mutated(XML)), st.integers(100, 599))
def test_xml_parsers_raise_only_their_errors(data: bytes, status: int) -> None:
    try:
        s = upnp.find_service(data, "http://192.168.1.1:5555/rootDesc.xml", LAN, GW)
    except upnp.UpnpError as exc:
        assert str(exc)
    else:
        assert upnp.check_location(s.control_url, LAN, GW)[0] == GW
    for action in ("GetExternalIPAddress", "AddPortMapping"):
        try:
            out = upnp.parse_soap_response(status, data, action)
        except upnp.UpnpActionError as exc:
            assert status != 200 and exc.message
        except upnp.UpnpError as exc:
            assert str(exc)
        else:
            assert status == 200 and isinstance(out, dict)


@SETTINGS
@given(st.lists(st.tuples(st.one_of(st.binary(max_size=300), mutated([SSDP])),
                          st.sampled_from([GW, "192.168.1.50", "198.51.100.9"])), max_size=6))
def test_search_never_raises_and_only_accepts_the_gateway(answers) -> None:
    s = upnp.SsdpSearch(LAN, GW, timeout=2.0)
    s.start(0.0)
    for i, (data, src) in enumerate(answers):
        s.datagram_received(data, (src, 1900), 0.1 * i)
    s.handle_timer(5.0)
    s.handle_timer(5.0)
    kinds = [e.kind for e in s.events()]
    if s.found is not None:
        assert kinds[-1] == "found" and upnp.check_location(s.found.location, LAN, GW)[0] == GW
    else:
        assert kinds[-1] == "failed"


@SETTINGS
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60))
def test_argument_text_survives_a_soap_request(text: str) -> None:
    _, body = upnp.soap_request(upnp.WANIP_1, "AddPortMapping",
                                upnp.add_port_mapping_args(5000, "UDP", 5000, "192.168.1.10", description=text))
    call = ET.fromstring(body).find(f"{{{upnp.SOAP_ENV}}}Body")[0]
    assert (call.find("NewPortMappingDescription").text or "") == text


@SETTINGS
@given(st.one_of(st.binary(max_size=600), mutated([upnp.msearch(), upnp.msearch("ssdp:all")])),
       st.one_of(st.binary(max_size=600), mutated([
           b"GET /rootDesc.xml HTTP/1.1\r\n\r\n",
           b"POST /ctl/IPConn HTTP/1.1\r\nSOAPACTION: \"" + upnp.WANIP_1.encode() + b"#AddPortMapping\"\r\n"
           b"Content-Length: " + str(len(upnp.soap_request(upnp.WANIP_1, "AddPortMapping", upnp.add_port_mapping_args(
               5000, "UDP", 5000, "192.168.1.10"))[1])).encode() + b"\r\n\r\n"
           + upnp.soap_request(upnp.WANIP_1, "AddPortMapping",
                               upnp.add_port_mapping_args(5000, "UDP", 5000, "192.168.1.10"))[1]])))
def test_igd_responder_never_raises(search: bytes, request: bytes) -> None:
    from p2plab.portmap import PortMapServer
    from p2plab.portmap.igdserver import IgdResponder

    srv = PortMapServer("203.0.113.10", LAN, min_lifetime=1)
    srv.start(0.0)
    igd = IgdResponder(srv, GW, 5000)
    for answer in igd.ssdp_answers(search):
        assert upnp.parse_ssdp_response(answer).location == "http://192.168.1.1:5000/rootDesc.xml"
    resp = igd.http(request, "192.168.1.10", 1.0)
    assert resp.startswith(b"HTTP/1.1 ") and int(resp.split()[1]) in (200, 400, 404, 405, 500)
