"""p2plab's own UPnP IGD responder (p2plab.portmap.igdserver), sans-I/O: SSDP answers, the
description, and SOAP actions on a PortMapServer's table - read with p2plab's client codec.
Against a client no one here wrote (Debian's upnpc): test_upnp_netns.py."""

from __future__ import annotations

import pytest

from p2plab.portmap import PortMapServer, upnp
from p2plab.portmap.igdserver import IgdResponder, parse_http_request

LAN, GW, ALICE = "192.168.1.0/24", "192.168.1.1", "192.168.1.10"


def responder(**kw) -> IgdResponder:
    srv = PortMapServer("203.0.113.10", LAN, min_lifetime=1, **kw)
    srv.start(0.0, (GW, 5351))
    return IgdResponder(srv, GW, 5000)


def call(igd: IgdResponder, action: str, args=None, client: str = ALICE, now: float = 1.0):
    headers, body = upnp.soap_request(upnp.WANIP_1, action, args)
    req = (f"POST /ctl/IPConn HTTP/1.1\r\nHOST: {GW}:5000\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
           + "\r\n").encode() + body
    resp = igd.http(req, client, now)
    head, _, data = resp.partition(b"\r\n\r\n")
    return upnp.parse_soap_response(int(head.split()[1]), data, action)


def test_ssdp_answers_only_searches_for_what_it_is():
    igd = responder()
    [answer] = igd.ssdp_answers(upnp.msearch(upnp.IGD_1))
    r = upnp.parse_ssdp_response(answer)
    assert r.location == "http://192.168.1.1:5000/rootDesc.xml" and r.st == upnp.IGD_1
    assert len(igd.ssdp_answers(upnp.msearch("ssdp:all"))) == 4
    assert igd.ssdp_answers(upnp.msearch("urn:schemas-upnp-org:device:MediaServer:1")) == []
    assert igd.ssdp_answers(upnp.msearch().replace(b"MX: 2\r\n", b"")) == []  # no MX: ignored (UDA 1.3.2)
    assert igd.ssdp_answers(b"\xff\xfe") == [] and igd.ssdp_answers(upnp.parse_ssdp_response.__doc__.encode()) == []


def test_description_is_what_a_client_finds():
    igd = responder()
    resp = igd.http(b"GET /rootDesc.xml HTTP/1.1\r\nHOST: 192.168.1.1:5000\r\n\r\n", ALICE, 0.0)
    assert resp.startswith(b"HTTP/1.1 200 OK\r\n")
    s = upnp.find_service(resp.partition(b"\r\n\r\n")[2], "http://192.168.1.1:5000/rootDesc.xml", LAN, GW)
    assert s.service_type == upnp.WANIP_1 and s.control_url == "http://192.168.1.1:5000/ctl/IPConn"
    assert "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1" in s.services
    assert igd.http(b"GET /nope HTTP/1.1\r\n\r\n", ALICE, 0.0).startswith(b"HTTP/1.1 404")
    assert igd.http(b"garbage\r\n\r\n", ALICE, 0.0).startswith(b"HTTP/1.1 400")


def test_actions_change_the_shared_mapping_table():
    igd = responder()
    assert call(igd, "GetExternalIPAddress") == {"NewExternalIPAddress": "203.0.113.10"}
    assert call(igd, "AddPortMapping", upnp.add_port_mapping_args(6000, "UDP", 5000, ALICE, lease=60)) == {}
    [m] = igd.server.mappings.values()
    assert m.internal == (ALICE, 5000) and m.external == ("203.0.113.10", 6000) and m.protocol == "upnp"
    assert [e.kind for e in igd.server.events()] == ["mapped"]  # what makes lab.serve install nftables rules
    entry = call(igd, "GetSpecificPortMappingEntry", [("NewRemoteHost", ""), ("NewExternalPort", 6000),
                                                      ("NewProtocol", "UDP")], now=11.0)
    assert entry["NewInternalClient"] == ALICE and entry["NewInternalPort"] == "5000"
    assert entry["NewLeaseDuration"] == "50"
    assert call(igd, "GetGenericPortMappingEntry", [("NewPortMappingIndex", 0)])["NewExternalPort"] == "6000"
    with pytest.raises(upnp.UpnpActionError) as info:
        call(igd, "GetGenericPortMappingEntry", [("NewPortMappingIndex", 1)])
    assert info.value.code == 713
    assert call(igd, "DeletePortMapping", upnp.delete_port_mapping_args(6000, "UDP")) == {}
    assert igd.server.mappings == {} and [e.kind for e in igd.server.events()] == ["unmapped"]


@pytest.mark.parametrize("args, client, code", [
    (upnp.add_port_mapping_args(6000, "UDP", 5000, "192.168.1.99"), ALICE, 718),  # not for yourself
    (upnp.add_port_mapping_args(80, "TCP", 8080, ALICE), ALICE, 606),             # below the allowed range
    (upnp.add_port_mapping_args(6000, "UDP", 5000, ALICE, remote_host="198.51.100.20"), ALICE, 726),
    ([("NewExternalPort", "x")], ALICE, 402),
])
def test_refusals_carry_the_spec_codes(args, client, code):
    igd = responder()
    with pytest.raises(upnp.UpnpActionError) as info:
        call(igd, "AddPortMapping", args, client)
    assert info.value.code == code and info.value.name == upnp.error_name(code)


def test_port_held_by_another_client_delete_rules_and_cgn():
    igd = responder()
    call(igd, "AddPortMapping", upnp.add_port_mapping_args(6000, "UDP", 5000, ALICE))
    bobby = "192.168.1.20"
    with pytest.raises(upnp.UpnpActionError, match="718 ConflictInMappingEntry"):
        call(igd, "AddPortMapping", upnp.add_port_mapping_args(6000, "UDP", 5000, bobby), bobby)
    with pytest.raises(upnp.UpnpActionError, match="606 Action not authorized"):
        call(igd, "DeletePortMapping", upnp.delete_port_mapping_args(6000, "UDP"), bobby)
    with pytest.raises(upnp.UpnpActionError, match="714 NoSuchEntryInArray"):
        call(igd, "DeletePortMapping", upnp.delete_port_mapping_args(6001, "UDP"))
    with pytest.raises(upnp.UpnpActionError, match="401 Invalid Action"):
        call(igd, "ForceTermination")
    cgn = responder(refuse=(8, 3, "behind carrier-grade NAT"))
    with pytest.raises(upnp.UpnpActionError, match="501 Action Failed"):
        call(cgn, "AddPortMapping", upnp.add_port_mapping_args(6000, "UDP", 5000, ALICE))


def test_permanent_lease_becomes_the_servers_maximum():
    igd = responder(max_lifetime=7200)
    call(igd, "AddPortMapping", upnp.add_port_mapping_args(6000, "UDP", 5000, ALICE, lease=0))
    [m] = igd.server.mappings.values()
    assert m.expires == pytest.approx(1.0 + 7200)


def test_http_request_parser():
    assert parse_http_request(b"GET / HTTP/1.1\r\nHost: x\r\n") is None  # incomplete
    assert parse_http_request(b"POST /c HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc") is None
    assert parse_http_request(b"POST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc") == ("POST", "/c", {
        "CONTENT-LENGTH": "3"}, b"abc")
    with pytest.raises(upnp.UpnpError, match="Content-Length"):
        parse_http_request(b"POST /c HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
