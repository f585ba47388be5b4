"""Topology figure, NAT tables, packet inspector, STUN XOR decoding, charts and relay costs."""

from __future__ import annotations

import struct

import pandas as pd
import pytest

from p2plab import costs, topology, viz
from p2plab.errors import ConfigurationError, StunParseError, TopologyError
from p2plab.viz.inspector import encode_xor_mapped_address, field_at

TXID = bytes.fromhex("b7e7a701bc34d686fa87dfae")  # RFC 5769 section 2.2/2.3


@pytest.fixture(scope="module")
def punch():
    from p2plab.punch import run_punch

    return run_punch("port-restricted-cone", "port-restricted-cone", seed=0)


# -- topology -----------------------------------------------------------------------------------

def test_topology_figure_layout_and_labels():
    fig = viz.topology(topology.punch("full-cone", "symmetric"))
    d = fig.to_dict()
    nodes = {}
    for t in d["data"]:
        if t.get("mode") == "markers+text":
            for x, y, text in zip(t["x"], t["y"], t["text"]):
                nodes[text.split("</b>")[0].removeprefix("<b>")] = (x, y, text)
    assert set(nodes) == {"alice", "nat-a", "internet", "nat-b", "bob", "server"}
    assert nodes["alice"][0] < nodes["nat-a"][0] < nodes["internet"][0] < nodes["nat-b"][0] < nodes["bob"][0]
    assert nodes["server"][1] > nodes["internet"][1]
    assert "outside 198.51.100.20" in nodes["nat-b"][2] and "symmetric" in nodes["nat-b"][2]
    links = next(t for t in d["data"] if t["name"] == "links")
    assert len(links["x"]) == 3 * 5  # five links, one per non-internet node
    assert "nat-b: NAT symmetric" in viz.summary(fig)


def test_topology_highlight_packet(punch):
    net = punch.network
    df = net.trace.df
    row = int(df.index[(df["node"] == "alice") & (df["summary"].str.startswith("P2P PUNCH"))][0])
    fig = viz.topology(net, highlight_packet=row)
    path = next(t for t in fig.to_dict()["data"] if t["name"] == "packet path")
    assert len(path["x"]) >= 3
    assert "Highlighted packet path: alice -> nat-a -> internet" in viz.summary(fig)
    fig2 = viz.topology(net.topology, highlight_packet=["alice", "bob"])
    assert "alice -> nat-a -> internet -> nat-b -> bob" in viz.summary(fig2)
    with pytest.raises(TopologyError):
        viz.topology("not a topology")
    with pytest.raises(TopologyError, match="carol"):
        viz.topology(net.topology, highlight_packet=["alice", "carol"])


def test_topology_cgn_nests_outward():
    fig = viz.topology(topology.cgn())
    from p2plab.viz.topology_fig import layout_positions

    pos = layout_positions(topology.cgn())
    assert pos["alice"][0] < pos["nat-a"][0] < pos["cgn"][0] < pos["internet"][0]
    assert "cgn" in viz.summary(fig)


# -- NAT tables ---------------------------------------------------------------------------------

def _table(rows):
    return pd.DataFrame(rows, columns=["proto", "inside", "outside", "remote", "created", "expires",
                                       "packets_out", "packets_in"])


def test_nat_table_changes_new_kept_expired():
    t0 = _table([["UDP", "192.168.1.10:5000", "203.0.113.10:5000", "192.0.2.1:7000", 0.0, 300.0, 1, 0]])
    t1 = _table([["UDP", "192.168.1.10:5000", "203.0.113.10:5000", "192.0.2.1:7000", 0.0, 300.0, 1, 0],
                 ["UDP", "192.168.1.10:5001", "203.0.113.10:5001", "198.51.100.20:6000", 5.0, 305.0, 1, 0]])
    t2 = _table([["UDP", "192.168.1.10:5001", "203.0.113.10:5001", "198.51.100.20:6000", 5.0, 305.0, 2, 0]])
    ch = viz.nat_table_changes([(0.0, t0), (5.0, t1), (301.0, t2)])
    got = [(r.snapshot, r.status, r.inside) for r in ch.itertuples()]
    assert got == [
        (0.0, "new", "192.168.1.10:5000"),
        (5.0, "kept", "192.168.1.10:5000"), (5.0, "new", "192.168.1.10:5001"),
        (301.0, "changed", "192.168.1.10:5001"), (301.0, "expired", "192.168.1.10:5000"),
    ]
    styler = viz.nat_table({0.0: t0, 5.0: t1, 301.0: t2})
    html = styler.to_html()
    assert "line-through" in html and "expired" in html and "#CCE7F4".lower() in html.lower()
    assert viz.summary(styler).startswith("NAT table (3 snapshots): 2 new, 1 changed, 1 kept, 1 expired.")
    single = viz.nat_table_changes(t1, now=301.0)
    assert list(single["status"]) == ["expired", "live"]


