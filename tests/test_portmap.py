"""PCP (RFC 6887) and NAT-PMP (RFC 6886): wire formats, the server's rules, the client, and the
simulator's NAT with a port mapping server (a mapping makes symmetric x symmetric direct; behind a
carrier-grade NAT it does not)."""

from __future__ import annotations

import ipaddress
import json
import struct
import subprocess
import sys

import pytest

from p2plab import sim, topology
from p2plab.errors import ConfigurationError
from p2plab.portmap import PortMapClient, PortMapServer, natpmp, pcp
from p2plab.punch import run_punch

NONCE = bytes(range(1, 13))


# -- wire formats, byte by byte ------------------------------------------------------------------
def test_natpmp_layouts_are_the_rfc_6886_ones():
    assert natpmp.ExternalAddressRequest().encode() == b"\x00\x00"
    req = natpmp.MapRequest(17, 5000, 6000, 7200).encode()
    assert req == struct.pack("!BBHHHI", 0, 1, 0, 5000, 6000, 7200) and len(req) == 12
    assert natpmp.MapRequest(6, 80).encode()[1] == 2  # opcode 2 maps TCP
    resp = natpmp.MapResponse(17, 0, 42, 5000, 6000, 3600).encode()
    assert len(resp) == 16 and resp[:2] == b"\x00\x81"  # opcode 128 + 1
    ext = natpmp.ExternalAddressResponse(0, 7, "203.0.113.10").encode()
    assert ext == b"\x00\x80\x00\x00\x00\x00\x00\x07" + bytes([203, 0, 113, 10])
    for msg in (natpmp.MapRequest(17, 5000, 6000, 7200), natpmp.MapResponse(6, 3, 9, 1, 2, 3),
                natpmp.ExternalAddressResponse(2, 1, "198.51.100.20"), natpmp.ExternalAddressRequest()):
        assert natpmp.decode(msg.encode()) == msg
    assert natpmp.PORT == pcp.PORT == 5351


def test_pcp_layouts_are_the_rfc_6887_ones():
    mp = pcp.MapData(NONCE, 17, 5000, 0, "0.0.0.0")
    raw = pcp.Request(pcp.OP_MAP, 7200, "192.168.1.10", mp).encode()
    assert len(raw) == 24 + 36
    assert raw[:8] == struct.pack("!BBHI", 2, 1, 0, 7200)
    assert raw[8:24] == ipaddress.IPv6Address("::ffff:192.168.1.10").packed  # IPv4-mapped
    assert raw[24:36] == NONCE and raw[36] == 17 and raw[37:40] == b"\0\0\0"
    assert struct.unpack_from("!HH", raw, 40) == (5000, 0)
    resp = pcp.Response(pcp.OP_MAP, 0, 3600, 99, pcp.MapData(NONCE, 17, 5000, 6000, "203.0.113.10")).encode()
    assert resp[:4] == bytes([2, 0x81, 0, 0]) and struct.unpack_from("!II", resp, 4) == (3600, 99)
    assert resp[12:24] == b"\0" * 12 and len(resp) == 60
    assert pcp.decode(raw) == pcp.Request(pcp.OP_MAP, 7200, "192.168.1.10", mp)
    assert pcp.decode(resp).map.external_ip == "203.0.113.10"
    opt = pcp.Option(130, b"abcde")
    back = pcp.decode(pcp.Request(pcp.OP_MAP, 60, "10.0.0.1", mp, (opt,)).encode())
    assert back.options == (opt,) and len(opt.encode()) == 12  # 4 header + 5 data + 3 padding
    assert pcp.result_name(12) == "ADDRESS_MISMATCH" and pcp.result_name(8) == "NO_RESOURCES"


@pytest.mark.parametrize("data, words", [
    (b"\x02", "24-byte header"),
    (b"\x02\x01" + b"\0" * 23, "multiple of 4"),
    (b"\x02\x01" + b"\0" * 1102, "1100"),
    (b"\x02\x01" + b"\0" * 26, "MAP needs 36"),
    (b"\x00\x01" + b"\0" * 22, "NAT-PMP"),
])
def test_pcp_decode_says_what_is_wrong(data, words):
    with pytest.raises(pcp.PcpError, match=words):
        pcp.decode(data)


def test_natpmp_decode_says_what_is_wrong():
    with pytest.raises(natpmp.NatPmpError, match="12 bytes"):
        natpmp.decode(b"\x00\x01\x00")
    with pytest.raises(natpmp.NatPmpError, match="PCP"):
        natpmp.decode(b"\x02\x01")


# -- the server's rules ------------------------------------------------------------------------
def _exchange(server, data, src=("192.168.1.10", 40000), now=1.0):
    server.datagram_received(data, src, now)
    out = server.datagrams_to_send()
    return out[0][0] if out else None


