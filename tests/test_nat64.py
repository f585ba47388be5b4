"""IPv6 and NAT64: RFC 6052 addresses, the NAT64 model against tayga's real output, IPv6 firewalls,
and the real lab (tayga in a router namespace)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from p2plab import recorded
from p2plab._scapy import ip_packet
from p2plab.errors import ConfigurationError
from p2plab.nat64 import LAB_PREFIX, WELL_KNOWN_PREFIX, Firewall6, Nat64, embed_ipv4, extract_ipv4, punch6

from conftest import need, need_netns

# RFC 6052 section 2.4: 192.0.2.33 under each prefix length
RFC6052_TABLE = [
    ("2001:db8::/32", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "2001:db8:122:344::c000:221"),
    ("64:ff9b::/96", "64:ff9b::c000:221"),
]


@pytest.mark.parametrize("prefix,address", RFC6052_TABLE)
def test_embedding_matches_rfc6052_examples(prefix, address):
    assert embed_ipv4("192.0.2.33", prefix) == address
    assert extract_ipv4(address, prefix) == "192.0.2.33"


def test_bad_prefixes_and_addresses_say_what_is_wrong():
    with pytest.raises(ConfigurationError, match="prefix lengths"):
        embed_ipv4("192.0.2.1", "64:ff9b::/33")
    with pytest.raises(ConfigurationError, match="not an IPv4 address"):
        embed_ipv4("192.0.2", WELL_KNOWN_PREFIX)
    with pytest.raises(ConfigurationError, match="not inside the NAT64 prefix"):
        extract_ipv4("2001:db8:1::10", WELL_KNOWN_PREFIX)
    with pytest.raises(ConfigurationError, match="not an IPv6 prefix"):
        Nat64(prefix="banana")


def _router_packets():
    d = recorded.outcome("nat64")["details"]
    return d, {(p["ifname"], p["outgoing"]): bytes.fromhex(p["hex"]) for p in reversed(d["router"])}


def test_the_model_translates_like_tayga_did_in_the_lab():
    """The recording holds one datagram on the LAN (IPv6) and leaving the router (IPv4, after tayga and
    the NAT44). The model's translation of the LAN packet is the same packet, but for the TTL: the real
    router forwards three times (kernel into the tun device, tayga, kernel out of the WAN)."""
    details, pk = _router_packets()
    lan_in, wan_out = pk[("lan", False)], pk[("wan", True)]
    model = Nat64(public_ip="203.0.113.10", prefix=details["prefix"])
    mine = ip_packet(model.to_ipv4(lan_in))
    real = ip_packet(wan_out)
    v6 = ip_packet(lan_in)
    assert (mine.src, mine.dst, mine.proto, mine.tos, mine.id, int(mine.flags)) == \
        (real.src, real.dst, real.proto, real.tos, real.id, int(real.flags))
    assert bytes(mine.payload) == bytes(real.payload)  # UDP header, recomputed checksum and data
    assert mine.ttl == v6.hlim - 1 and real.ttl == v6.hlim - 3
    # and the answer, back to IPv6
    wan_in, lan_out = pk[("wan", False)], pk[("lan", True)]
    back = ip_packet(model.to_ipv6(wan_in))
    real6 = ip_packet(lan_out)
    assert (back.src, back.dst, back.nh, back.tc, back.fl) == (real6.src, real6.dst, real6.nh, real6.tc, real6.fl)
    assert bytes(back.payload) == bytes(real6.payload)


def test_translation_rewrites_the_udp_checksum_and_drops_what_it_must():
    from p2plab._scapy import scapy_all

    sc = scapy_all()
    n = Nat64()
    pkt = bytes(sc.IPv6(src="2001:db8:1::10", dst=embed_ipv4("192.0.2.1", LAB_PREFIX), hlim=64, fl=7)
                / sc.UDP(sport=5000, dport=7000) / b"hi")
    v4 = ip_packet(n.to_ipv4(pkt))
    assert v4.src == "203.0.113.10" and v4.dst == "192.0.2.1" and v4.ttl == 63
    assert v4["UDP"].chksum != ip_packet(pkt)["UDP"].chksum  # the pseudo-header changed
    fixed = sc.IP(bytes(v4))
    del fixed["UDP"].chksum
    assert sc.IP(bytes(fixed))["UDP"].chksum == v4["UDP"].chksum
    # unsolicited IPv4 from outside finds no binding
    stranger = bytes(sc.IP(src="198.51.100.9", dst="203.0.113.10") / sc.UDP(sport=1, dport=4444) / b"x")
    assert n.to_ipv6(stranger) is None and "no binding" in n.last_drop
    # RFC 6052 section 3.1: the well-known prefix may not carry a non-global address
    wkp = Nat64(prefix=WELL_KNOWN_PREFIX)
    bad = bytes(sc.IPv6(src="2001:db8:1::10", dst=embed_ipv4("192.0.2.1", WELL_KNOWN_PREFIX))
                / sc.UDP(sport=5000, dport=7000) / b"hi")
    assert wkp.to_ipv4(bad) is None and "RFC 6052 section 3.1" in wkp.last_drop
    good = bytes(sc.IPv6(src="2001:db8:1::10", dst=embed_ipv4("93.184.216.34", WELL_KNOWN_PREFIX))
                 / sc.UDP(sport=5000, dport=7000) / b"hi")
    assert ip_packet(wkp.to_ipv4(good)).dst == "93.184.216.34"


def test_ipv6_firewall_filtering():
    a, b = ("2001:db8:a::10", 5000), ("2001:db8:b::20", 6000)
    for filtering, same_addr_other_port in [("endpoint-independent", True), ("address-dependent", True),
                                            ("address-and-port-dependent", False)]:
        fw = Firewall6("fw", "2001:db8:a::/64", filtering)
        assert fw.inbound(b, a)[0] is False  # nothing sent yet
        fw.outbound(a, b)
        assert fw.inbound(b, a)[0] is True
        assert fw.inbound((b[0], 6001), a)[0] is same_addr_other_port
        assert fw.inbound(("2001:db8:c::1", 6000), a)[0] is (filtering == "endpoint-independent")
    with pytest.raises(ConfigurationError, match="choose from"):
        Firewall6("fw", "2001:db8:a::/64", "symmetric")


def test_punch6_needs_both_sides_to_send():
    both = punch6()
    assert both.connected and both.rows[0]["fate"] == "dropped"  # alice's first packet: bob sent nothing yet
    assert all(r["fate"] == "delivered" for r in both.rows[1:])
    one = punch6(bob_sends=False)
    assert not one.connected and {r["fate"] for r in one.rows} == {"dropped"}


def test_cli_nat64_and_punch6():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "p2plab", *args], capture_output=True, text=True, timeout=60)

    out = run("nat64", "--format", "json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert "192.0.2.1" in row["after"] and "2001:db8:64::c000:201" in row["before"]
    out = run("nat64", "--prefix", WELL_KNOWN_PREFIX)
    assert out.returncode == 0 and "RFC 6052 section 3.1" in out.stdout
    out = run("nat64", "--prefix", "64:ff9b::/33")
    assert out.returncode == 2 and "prefix lengths" in out.stderr
    out = run("nat64", "--world", "recorded", "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["ok"] is True
    out = run("punch6", "--one-sided", "--format", "json")
    assert out.returncode == 0 and json.loads(out.stdout)["connected"] is False


def test_recording_decodes_in_tshark_without_malformed_frames():
    need("tshark")
    out = subprocess.run(["tshark", "-n", "-r", str(recorded.DATA / "nat64.pcap"), "-Y", "_ws.malformed"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == ""


def test_tayga_in_the_real_lab():
    """An IPv6-only alice reaches the IPv4 server through tayga and the NAT44; no IPv6 leaves the router."""
    need_netns()
    need("tayga")
    import os

    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        from conftest import missing

        missing("tayga needs /dev/net/tun, which this user may not open here")
    from p2plab.netns.nat64lab import POOL, WKP, run_nat64

    r = run_nat64(capture=True)
    assert r["outcome"]["ok"], r["outcome"]
    seen = [(p["ifname"], p["outgoing"], ip_packet(bytes.fromhex(p["hex"]))) for p in r["router"]]
    first = {(i, o): p for i, o, p in reversed(seen)}
    assert first[("lan", False)].version == 6 and first[("nat64", False)].version == 4
    import ipaddress

    assert ipaddress.ip_address(first[("nat64", False)].src) in ipaddress.ip_network(POOL)
    assert first[("wan", True)].src == "203.0.113.10"
    assert [first[k].hlim if first[k].version == 6 else first[k].ttl
            for k in [("lan", False), ("nat64", True), ("nat64", False), ("wan", True)]] == [64, 63, 62, 61]
    assert all(p.version == 4 for i, _, p in seen if i == "wan")
    assert set(r["trace"].df.query("node == 'nat-a'")["action"]) == {"translated"}
    # RFC 6052 section 3.1, enforced by tayga: the well-known prefix with the lab's documentation addresses
    wkp = run_nat64(capture=False, prefix=WKP, lines=("nobody home",))
    assert not wkp["outcome"]["ok"] and wkp["alice"]["replies"][0]["reply"] is None
    assert not any(p["ifname"] == "wan" for p in wkp["router"])


# -- IPv6 through two real stateful firewalls (nftables, no NAT) ---------------------------------

def _drops(trace):
    return trace.df.query("action == 'dropped'")


def test_ipv6_firewall_recording_shows_the_punch():
    trace, out = recorded.load("ipv6-firewall"), recorded.outcome("ipv6-firewall")
    assert out["ok"] and out["direct"]
    drops = _drops(trace)
    assert len(drops) >= 1 and set(drops["interface"]) == {"wan"}
    assert drops["reason"].str.contains("no conntrack entry").all()
    first = trace.df.query("action == 'sent'").iloc[0]
    assert drops.iloc[0]["summary"] == first["summary"]  # the very first datagram dies at the other firewall
    delivered = trace.df.query("action == 'delivered'")
    assert set(delivered["node"]) == {"alice", "bob"}
    assert "policy drop" in out["details"]["ruleset"] and "ct state established,related accept" in out["details"]["ruleset"]
    assert all(":" in a for a in trace.df["src"])  # IPv6 only: the lab's IPv4 stays unused


@pytest.mark.parametrize("name", ["nat64", "ipv6-firewall", "webrtc-mdns"])
def test_lesson14_recordings_have_no_malformed_frames(name):
    need("tshark")
    # (as in tests/test_webrtc_recorded.py: the one complaint allowed is DTLS reassembly meeting a handshake
    # fragment again, since the capture holds each packet once per interface it crossed)
    out = subprocess.run(["tshark", "-n", "-r", str(recorded.DATA / f"{name}.pcap"), "-Y",
                          "(_ws.malformed || _ws.expert.severity >= 0x00800000) && !_ws.malformed.reassembly"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == ""


def test_ipv6_firewalls_in_the_real_lab():
    """Both send: the first datagram dies at the other side's firewall, then both directions pass.
    One side only: every datagram dies at the silent side's firewall."""
    need_netns()
    from p2plab.netns.ipv6lab import run_ipv6_punch

    both = run_ipv6_punch()
    assert both["outcome"]["ok"] and both["outcome"]["direct"], both["outcome"]
    drops = _drops(both["trace"])
    assert 1 <= len(drops) <= 2 and set(drops["node"]) <= {"nat-a", "nat-b"} and set(drops["interface"]) == {"wan"}
    one = run_ipv6_punch(bob_sends=False)
    assert one["outcome"]["ok"] and not one["outcome"]["direct"]
    assert one["bob"]["got"] == [] and one["alice"]["sent"] == 3
    drops = _drops(one["trace"])
    assert list(drops["node"]) == ["nat-b"] * 3
    assert not one["trace"].df.query("node == 'bob' and action == 'delivered'").shape[0]


