"""The UPnP IGD codec (p2plab.portmap.upnp) against bytes Debian's miniupnpd 2.3.1 sent in the lab
(tests/data/miniupnpd-2.3.1, captured by tools/capture_upnp_fixtures.py; test_upnp_netns.py checks a
fresh miniupnpd still sends them), and the sans-I/O SSDP search."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from p2plab.errors import ConfigurationError
from p2plab.portmap import upnp

DATA = Path(__file__).parent / "data" / "miniupnpd-2.3.1"
LAN, GW = "192.168.1.0/24", "192.168.1.1"


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_msearch_is_the_ssdp_request_the_spec_describes():
    assert upnp.msearch(upnp.IGD_1, 2) == (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
                                           b"MAN: \"ssdp:discover\"\r\nMX: 2\r\n"
                                           b"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n")
    with pytest.raises(upnp.UpnpError, match="MX must be 1 to 5"):
        upnp.msearch(upnp.IGD_1, 9)
    with pytest.raises(upnp.UpnpError, match="one line"):
        upnp.msearch("x\r\nEVIL: 1")


def test_parse_miniupnpd_search_response():
    r = upnp.parse_ssdp_response(raw("ssdp-response.txt"))
    assert r.location == "http://192.168.1.1:5555/rootDesc.xml"
    assert r.st == upnp.IGD_1 and r.max_age == 120 and "MiniUPnPd/2.3.1" in r.server
    assert r.usn.startswith("uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d::")


@pytest.mark.parametrize("data, match", [
    (upnp.msearch(), "not an SSDP search response"),
    (b"NOTIFY * HTTP/1.1\r\nLOCATION: http://192.168.1.1/\r\n\r\n", "not an SSDP search response"),
    (b"HTTP/1.1 404 Not Found\r\n\r\n", "status 404"),
    (b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n", "no LOCATION"),
    (b"HTTP/1.1 200 OK\r\nLOCATION http://x\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\n\xff\r\n\r\n", "UTF-8"),
])
def test_bad_search_responses_say_what_is_wrong(data, match):
    with pytest.raises(upnp.UpnpError, match=match):
        upnp.parse_ssdp_response(data)


def test_check_location_follows_only_the_gateway():
    assert upnp.check_location("http://192.168.1.1:5555/rootDesc.xml", LAN, GW) == ("192.168.1.1", 5555, "/rootDesc.xml")
    assert upnp.check_location("http://192.168.1.1/a?b=1", LAN) == ("192.168.1.1", 80, "/a?b=1")
    for url, match in [("http://203.0.113.66:80/desc.xml", "outside the router's LAN"),
                       ("http://192.168.1.77:5555/rootDesc.xml", "not the router"),
                       ("https://192.168.1.1/rootDesc.xml", "plain 'http://'"),
                       ("file:///etc/passwd", "plain 'http://'"),
                       ("http://router.example/rootDesc.xml", "not a name"),
                       ("http://192.168.1.1:99999/", "not a usable URL")]:
        with pytest.raises(upnp.UpnpError, match=match):
            upnp.check_location(url, LAN, GW)


def test_find_service_in_miniupnpd_description():
    s = upnp.find_service(raw("rootDesc.xml"), "http://192.168.1.1:5555/rootDesc.xml", LAN, GW)
    assert s.service_type == upnp.WANIP_2 and s.version == 2
    assert s.control_url == "http://192.168.1.1:5555/ctl/IPConn"
    assert s.device_type == upnp.IGD_2 and s.friendly_name == "Debian router"
    assert "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1" in s.services


def test_find_service_prefers_v2_falls_back_to_v1_and_honours_urlbase():
    v1 = raw("rootDesc.xml").replace(b"WANIPConnection:2", b"WANIPConnection:1")
    assert upnp.find_service(v1, "http://192.168.1.1:5555/rootDesc.xml").service_type == upnp.WANIP_1
    based = v1.replace(b"<specVersion>", b"<URLBase>http://192.168.1.1:6000/</URLBase><specVersion>", 1)
    assert upnp.find_service(based, "http://192.168.1.1:5555/x").control_url == "http://192.168.1.1:6000/ctl/IPConn"


def test_find_service_refuses_unsafe_or_useless_descriptions():
    desc = raw("rootDesc.xml")
    away = desc.replace(b"<controlURL>/ctl/IPConn</controlURL>", b"<controlURL>http://198.51.100.9/c</controlURL>")
    with pytest.raises(upnp.UpnpError, match="outside the router's LAN"):
        upnp.find_service(away, "http://192.168.1.1:5555/rootDesc.xml", LAN, GW)
    with pytest.raises(upnp.UpnpError, match="DOCTYPE"):
        upnp.find_service(b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><root>&a;</root>', "http://192.168.1.1/")
    with pytest.raises(upnp.UpnpError, match="not an Internet gateway"):
        upnp.find_service(desc.replace(b"WANIPConnection", b"MediaServer"), "http://192.168.1.1:5555/")
    with pytest.raises(upnp.UpnpError, match="not well-formed"):
        upnp.find_service(desc[:500], "http://192.168.1.1:5555/")


def test_add_port_mapping_request_has_the_eight_arguments_in_order():
    headers, body = upnp.soap_request(upnp.WANIP_2, "AddPortMapping",
                                      upnp.add_port_mapping_args(5000, "udp", 5000, "192.168.1.10"))
    assert headers["SOAPAction"] == '"urn:schemas-upnp-org:service:WANIPConnection:2#AddPortMapping"'
    assert int(headers["Content-Length"]) == len(body)
    assert body == raw("AddPortMapping-request.xml")  # what miniupnpd accepted (AddPortMapping-ok.xml)
    call = ET.fromstring(body).find(f"{{{upnp.SOAP_ENV}}}Body")[0]
    assert call.tag == f"{{{upnp.WANIP_2}}}AddPortMapping"
    assert [(c.tag, c.text or "") for c in call] == [
        ("NewRemoteHost", ""), ("NewExternalPort", "5000"), ("NewProtocol", "UDP"), ("NewInternalPort", "5000"),
        ("NewInternalClient", "192.168.1.10"), ("NewEnabled", "1"), ("NewPortMappingDescription", "p2plab"),
        ("NewLeaseDuration", "3600")]
    with pytest.raises(upnp.UpnpError, match="'UDP' or 'TCP'"):
        upnp.add_port_mapping_args(5000, "sctp", 5000, "192.168.1.10")
    with pytest.raises(upnp.UpnpError, match="1-65535"):
        upnp.add_port_mapping_args(0, "UDP", 5000, "192.168.1.10")


def test_successful_responses_from_miniupnpd():
    assert upnp.parse_soap_response(200, raw("GetExternalIPAddress.xml"), "GetExternalIPAddress") == {
        "NewExternalIPAddress": "203.0.113.10"}
    # reserved WAN address: miniupnpd answers an empty external address
    assert upnp.parse_soap_response(200, raw("GetExternalIPAddress-reserved.xml"), "GetExternalIPAddress") == {
        "NewExternalIPAddress": ""}
    assert upnp.parse_soap_response(200, raw("AddPortMapping-ok.xml"), "AddPortMapping") == {}
    assert upnp.parse_soap_response(200, raw("DeletePortMapping-ok.xml"), "DeletePortMapping") == {}
    # miniupnpd 2.3.1 also answers success when asked to delete a mapping that was never made
    assert upnp.parse_soap_response(200, raw("DeletePortMapping-unknown.xml"), "DeletePortMapping") == {}
    with pytest.raises(upnp.UpnpError, match="no <AddPortMappingResponse>"):
        upnp.parse_soap_response(200, raw("GetExternalIPAddress.xml"), "AddPortMapping")


@pytest.mark.parametrize("name, code, words", [
    ("AddPortMapping-501.xml", 501, "Action Failed"),
    ("AddPortMapping-606.xml", 606, "Action not authorized"),
    ("AddPortMapping-718.xml", 718, "ConflictInMappingEntry"),
])
def test_miniupnpd_refusals_decode_into_clear_messages(name, code, words):
    with pytest.raises(upnp.UpnpActionError) as info:
        upnp.parse_soap_response(500, raw(name), "AddPortMapping")
    err = info.value
    assert err.code == code and err.name == words and err.action == "AddPortMapping"
    assert f"UPnP error {code} {words}" in err.message and "refused AddPortMapping" in err.message


def test_unknown_codes_and_bare_http_errors():
    fault = raw("AddPortMapping-718.xml").replace(b"718", b"899").replace(b"ConflictInMappingEntry", b"VendorThing")
    with pytest.raises(upnp.UpnpActionError) as info:
        upnp.parse_soap_response(500, fault, "AddPortMapping")
    assert info.value.code == 899 and info.value.name == "VendorThing" and "does not know" in info.value.message
    with pytest.raises(upnp.UpnpActionError) as info:
        upnp.parse_soap_response(404, b"", "AddPortMapping")
    assert info.value.code is None and "HTTP 404" in info.value.message


def test_error_table_matches_the_spec_names():
    assert {c: upnp.error_name(c) for c in (402, 501, 606, 714, 718, 724, 725, 728, 729)} == {
        402: "Invalid Args", 501: "Action Failed", 606: "Action not authorized", 714: "NoSuchEntryInArray",
        718: "ConflictInMappingEntry", 724: "SamePortValuesRequired", 725: "OnlyPermanentLeasesSupported",
        728: "NoPortMapsAvailable", 729: "ConflictWithOtherMechanisms"}


def _run(search: upnp.SsdpSearch, feed: list[tuple[float, bytes, tuple[str, int]]], until: float):
    search.start(0.0, ("192.168.1.10", 40000))
    sent = list(search.datagrams_to_send())
    for t, data, addr in feed:
        while (nt := search.next_timer()) is not None and nt <= t:
            search.handle_timer(nt)
            sent += search.datagrams_to_send()
        search.datagram_received(data, addr, t)
    while (nt := search.next_timer()) is not None and nt <= until:
        search.handle_timer(nt)
        sent += search.datagrams_to_send()
    return sent, search.events()


def test_ssdp_search_finds_the_gateway():
    search = upnp.SsdpSearch(LAN, GW, interval=1.0, timeout=3.0)
    sent, events = _run(search, [(0.3, raw("ssdp-response.txt"), (GW, 1900))], 5.0)
    assert [a for _, a in sent] == [upnp.SSDP_GROUP] * 3  # one M-SEARCH per target, answered before a repeat
    assert {d.split(b"\r\nST: ")[1].split(b"\r\n")[0].decode() for d, _ in sent} == set(upnp.SEARCH_TARGETS)
    assert [e.kind for e in events] == ["found"]
    assert events[0].location == "http://192.168.1.1:5555/rootDesc.xml" and events[0].after == 0.3


def test_ssdp_search_refuses_a_rogue_answer_and_repeats_then_gives_up():
    rogue = raw("ssdp-response.txt").replace(b"http://192.168.1.1:5555", b"http://198.51.100.9:80")
    other_host = raw("ssdp-response.txt").replace(b"http://192.168.1.1:5555", b"http://192.168.1.50:80")
    search = upnp.SsdpSearch(LAN, GW, interval=1.0, timeout=3.0)
    sent, events = _run(search, [(0.1, rogue, (GW, 1900)), (0.2, other_host, ("192.168.1.50", 1900)),
                                 (0.3, raw("ssdp-response.txt"), ("198.51.100.9", 1900)),
                                 (0.4, b"garbage", (GW, 1900))], 5.0)
    assert len(sent) == 9  # at 0, 1 and 2 s
    kinds = [e.kind for e in events]
    assert kinds == ["refused", "refused", "refused", "failed"]
    assert "outside the router's LAN" in events[0].reason and "not the router" in events[1].reason
    assert "outside the LAN" in events[2].reason
    assert "3 answer(s) were refused" in events[3].message and "does not run UPnP IGD" in events[3].message


def test_discover_refuses_to_multicast_outside_a_lab():
    from conftest import need

    need("ip")
    from p2plab.portmap import igd

    with pytest.raises(ConfigurationError, match="not on a p2plab lab interface"):
        igd.discover("127.0.0.1", "127.0.0.0/8")
    with pytest.raises(ConfigurationError, match="no interface here has address"):
        igd.discover("192.0.2.254", "192.0.2.0/24")


def test_sim_punch_says_upnp_needs_the_real_lab():
    from p2plab.punch import run_punch

    with pytest.raises(ConfigurationError, match="not in the simulator.*--world netns"):
        run_punch("symmetric", "symmetric", portmap="upnp")