def _map(lifetime=7200, client="192.168.1.10", nonce=NONCE, port=5000, proto=17):
    return pcp.Request(pcp.OP_MAP, lifetime, client, pcp.MapData(nonce, proto, port)).encode()


@pytest.fixture
def server():
    s = PortMapServer("203.0.113.10", "192.168.1.0/24", min_lifetime=120, max_lifetime=3600)
    s.start(0.0)
    return s


def test_server_grants_clamps_and_expires(server):
    resp = pcp.decode(_exchange(server, _map(lifetime=99999)))
    assert resp.ok and resp.lifetime == 3600 and (resp.map.external_ip, resp.map.external_port) == ("203.0.113.10", 5000)
    assert [e.kind for e in server.events()] == ["mapped"]
    assert pcp.decode(_exchange(server, _map(lifetime=5))).lifetime == 120  # renewal, clamped up
    server.events()
    server.handle_timer(1.0 + 120 + 0.01)
    ev = server.events()
    assert [(e.kind, e.why) for e in ev] == [("unmapped", "expired")] and server.mappings == {}


def test_server_rules_address_mismatch_nonce_lan_delete(server):
    assert pcp.decode(_exchange(server, _map(client="192.168.1.99"))).result == pcp.ADDRESS_MISMATCH
    assert pcp.decode(_exchange(server, _map(), src=("10.9.9.9", 1))).result == pcp.ADDRESS_MISMATCH
    assert pcp.decode(_exchange(server, _map(client="10.9.9.9"), src=("10.9.9.9", 1))).result == pcp.NOT_AUTHORIZED
    assert pcp.decode(_exchange(server, _map())).ok
    other = pcp.decode(_exchange(server, _map(nonce=b"x" * 12)))
    assert other.result == pcp.NOT_AUTHORIZED  # RFC 6887 section 11.3: another nonce may not touch it
    assert pcp.decode(_exchange(server, _map(lifetime=0))).ok and server.mappings == {}
    assert pcp.decode(_exchange(server, _map(proto=1))).result == pcp.UNSUPP_PROTOCOL
    ann = pcp.decode(_exchange(server, pcp.Request(pcp.OP_ANNOUNCE, 0, "192.168.1.10").encode()))
    assert ann.ok and ann.opcode == pcp.OP_ANNOUNCE
    peer = pcp.Request(pcp.OP_PEER, 60, "192.168.1.10", opaque=b"\0" * 56).encode()
    assert pcp.decode(_exchange(server, peer)).result == pcp.UNSUPP_OPCODE
    mandatory = pcp.Request(pcp.OP_MAP, 60, "192.168.1.10", pcp.MapData(NONCE, 17, 1), (pcp.Option(1, b"\0" * 16),))
    assert pcp.decode(_exchange(server, mandatory.encode())).result == pcp.UNSUPP_OPTION
    assert _exchange(server, b"\x02") is None  # shorter than 4 bytes: silently dropped
    bad = pcp.decode(_exchange(server, b"\x02\x01" + b"\0" * 22 + b"\0" * 4))
    assert bad.result == pcp.MALFORMED_REQUEST


def test_server_speaks_natpmp_on_the_same_port(server):
    ext = natpmp.decode(_exchange(server, natpmp.ExternalAddressRequest().encode()))
    assert ext.external_ip == "203.0.113.10" and ext.result == 0
    m = natpmp.decode(_exchange(server, natpmp.MapRequest(17, 5000, 0, 60).encode()))
    assert (m.result, m.external_port, m.lifetime) == (0, 5000, 120)
    taken = natpmp.decode(_exchange(server, natpmp.MapRequest(17, 5000, 5000, 600).encode(), src=("192.168.1.11", 1)))
    assert taken.result == 0 and taken.external_port != 5000  # the port is someone else's: another one
    gone = natpmp.decode(_exchange(server, natpmp.MapRequest(17, 0, 0, 0).encode()))
    assert gone.result == 0 and all(k[1] != "192.168.1.10" for k in server.mappings)
    assert natpmp.decode(_exchange(server, b"\x00\x07")).result == natpmp.UNSUPP_OPCODE
    assert pcp.decode(_exchange(server, b"\x01\x01" + b"\0" * 22)).result == pcp.UNSUPP_VERSION


def test_refusing_server_gives_the_configured_codes():
    s = PortMapServer("203.0.113.10", "192.168.1.0/24", refuse=(pcp.NO_RESOURCES, natpmp.NETWORK_FAILURE, "reserved"))
    s.start(0.0)
    assert pcp.decode(_exchange(s, _map())).result == pcp.NO_RESOURCES
    assert natpmp.decode(_exchange(s, natpmp.MapRequest(17, 5000).encode())).result == natpmp.NETWORK_FAILURE
    assert s.mappings == {}