def test_nat_table_from_simulator(punch):
    live = punch.network.nat_table("nat-a")
    styler = viz.nat_table(live)
    assert "203.0.113.10:5000" in styler.to_html()
    derived = viz.nat_table_from_trace(punch.trace, nat="nat-a")
    assert list(derived["outside"]) == list(live["outside"])
    assert list(derived["inside"]) == list(live["inside"])
    early = viz.nat_table_from_trace(punch.trace, upto=3)
    assert list(early["status"]) == ["new"] and list(early["nat"]) == ["nat-a"]
    expired = viz.nat_table_from_trace(punch.trace, timeout=0.001)
    assert set(expired["status"]) == {"expired"}


# -- packet inspector ---------------------------------------------------------------------------

def test_inspector_marks_bytes_the_nat_changed(punch):
    df = punch.trace.df
    row = int(df.index[(df["node"] == "nat-a") & (df["direction"] == "out") & (df["action"] == "translated")][0])
    view = viz.inspect_packet(punch.trace, row)
    assert view.other_row == int(df["pair"].iat[row])
    assert [name for name, _ in view.layers][:2] == ["IP", "UDP"]
    ip_fields = dict(view.layers[0][1])
    assert ip_fields["src"] == "203.0.113.10"
    # a NAT router rewrites the source and, like every router, decrements the TTL: both checksums follow
    assert view.changed_fields == ["IP TTL", "IP header checksum", "IP source address", "UDP checksum"]
    assert all(12 <= i < 16 or i in (8, 10, 11, 26, 27) for i in view.changed)
    text = str(view)
    assert "^^" in text and "the same packet before the NAT" in text
    html = view._repr_html_()
    assert html.count("<mark") == len(view.changed) and 'title="IP source address"' in html
    dport = dict(view.layers[1][1])["dport"]
    assert dport.startswith("7000")


def test_hexdump_and_field_names():
    raw = bytes(range(40))
    text = viz.hexdump(raw, {1, 17})
    assert text.splitlines()[0].startswith("0000  00 01 02")
    assert text.splitlines()[1] == "         ^^"
    assert viz.changed_bytes(b"abc", b"abd") == [2]
    assert viz.changed_bytes(b"ab", b"abcd") == [2, 3]
    pkt = bytes.fromhex("4500001c000140004011") + bytes(10) + bytes.fromhex("13881b5800080000")
    assert field_at(pkt, 12) == "IP source address"
    assert field_at(pkt, 22) == "UDP destination port"


def test_xor_mapped_address_rfc5769_ipv4_attribute():
    attr = bytes.fromhex("0020000800" "01a147e112a643")
    steps = viz.xor_mapped_address_steps(attr)
    assert steps.endpoint == ("192.0.2.1", 32853)
    assert [s["step"] for s in steps.steps] == ["family", "X-Port", "X-Address"]
    assert steps.steps[1]["bytes"] == "a1 47" and "0xa147 XOR 0x2112" in steps.steps[1]["explanation"]
    assert steps.steps[2]["xor_with"] == "21 12 a4 42"
    assert "e1^21=c0=192" in steps.steps[2]["explanation"]
    assert "Mapped address: 192.0.2.1:32853" in str(steps)
    assert "<table" in steps._repr_html_()


def test_xor_mapped_address_rfc5769_ipv6_whole_message():
    attr_value = bytes.fromhex("0002a147" "0113a9faa5d3f179bc25f4b5bed2b9d9")
    software = b"test vector"
    attrs = struct.pack("!HH", 0x8022, len(software)) + software + b"\0" + struct.pack("!HH", 0x0020, 20) + attr_value
    msg = struct.pack("!HHI", 0x0101, len(attrs), 0x2112A442) + TXID + attrs
    steps = viz.xor_mapped_address_steps(msg)
    assert steps.endpoint == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)
    assert steps.steps[0]["step"] == "find the attribute"
    assert steps.steps[-1]["xor_with"].replace(" ", "") == "2112a442" + TXID.hex()
    with pytest.raises(StunParseError, match="transaction id"):
        viz.xor_mapped_address_steps(attr_value)


