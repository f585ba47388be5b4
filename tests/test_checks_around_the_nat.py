"""Lab 09's checks: the solution passes, each typical mistake gets its own hint, garbage gets a clear
hint and never an exception."""

import ipaddress
import struct

import pytest

from p2plab.checks import around_the_nat as A
from p2plab.portmap import pcp

from _lab_solutions import solution

S = solution("09-around-the-nat")


def mapped(ip):
    return bytes(10) + b"\xff\xff" + ipaddress.IPv4Address(ip).packed


def request(client_ip, port, lifetime, nonce, *, version=2, opcode=1, life_fmt="I", client=None, proto=17,
            ports=None, suggested=None, header_only=False):
    """A MAP request with one field changed at a time (the mistakes under test)."""
    head = struct.pack(f"!BBH{life_fmt}", version, opcode, 0, lifetime) + (client if client is not None else mapped(client_ip))
    if header_only:
        return head
    first, second = ports if ports is not None else (port, 0)
    body = nonce + struct.pack("!B3xHH", proto, first, second)
    return head + body + (suggested if suggested is not None else mapped("0.0.0.0"))


def test_right_answers_pass():
    assert A.check_map_request(S["pcp_map_request"], quiet=True).passed
    assert A.check_mapping_verdict(S["mapping_verdict"], quiet=True).passed
    assert A.check_who_sends_first(S["who_sends_first"], quiet=True).passed
    assert A.check_forward_rule(S["forward_rule"], quiet=True).passed


def test_the_reference_request_is_what_p2plabs_client_sends():
    from p2plab.portmap import PortMapClient

    c = PortMapClient("pcp", ("192.168.1.1", 5351), 5000, lifetime=7200, client_ip="192.168.1.10",
                      nonce=bytes(range(1, 13)))
    c.start(0.0, ("192.168.1.10", 5350))
    (sent, _), = c.datagrams_to_send()
    assert sent == A.reference_request("192.168.1.10", 5000, 7200, bytes(range(1, 13)))
    assert len(sent) == 60


def test_stubs_not_started():
    def stub(*a, **k):
        raise NotImplementedError()

    for fn in (A.check_map_request, A.check_mapping_verdict, A.check_who_sends_first, A.check_forward_rule):
        assert fn(stub, quiet=True).not_started
    assert "nothing to run" in A.run_with_choice(stub, "symmetric")
    assert A.forward_in_sim(stub) == A.nft_check(stub) == "no rule yet"


@pytest.mark.parametrize("fn, hint", [
    (lambda ip, port, life, nonce: request(ip, port, life, nonce, version=0), "version 0"),
    (lambda ip, port, life, nonce: request(ip, port, life, nonce, opcode=0x81), "R bit set"),
    (lambda ip, port, life, nonce: request(ip, port, life, nonce, client=bytes(12) + ipaddress.IPv4Address(ip).packed),
     "IPv4-mapped, with ff ff"),
    (lambda ip, port, life, nonce: request(ip, port, life, nonce, suggested=bytes(16)), "IPv6 all-zeros"),
    (lambda ip, port, life, nonce: request(ip, port, life, nonce, proto=6), "protocol 17"),
    (lambda ip, port, life, nonce: request(ip, port, life, nonce, ports=(0, port)), "swapped"),
    (lambda ip, port, life, nonce: request(ip, port, life, nonce, header_only=True), "only the common header"),
    (lambda ip, port, life, nonce: (struct.pack("!BBHI", 2, 1, 0, life) + ipaddress.IPv4Address(ip).packed + nonce
                                    + struct.pack("!B3xHH", 17, port, 0) + bytes(4)), "128 bits even for IPv4"),
    (lambda ip, port, life, nonce: struct.pack("!BBH", 2, 1, life & 0xFFFF) + bytes(2) + mapped(ip) + nonce
     + struct.pack("!B3xHH", 17, port, 0) + mapped("0.0.0.0"), "requested lifetime is bytes 4-7"),
    (lambda ip, port, life, nonce: request(ip, port, life, nonce).hex(), "as bytes"),
    (lambda ip, port, life, nonce: None, "as bytes"),
])
def test_request_mistakes(fn, hint):
    r = A.check_map_request(fn, quiet=True)
    assert not r.passed and hint in r.message, (hint, r.message)