# -- the client ---------------------------------------------------------------------------------
def _talk(client, server, rounds=3, now=0.0):
    for _ in range(rounds):
        for data, _addr in client.datagrams_to_send():
            server.datagram_received(data, client.local_addr, now)
        for data, _addr in server.datagrams_to_send():
            client.datagram_received(data, ("192.168.1.1", 5351), now)
    return client.events()


@pytest.mark.parametrize("protocol", ["pcp", "natpmp"])
def test_client_gets_renews_and_deletes(protocol, server):
    c = PortMapClient(protocol, ("192.168.1.1", 5351), 5000, lifetime=600, renew=True)
    c.start(0.0, ("192.168.1.10", 40000))
    ev = _talk(c, server)
    assert [e.kind for e in ev] == ["mapped"] and ev[0].external == ("203.0.113.10", 5000) and ev[0].warning == ""
    assert c.next_timer() == pytest.approx(300.0)  # renewed at half the lifetime
    c.handle_timer(300.0)
    ev = _talk(c, server, now=300.0)
    assert ev[0].renewed is True
    c.delete()
    assert [e.kind for e in _talk(c, server, now=301.0)] == ["deleted"] and server.mappings == {}


def test_client_timeout_and_refusal_messages(server):
    c = PortMapClient("natpmp", ("192.168.1.1", 5351), 5000, give_up_after=2.0)
    c.start(0.0, ("192.168.1.10", 40000))
    sent = []
    while c.next_timer() is not None:  # no server: 250 ms, 500 ms, 1 s ... then give up
        sent.append(c.next_timer())
        c.handle_timer(c.next_timer())
    assert sent[:3] == [0.25, 0.75, 1.75]
    (ev,) = c.events()
    assert ev.result == "TIMEOUT" and "does not run a port mapping server" in ev.message
    s = PortMapServer("203.0.113.10", "192.168.1.0/24", refuse=(pcp.NO_RESOURCES, natpmp.NETWORK_FAILURE, "x"))
    s.start(0.0)
    c = PortMapClient("natpmp", ("192.168.1.1", 5351), 5000)
    c.start(0.0, ("192.168.1.10", 40000))
    (ev,) = _talk(c, s)
    assert ev.kind == "failed" and ev.result == "NETWORK_FAILURE" and "behind another NAT" in ev.message
    with pytest.raises(ConfigurationError, match="'pcp'"):
        PortMapClient("upnp", ("192.168.1.1", 5351), 5000)


def test_pcp_client_ignores_a_response_with_another_nonce(server):
    c = PortMapClient("pcp", ("192.168.1.1", 5351), 5000, nonce=NONCE)
    c.start(0.0, ("192.168.1.10", 40000))
    c.datagrams_to_send()
    forged = pcp.Response(pcp.OP_MAP, 0, 60, 0, pcp.MapData(b"z" * 12, 17, 5000, 1, "192.0.2.66")).encode()
    c.datagram_received(forged, ("192.168.1.1", 5351), 0.1)
    assert c.events() == [] and c.state == "requesting"


# -- the simulator ------------------------------------------------------------------------------
def test_sim_router_grants_a_static_endpoint_independent_mapping_that_expires():
    t = topology.one_nat("symmetric")
    t.nodes["nat-a"].portmap = True
    net = sim.Network.build(t, seed=1)
    r = net.run_protocol("alice", PortMapClient("pcp", ("192.168.1.1", 5351), 5000, lifetime=130,
                                                client_ip=topology.ALICE_IP, initial_rto=0.25))
    net.run(until=1.0)
    (ev,) = r.events
    assert ev.kind == "mapped" and ev.external == (topology.ALICE_NAT_IP, 5000)
    row = net.nat_table("nat-a").query("inside == '192.168.1.10:5000'")
    assert len(row) == 1
    sock = net.host("alice").udp_socket(5000)
    bob = net.host("bob").udp_socket(9999)
    bob.sendto(b"unsolicited hello", (topology.ALICE_NAT_IP, 5000))  # nobody was ever sent to: still admitted
    net.run(until=2.0)
    assert [d for _, d, _ in sock.received] == [b"unsolicited hello"]
    sock.sendto(b"reply", (topology.BOB_PUBLIC_IP, 9999))
    net.run(until=3.0)
    assert bob.received[0][2] == (topology.ALICE_NAT_IP, 5000)  # outbound uses the mapping too
    net.run(until=140.0)
    bob.sendto(b"too late", (topology.ALICE_NAT_IP, 5000))
    net.run(until=141.0)
    assert len(sock.received) == 1
    assert any("static mapping" in line and "expired" in line for line in net.nat("nat-a").table.log)