def test_xor_roundtrip_and_errors():
    for ip in ("203.0.113.10", "198.51.100.20"):
        value = encode_xor_mapped_address(ip, 40000)
        assert viz.xor_mapped_address_steps(value).endpoint == (ip, 40000)
    with pytest.raises(StunParseError, match="bad magic cookie 0xdeadbeef at offset 4"):
        from p2plab.viz.inspector import _find_attribute

        _find_attribute(b"\x01\x01\x00\x00\xde\xad\xbe\xef" + bytes(12))
    with pytest.raises(StunParseError, match="family"):
        viz.xor_mapped_address_steps(bytes.fromhex("0009a147e112a643"))
    with pytest.raises(StunParseError, match="no XOR-MAPPED-ADDRESS"):
        viz.xor_mapped_address_steps(struct.pack("!HHI", 0x0101, 0, 0x2112A442) + TXID)


# -- costs and charts ----------------------------------------------------------------------------

def test_relay_cost_seed_example():
    c = costs.relay_cost(1000, 2.0)
    assert (c.in_mbps, c.out_mbps) == (2000.0, 2000.0)  # 1000 x 2 Mbps in and 1000 x 2 Mbps out
    assert c.out_gb == pytest.approx(2000e6 / 8 * 30 * 86400 / 1e9)  # 648,000 GB a month
    assert c.monthly_cost == pytest.approx(648_000 * 0.05)
    both = costs.relay_cost(1000, 2.0, price_per_gb=0.09, charge_ingress=True)
    assert both.billable_gb == pytest.approx(2 * 648_000) and both.monthly_cost == pytest.approx(116_640)
    tenth = costs.relay_cost(1000, 2.0, relayed_fraction=0.1)
    assert tenth.out_mbps == pytest.approx(200.0) and "100 of 1000 users (10%)" in tenth.describe()
    assert "2 Gbit/s in and 2 Gbit/s out" in str(c)
    for bad in ({"users": -1}, {"users": 10, "relayed_fraction": 1.5}, {"users": 10, "hours_per_day": 25}):
        with pytest.raises(ConfigurationError):
            costs.relay_cost(**bad)


def test_relay_cost_chart():
    fig = viz.relay_cost_chart(1000, 2.0, 0.05, relayed_fraction=0.2)
    d = fig.to_dict()
    assert [t["name"] for t in d["data"]] == ["100% relayed", "20% relayed", "your choice"]
    assert d["data"][2]["y"] == [pytest.approx(648_000 * 0.05 * 0.2)]
    assert "$6,480 per month" in viz.summary(fig)


@pytest.mark.parametrize("probes, expected", [(174, 0.50), (256, 0.64), (1024, 0.98), (2048, 0.999)])
def test_birthday_paradox_reproduces_tailscale(probes, expected):
    # Tailscale, "How NAT traversal works": 256 ports open on the hard side, random probes.
    p = viz.port_guess_probability(probes, open_ports=256)
    assert p == pytest.approx(expected, abs=0.005) or (expected == 0.999 and p > 0.999)


def test_birthday_curve_and_helpers():
    from p2plab.viz.charts import probes_for

    assert probes_for(0.5) == 175  # 174 probes give 49.98 %: "about 50 %", as Tailscale rounds it
    assert viz.port_guess_probability(0) == 0.0
    assert viz.port_guess_probability(70000) == 1.0
    assert viz.port_guess_probability(256 * 256, 256 * 256, hard_both=True) == pytest.approx(0.64, abs=0.01)
    fig = viz.birthday_curve()
    d = fig.to_dict()
    curve, marks = d["data"]
    assert curve["x"][0] == 0 and curve["x"][-1] == 4096
    assert curve["y"] == sorted(curve["y"])
    assert marks["x"] == [174, 256, 1024, 2048]
    assert "174 probes: 50.0%; 256 probes: 63.9%; 1024 probes: 98.3%; 2048 probes: 99.97%" in viz.summary(fig)


def test_punch_heatmap_from_matrix_rows():
    rows = [
        {"nat_a": "full-cone", "nat_b": "full-cone", "direct": True, "packets": 4, "time": 0.05, "reason": "ok"},
        {"nat_a": "full-cone", "nat_b": "symmetric", "direct": True, "packets": 6, "time": 0.07, "reason": "ok"},
        {"nat_a": "symmetric", "nat_b": "full-cone", "direct": True, "packets": 6, "time": 0.07, "reason": "ok"},
        {"nat_a": "symmetric", "nat_b": "symmetric", "direct": False, "packets": 100, "time": None,
         "reason": "no direct path. nat-b gave bob different ports"},
    ]
    fig = viz.punch_heatmap(rows)
    (hm,) = fig.to_dict()["data"]
    assert hm["z"] == [[1.0, 1.0], [1.0, 0.0]]
    assert hm["text"][1][1] == "✗ relay" and hm["text"][0][0].startswith("✓ direct")
    assert "different ports" in hm["hovertext"][1][1]
    assert hm["showscale"] is False  # yes/no: a two-colour legend, not a colour bar
    (legend,) = fig.to_dict()["layout"]["annotations"]
    assert "direct path" in legend["text"] and "relay needed" in legend["text"]
    rates = viz.punch_heatmap(rows + [dict(rows[0], direct=False)])  # two seeds of one pair: a rate, 50 %
    assert rates.to_dict()["data"][0].get("showscale") is not False and not rates.to_dict()["layout"].get("annotations")
    s = viz.summary(fig)
    assert "3 of 4 NAT pairs got a direct path" in s and "No direct path: symmetric x symmetric." in s
    with pytest.raises(ConfigurationError):
        viz.punch_heatmap([])