def test_a_crashing_request_is_reported_in_one_line():
    r = A.check_map_request(lambda ip, port, life, nonce: struct.pack("!H", port * 1000), quiet=True)
    assert r.status == "error" and "format requires" in r.message and "\n" not in r.message


def _verdict(read_result, read_ip, not_public):
    def fn(response):
        if read_result(response) != 0:
            return "refused"
        ip = read_ip(response)
        return "wrong box" if not_public(ip) else "reachable"
    return fn


RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
SHARED = ipaddress.ip_network("100.64.0.0/10")


@pytest.mark.parametrize("fn, hint", [
    # the result code read from the reserved byte 2
    (_verdict(lambda r: r[2], lambda r: ipaddress.IPv4Address(r[56:60]), lambda ip: ip in SHARED or any(ip in n for n in RFC1918)),
     "byte 3 of the response"),
    # SUCCESS taken as "reachable", whatever the address
    (lambda r: "refused" if r[3] else "reachable", "SUCCESS only means the router you asked"),
    # only RFC 1918 counts as not public
    (_verdict(lambda r: r[3], lambda r: ipaddress.IPv4Address(r[56:60]), lambda ip: any(ip in n for n in RFC1918)),
     "RFC 6598"),
    # Python's is_private: the documentation ranges count as private too
    (_verdict(lambda r: r[3], lambda r: ipaddress.IPv4Address(r[56:60]), lambda ip: ip.is_private or ip in SHARED),
     "a public address"),
    # the address read from the first four bytes of the 16-byte field (always 0.0.0.0)
    (_verdict(lambda r: r[3], lambda r: ipaddress.IPv4Address(r[44:48]), lambda ip: ip in SHARED or any(ip in n for n in RFC1918)),
     "last four bytes"),
    # every answer with a mapping on a non-public address called refused
    (lambda r: "refused" if r[3] or A.reference_verdict(r) == "wrong box" else "reachable", "did grant a mapping"),
    (lambda r: "ok", "return one of"),
    (lambda r: True, "return one of"),
])
def test_verdict_mistakes(fn, hint):
    r = A.check_mapping_verdict(fn, quiet=True)
    assert not r.passed and hint in r.message, (hint, r.message)


def test_the_responses_come_from_the_server_and_cover_every_verdict():
    seen = {}
    for what, data, want in A.responses():
        msg = pcp.decode(data)
        assert isinstance(msg, pcp.Response) and msg.opcode == pcp.OP_MAP
        assert A.reference_verdict(data) == want, what
        seen.setdefault(want, set()).add(msg.result)
    assert seen["refused"] == {pcp.NO_RESOURCES, pcp.NOT_AUTHORIZED, pcp.NETWORK_FAILURE}
    assert seen["reachable"] == seen["wrong box"] == {pcp.SUCCESS}


def test_the_sim_router_behind_a_cgn_grants_on_the_wrong_box():
    from p2plab import sim, topology
    from p2plab.punch import map_port

    t = topology.cgn("symmetric", "port-restricted-cone", "symmetric")
    t.nodes["nat-a"].portmap = True
    pm = map_port(sim.Network.build(t, seed=0), "pcp", "alice", 5000)
    assert pm["ok"] and pm["external"][0] == "100.64.1.2" and "wrong box" in pm["warning"]


@pytest.mark.parametrize("fn, hint", [
    (lambda caller, callee: caller["name"], "NATed side must send first"),
    (lambda caller, callee: callee["name"], "simply call"),
    (lambda caller, callee: callee["name"] if caller["reported"] == caller["seen"] else caller["name"],
     "both peers are behind NATs"),
    (lambda caller, callee: None, "returned None"),
    (lambda caller, callee: (None if A._ep(caller["reported"])[1] != A._ep(caller["seen"])[1]
                             and A._ep(callee["reported"])[1] != A._ep(callee["seen"])[1]
                             else callee["name"] if A._ep(callee["reported"])[1] != A._ep(callee["seen"])[1]
                             else caller["name"]), "from the ports alone"),
    (lambda caller, callee: caller, "return the *name*"),
    (lambda caller, callee: "server", "return the *name*"),
])
def test_reversal_mistakes(fn, hint):
    r = A.check_who_sends_first(fn, quiet=True)
    assert not r.passed and hint in r.message, (hint, r.message)