def test_the_ipv6_lab_has_no_way_out():
    """The core routes the two home prefixes and nothing else: an address outside the lab is unreachable."""
    need_netns()
    from p2plab import topology as t
    from p2plab.netns import Lab
    from p2plab.netns.ipv6lab import _setup

    with Lab(t.punch(), capture=False) as lab:
        _setup(lab)
        assert lab.exec("internet", "ip -6 route show default").stdout.strip() == ""
        routes = lab.exec("internet", "ip -6 route show").stdout
        assert "2001:db8:a::/64" in routes and "2001:db8:b::/64" in routes
        probe = lab.exec("alice", "ip -6 route get 2001:4860::1 && echo routed")
        assert probe.returncode == 0  # alice has a default route to her router ...
        core = lab.exec("internet", "ip -6 route get 2001:4860::1")
        assert core.returncode != 0 and "unreachable" in (core.stderr + core.stdout).lower()  # ... the core has none


def test_cli_punch6_in_the_lab_and_recorded():
    out = subprocess.run([sys.executable, "-m", "p2plab", "punch6", "--world", "recorded", "--format", "json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["connected"] is True
    out = subprocess.run([sys.executable, "-m", "p2plab", "punch6", "--world", "recorded", "--one-sided"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "two-sided" in out.stdout