@pytest.mark.parametrize("protocol", ["pcp", "natpmp"])
def test_a_mapping_turns_symmetric_x_symmetric_direct_in_the_sim(protocol):
    assert not run_punch("symmetric", "symmetric").direct
    res = run_punch("symmetric", "symmetric", portmap=protocol)
    assert res.direct and res.portmap["ok"] and res.portmap["external"] == [topology.ALICE_NAT_IP, 5000]
    assert "granted" in res.reason


def test_behind_carrier_grade_nat_the_mapping_is_on_the_wrong_box():
    t = topology.cgn("symmetric", "port-restricted-cone", "symmetric")
    res = run_punch("symmetric", "symmetric", portmap="pcp", topology=t)
    assert res.portmap["ok"] and res.portmap["external"][0] == "100.64.1.2"
    assert not res.direct and "wrong box" in res.reason
    drops = res.trace.df.query("node == 'internet' and action == 'dropped'")
    assert drops["reason"].str.contains("carrier-grade NAT shared space").any()


def test_a_router_without_a_server_makes_the_client_give_up():
    net = sim.Network.build(topology.punch("symmetric", "symmetric"), seed=0)
    r = net.run_protocol("alice", PortMapClient("pcp", ("192.168.1.1", 5351), 5000, client_ip=topology.ALICE_IP,
                                                initial_rto=0.25, give_up_after=1.0))
    net.run(until=3.0)
    assert [e.result for e in r.events] == ["TIMEOUT"]


def test_punch_cli_portmap_in_the_sim():
    def run(*extra):
        out = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--nat-a", "symmetric", "--nat-b", "symmetric",
                              "--format", "json", *extra], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert run("--portmap", "pcp")["direct"] is True
    assert run()["direct"] is False
    bad = subprocess.run([sys.executable, "-m", "p2plab", "punch", "--portmap", "upnp"], capture_output=True, text=True)
    assert bad.returncode != 0 and "pcp" in bad.stderr


def test_tshark_reads_our_natpmp_and_pcp_fields(tmp_path):
    """An implementation no one here wrote (Wireshark's dissectors) reads back every field we encode."""
    from conftest import need

    need("tshark")
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    msgs = [natpmp.MapRequest(17, 5000, 6000, 3600).encode(),
            natpmp.MapResponse(17, 0, 77, 5000, 6001, 3600).encode(),
            pcp.Response(pcp.OP_MAP, 0, 3600, 77, pcp.MapData(NONCE, 17, 5000, 6002, "203.0.113.10")).encode()]
    pkts = [IP(src="192.168.1.10", dst="192.168.1.1") / UDP(sport=40000, dport=5351) / Raw(msgs[0]),
            IP(src="192.168.1.1", dst="192.168.1.10") / UDP(sport=5351, dport=40000) / Raw(msgs[1]),
            IP(src="192.168.1.1", dst="192.168.1.10") / UDP(sport=5351, dport=40000) / Raw(msgs[2])]
    path = tmp_path / "pm.pcap"
    wrpcap(str(path), pkts, linktype=101)
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "nat-pmp.internal_port",
                          "-e", "nat-pmp.external_port", "-e", "nat-pmp.pml", "-e", "nat-pmp.sssoe",
                          "-e", "portcontrol.map.rsp_assigned_external_port",
                          "-e", "portcontrol.map.rsp_assigned_ext_ip", "-e", "portcontrol.epoch_time"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert rows[0][:4] == ["5000", "6000", "3600", ""]
    assert rows[1][:4] == ["5000", "6001", "3600", "77"]
    assert rows[2][4:] == ["6002", "::ffff:203.0.113.10", "77"]


def test_scapy_layers_dissect_and_rebuild_both_protocols():
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw

    from p2plab.portmap.layers import NATPMP, PCP

    req = pcp.Request(pcp.OP_MAP, 7200, "192.168.1.10", pcp.MapData(NONCE, 17, 5000)).encode()
    resp = natpmp.MapResponse(17, 0, 5, 5000, 6000, 60).encode()
    a = IP(bytes(IP(src="192.168.1.10", dst="192.168.1.1") / UDP(sport=40000, dport=5351) / Raw(req)))
    b = IP(bytes(IP(src="192.168.1.1", dst="192.168.1.10") / UDP(sport=5351, dport=40000) / Raw(resp)))
    assert a[PCP].internal_port == 5000 and a[PCP].nonce == NONCE and a[PCP].client_ip == "::ffff:192.168.1.10"
    assert bytes(a[PCP]) == req and "PCP MAP request" in a.summary()
    assert (b[NATPMP].external_port, b[NATPMP].lifetime, b[NATPMP].epoch) == (6000, 60, 5)
    assert bytes(b[NATPMP]) == resp