def test_reference_reversal_rule_is_the_servers():
    from p2plab.reversal import decide

    for what, caller, callee in A.reversal_cases():
        c_nat, t_nat = caller["reported"] != caller["seen"], callee["reported"] != callee["seen"]
        verdict = decide(c_nat, t_nat)
        want = {"dial": caller["name"], "reverse": callee["name"], "refuse": None}[verdict]
        assert A.reference_who_sends_first(caller, callee) == want, what


def test_the_choice_is_run_in_the_simulator():
    assert "connected" in A.run_with_choice(S["who_sends_first"], "symmetric")
    assert "no connection" in A.run_with_choice(lambda caller, callee: caller["name"], "port-restricted-cone")


def _rule(wan, public_ip, proto, port, inside_ip, inside_port, *, iif="iifname", addr="daddr", stmt="dnat ip to",
          dport=None, to_port=None, match_proto=None):
    target = f"{inside_ip}:{inside_port if to_port is None else to_port}" if to_port != "" else inside_ip
    return (f'{iif} "{wan}" ip {addr} {public_ip} {match_proto or proto} dport '
            f'{port if dport is None else dport} {stmt} {target}')


@pytest.mark.parametrize("fn, hint", [
    (lambda *a: _rule(*a, stmt="snat ip to"), "destination NAT"),
    (lambda *a: f'oifname "{a[0]}" masquerade', "destination NAT"),
    (lambda *a: _rule(*a, iif="oifname"), "comes *in*"),
    (lambda *a: _rule(*a, addr="saddr"), "Match where it is going"),
    (lambda *a: _rule(*a, dport=a[5], to_port=a[3]), "swapped"),
    (lambda *a: _rule(*a, to_port=""), "DMZ host"),
    (lambda *a: _rule(*a, match_proto="tcp" if a[2] == "udp" else "udp"), "the forward is for"),
    (lambda *a: _rule(*a).replace('"', ""), None),  # nft accepts an unquoted interface name: this one is right
    (lambda *a: _rule(*a) + ' comment "mine"', None),
    (lambda *a: _rule(*a).replace("dnat ip to", "dnat to"), None),
    (lambda *a: "please forward 8080", "would not understand"),
    (lambda *a: 'iifname "wan', "quotes do not pair up"),
    (lambda *a: ["iifname", "wan"], "one line of text"),
])
def test_forward_rule_mistakes(fn, hint):
    r = A.check_forward_rule(fn, quiet=True)
    if hint is None:
        assert r.passed, r.message
    else:
        assert not r.passed and hint in r.message, (hint, r.message)


def test_forward_rules_are_what_the_lab_routers_get():
    from p2plab.nat import PortForward, preset
    from p2plab.netns.nftables import nat_ruleset

    b = preset("port-restricted-cone", forwards=(PortForward("udp", 8080, "192.168.1.10", 5000),))
    ruleset = nat_ruleset(b, "wan", "lan", ["203.0.113.10"], "192.168.1.0/24")
    line = A.reference_forward_rule("wan", "203.0.113.10", "udp", 8080, "192.168.1.10", 5000)
    assert line in ruleset and S["forward_rule"]("wan", "203.0.113.10", "udp", 8080, "192.168.1.10", 5000) == line


def test_the_rule_is_run_in_the_simulator():
    assert ": reached." in A.forward_in_sim(S["forward_rule"])
    no_port = A.forward_in_sim(lambda *a: 'iifname "wan" ip daddr 203.0.113.10 udp dport 8080 dnat ip to 192.168.1.10')
    assert "not reached" in no_port and "keeps the port" in no_port
    assert "does not send" in A.forward_in_sim(lambda *a: 'oifname "wan" masquerade')


def test_nft_itself_judges_the_rule():
    from conftest import need

    need("nft")
    import os

    if os.geteuid() != 0:
        assert "root" in A.nft_check(S["forward_rule"])
        return
    assert "accepts" in A.nft_check(S["forward_rule"])
    bad = A.nft_check(lambda *a: 'iifname "wan" ip daddr 203.0.113.10 udp dport 8080 dnat to ip 192.168.1.10:5000')
    assert bad.startswith("nft -c refuses") and "syntax error" in bad