def test_punch_heatmap_from_real_matrix():
    from p2plab.matrix import run_matrix

    rows = run_matrix(["port-restricted-cone", "symmetric"])
    fig = viz.punch_heatmap(rows)
    (hm,) = fig.to_dict()["data"]
    assert hm["y"] == ["port-restricted-cone", "symmetric"]
    assert hm["z"][1][1] == 0.0  # symmetric x symmetric cannot punch


def test_ice_pairs_table():
    pairs = [
        {"local": "192.168.1.10:5000 host", "remote": "192.168.0.25:5000 host", "type": "host/host",
         "priority": 9115038255631187967, "state": "failed"},
        {"local": "203.0.113.10:5000 srflx", "remote": "198.51.100.20:5000 srflx", "type": "srflx/srflx",
         "priority": 7277816996102668287, "state": "succeeded"},
        {"local": "192.0.2.5:3478 relay", "remote": "198.51.100.20:5000 srflx", "type": "relay/srflx",
         "priority": 72057594037927935, "state": "waiting"},
    ]
    fig = viz.ice_pairs_table(pairs)
    (tbl,) = fig.to_dict()["data"]
    assert tbl["cells"]["values"][3] == ["failed", "succeeded", "waiting"]  # sorted by priority
    assert tbl["cells"]["fill"]["color"][0][1] == "#BFE6DA"
    assert [h["values"] for h in [tbl["header"]]][0] == ["<b>#</b>", "<b>pair</b>", "<b>local → remote</b>",
                                                        "<b>state</b>", "<b>checks</b>", "<b>why</b>"]
    s = viz.summary(fig)
    assert "3 (1 failed, 1 succeeded, 1 waiting)" in s and "Highest-priority succeeded pair: 203.0.113.10:5000 srflx" in s


def test_ice_pairs_table_of_a_real_run_shows_every_row_without_scrolling():
    from p2plab.ice import run_ice

    pairs = run_ice("port-restricted-cone", "port-restricted-cone", seed=0).pairs("alice")
    fig = viz.ice_pairs_table(pairs)
    d = fig.to_dict()
    (tbl,) = d["data"]
    assert len(tbl["header"]["values"]) == 6  # not 15 truncated columns
    assert len(tbl["cells"]["values"][0]) == len(pairs) == 8
    lines = sum(max(2, cell.count("<br>") + 1) for cell in tbl["cells"]["values"][5])
    assert d["layout"]["height"] >= 84 + lines * 17  # tall enough for every wrapped line
    (star,) = [k for k, s in enumerate(tbl["cells"]["values"][3]) if "★ selected" in s]
    assert tbl["cells"]["values"][1][star] == "<b>srflx-srflx</b>"


def test_ice_pair_table_names_the_selected_pair_not_just_the_best_succeeded_one():
    rows = [
        {"local": "192.168.1.10:5000 host", "remote": "198.51.100.20:5000 srflx", "type": "host/srflx",
         "priority": 9, "state": "Succeeded", "selected": False},
        {"local": "203.0.113.10:5000 srflx", "remote": "198.51.100.20:5000 srflx", "type": "srflx/srflx",
         "priority": 5, "state": "Succeeded", "selected": True},
    ]
    text = viz.summary(viz.ice_pairs_table(rows))
    assert "Selected pair: 203.0.113.10:5000 srflx -> 198.51.100.20:5000 srflx" in text


def test_nat_table_summary_counts_empty_snapshots():
    from p2plab import sim, topology

    net = sim.Network.build(topology.one_nat())
    snaps = [net.nat_table("nat-a")]
    net.host("alice").udp_socket(5000).sendto(b"x", ("192.0.2.1", 7))
    net.run()
    snaps.append(net.nat_table("nat-a"))
    assert viz.summary(viz.nat_table(snaps)).startswith("NAT table (2 snapshots): 1 new.")
