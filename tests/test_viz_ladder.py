"""The ladder diagram: every arrow named from its bytes, rows by event order, rewrites, drops,
condensed repeats and phases, read back through fig.to_dict()."""

from __future__ import annotations

import random

import pytest

from p2plab import viz
from p2plab.errors import TraceError
from p2plab.packet import Datagram
from p2plab.trace import Trace


def hand_trace() -> Trace:
    """alice -> nat-a (rewrite) -> internet -> nat-b (dropped: filtered), built by hand."""
    a = Datagram("192.168.1.10", 5000, "198.51.100.20", 6000, b"P2P1 PUNCH alice 1", ident=7)
    b = a.rewrite(src="203.0.113.10", sport=40000)
    rows = [
        (0.000, "alice", "eth0", "out", a.src, a.sport, a.dst, a.dport, None, None, None, "sent", "", 7, -1),
        (0.001, "nat-a", "lan", "in", a.src, a.sport, a.dst, a.dport, None, None, None, "translated", "new mapping", 7, 2),
        (0.001, "nat-a", "wan", "out", b.src, b.sport, b.dst, b.dport, None, None, None, "translated", "new mapping", 7, 1),
        (0.011, "internet", "core", "out", b.src, b.sport, b.dst, b.dport, None, None, None, "forwarded", "", 7, -1),
        (0.026, "nat-b", "wan", "in", b.src, b.sport, b.dst, b.dport, None, None, None, "dropped",
         "filtered: only admits 192.0.2.1:7000", 7, -1),
    ]
    return Trace(rows, [a, a, b, b, b])


def traces_of(fig, name):
    return [t for t in fig.to_dict()["data"] if t.get("name") == name]


def labels(fig) -> list[str]:
    (lab,) = traces_of(fig, "labels")
    return list(lab["text"])


def arrow_count(fig) -> int:
    """Drawn arrows (one segment each, None-separated) in the protocol and 'repeats' traces."""
    return sum(sum(1 for x in t["x"] if x is None) for t in fig.to_dict()["data"] if t.get("meta") == "arrows")


def lanes(fig) -> list[str]:
    return [t.split("<br>")[0].replace("<b>", "").replace("</b>", "") for t in fig.to_dict()["layout"]["xaxis"]["ticktext"]]


def stun_net():
    from p2plab import sim, topology
    from p2plab.stun.client import StunClient
    from p2plab.stun.server import StunServer

    net = sim.Network.build(topology.one_nat("port-restricted-cone"), seed=0)
    net.run_protocol("server", StunServer(), 3478)
    client = net.run_protocol("alice", StunClient(("192.0.2.1", 3478), rng=random.Random(1)), 5000)
    net.run(until=2)
    return net, client


def test_hand_trace_one_arrow_with_its_rewrite_and_drop():
    fig = viz.ladder(hand_trace())
    d = fig.to_dict()
    assert lanes(fig) == ["alice", "nat-a", "nat-b"]  # the internet only forwarded: no lane of its own
    assert "203.0.113.10" in d["layout"]["xaxis"]["ticktext"][1]  # a NAT lane carries its outside address
    (p2p,) = traces_of(fig, "P2P")
    assert p2p["x"] == [0, 2, None]  # one packet, one arrow: from alice to where it died
    assert p2p["marker"]["symbol"] == "arrow"
    assert labels(fig) == ["punch #1  ✗ nat-b: filtered"]
    (rw,) = traces_of(fig, "NAT rewrite")
    assert rw["x"] == [1]
    (note,) = traces_of(fig, "new mappings")
    assert note["text"] == ["◆ nat-a: 192.168.1.10:5000 → 203.0.113.10:40000"]
    (drop,) = traces_of(fig, "dropped")
    assert drop["x"] == [2] and "192.0.2.1:7000" in drop["hovertext"][0]
    assert d["layout"]["yaxis"]["range"][0] > d["layout"]["yaxis"]["range"][1]  # time runs downward
    s = viz.summary(fig)
    assert s.startswith("Ladder diagram of 1 packets (5 packet events, sim world) between 3 lanes: alice, nat-a, nat-b.")
    assert "1 NAT rewrites, 1 drops" in s and "alice → nat-b: punch #1  ✗ nat-b: filtered" in s
    assert repr(fig) == s and d["layout"]["meta"]["alt"] == s.split("\n")[0]


def test_columns_choose_and_order_the_lanes():
    fig = viz.ladder(hand_trace(), columns=["alice", "nat-a", "internet", "nat-b"])
    assert lanes(fig) == ["alice", "nat-a", "internet", "nat-b"]
    assert traces_of(fig, "P2P")[0]["x"] == [0, 3, None]
    with pytest.raises(TraceError, match="not lanes of this ladder"):
        viz.ladder(hand_trace(), columns=["alice", "mars"])
    with pytest.raises(TraceError, match="no packet"):
        viz.ladder(hand_trace(), columns=["alice", "nat-a"])  # the only packet ends at nat-b


def test_stun_ladder_shows_stuns_answer():
    net, client = stun_net()
    fig = viz.ladder(net.trace)
    assert lanes(fig) == ["alice", "nat-a", "server"]
    mapped = client.events[0].address  # what the STUN client itself decoded
    assert labels(fig) == ["Binding request", f"Binding success: you are {mapped[0]}:{mapped[1]}"]
    assert arrow_count(fig) == 2
    assert [t["x"] for t in traces_of(fig, "STUN")] == [[0, 2, None, 2, 0, None]]


def test_turn_ladder_names_every_step_and_keeps_servers_between_the_peers():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("build", Path(__file__).parents[1] / "docs/figures/build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    trace = build.turn_chat()
    fig = viz.ladder(trace)
    order = lanes(fig)
    assert order.index("nat-a") < order.index("server") < order.index("nat-b") < order.index("bob")
    text = labels(fig)
    assert arrow_count(fig) == len(text) == 18
    assert any(t.startswith("Allocate → 401") for t in text)
    assert any(t.startswith("Allocate success: relay 192.0.2.1:") for t in text)
    assert "CreatePermission for 198.51.100.20" in text
    assert any(t.startswith("ChannelBind 0x4000 → 198.51.100.20:") for t in text)
    assert sum(t.startswith("ChannelData 0x4000") for t in text) == 2
    assert any(t.startswith("Send to 198.51.100.20:") for t in text) and any(t.startswith("Data from") for t in text)
    phases = [a["text"] for a in fig.to_dict()["layout"]["annotations"]]
    assert phases == ["<b><i>allocate</i></b>", "<b><i>permit</i></b>", "<b><i>relay</i></b>", "<b><i>permit</i></b>",
                      "<b><i>relay</i></b>"]


def test_punch_ladder_phases_and_labels():
    from p2plab.punch import run_punch

    fig = viz.ladder(run_punch("port-restricted-cone", "port-restricted-cone", seed=0).trace)
    text = labels(fig)
    assert text[:2] == ["register alice", "register bob"]
    assert "peer: bob is at 198.51.100.20:5000" in text and "punch #1" in text and "ack of punch #1" in text
    phases = [a["text"] for a in fig.to_dict()["layout"]["annotations"]]
    assert phases[:2] == ["<b><i>rendezvous</i></b>", "<b><i>punch</i></b>"]


def test_tcp_ladder_names_the_handshake():
    from p2plab.tcp import run_tcp_punch

    fig = viz.ladder(run_tcp_punch("port-restricted-cone", "port-restricted-cone", seed=0).trace)
    assert labels(fig)[:4] == ["SYN", "SYN", "SYN/ACK", "SYN/ACK"]


def test_ice_ladder_fits_a_screen_with_phases_and_the_winning_pair():
    from p2plab.ice import run_ice

    res = run_ice("port-restricted-cone", "port-restricted-cone", seed=0)
    fig = viz.ladder(res.trace)
    d = fig.to_dict()
    assert d["layout"]["height"] <= 1200
    names = {a["text"] for a in d["layout"]["annotations"]}
    assert {"<b><i>gather</i></b>", "<b><i>check</i></b>", "<b><i>nominate</i></b>"} <= names
    assert "Binding request + USE-CANDIDATE (nominate)" in labels(fig)
    (win,) = traces_of(fig, "winning pair")
    assert sum(1 for x in win["x"] if x is None) >= 2  # the nomination and its checks
    s = viz.summary(fig)
    assert "folded into" in s
    everything = viz.ladder(res.trace, condense_repeats=False)
    sent = int((res.trace.df["action"] == "sent").sum())
    assert arrow_count(everything) == len(labels(everything)) == sent


def test_condensed_repeats_count_every_packet():
    from p2plab.punch import run_punch

    trace = run_punch("symmetric", "port-restricted-cone", seed=0).trace
    fig = viz.ladder(trace)
    _, msgs, _ = viz.messages(trace)
    text = labels(fig)
    assert len(text) <= 36 and any(t.startswith("× ") and "more like this" in t for t in text)
    import re

    drawn = sum(1 for t in text if not t.startswith(("× ", "⋯ ")))
    folded = sum(int(re.match(r"[×⋯] (\d+)", t).group(1)) for t in text if t.startswith(("× ", "⋯ ")))
    assert drawn + folded == len(msgs) == int((trace.df["action"] == "sent").sum())
    assert arrow_count(fig) == len(text)


def test_recorded_capture_rows_follow_event_order():
    from pathlib import Path

    from p2plab.recorded import load

    trace = load("stun")
    span = trace.df["time"].max() - trace.df["time"].min()
    assert span < 0.005  # the whole exchange took under 5 ms: on a time axis it would be one line
    fig = viz.ladder(trace)
    (lab,) = traces_of(fig, "labels")
    ys = sorted(lab["y"])
    assert all(b - a >= 1 for a, b in zip(ys, ys[1:]))  # one row (or more) per packet
    title = fig.to_dict()["layout"]["title"]["text"]
    assert "/" not in title and str(Path.cwd()) not in title
    assert all(t.endswith(" ms") for t in fig.to_dict()["layout"]["yaxis"]["ticktext"])


def test_capture_at_a_nat_shows_each_rewrite_once(tmp_path):
    from p2plab.punch import run_punch

    trace = run_punch().trace
    at_nat = trace.where(node="nat-a")
    cap = Trace.from_pcap(at_nat.to_pcap(tmp_path / "nat-a.pcap"))
    fig = viz.ladder(cap)
    order = lanes(fig)
    private = [ip for ip in order if ip.startswith("192.168.")]
    assert order[0] == "192.168.1.10" and order[len(private)] == "203.0.113.10"  # the NAT right after the LAN
    pairs = int((at_nat.df["direction"] == "in").sum())
    assert len(labels(fig)) <= 36
    _, msgs, mode = viz.messages(cap)
    assert mode == "addresses" and len(msgs) == pairs == len(cap) // 2  # before + after = one packet
    assert all(len(m.rewrites) == 1 for m in msgs)
    assert "recorded world) between 5 addresses" in viz.summary(fig)


def test_window_and_highlight():
    from p2plab.punch import run_punch

    trace = run_punch("port-restricted-cone", "symmetric", seed=0).trace
    fig = viz.ladder(trace, max_rows=50, highlight=400)
    s = viz.summary(fig)
    assert "showing rows 375-424" in s and "Highlighted row 400" in s
    (hl,) = traces_of(fig, "row 400")
    assert hl["x"][:2] and None in hl["x"]
    with pytest.raises(TraceError, match="highlight"):
        viz.ladder(trace, highlight=10**6)


def test_deterministic():
    from p2plab.punch import run_punch

    a = viz.ladder(run_punch("port-restricted-cone", "symmetric", seed=0).trace)
    b = viz.ladder(run_punch("port-restricted-cone", "symmetric", seed=0).trace)
    assert a.to_dict() == b.to_dict()


def test_palette_is_okabe_ito():
    from p2plab.viz import palette

    fig = viz.ladder(hand_trace())
    colours = {t["line"]["color"] for t in fig.to_dict()["data"] if "line" in t and t.get("name") != "lanes"}
    assert colours <= set(palette.OKABE_ITO) | {palette.GREY}


def test_bundle_has_plotly_json_static_svg_and_text():
    fig = viz.ladder(hand_trace())
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.plotly.v1+json", "image/svg+xml", "text/plain"}
    assert bundle["image/svg+xml"].startswith("<svg ")
    assert bundle["text/plain"] == viz.summary(fig)


def test_empty_trace_and_bad_args():
    with pytest.raises(TraceError, match="no packets"):
        viz.ladder(Trace([], []))
    with pytest.raises(TraceError, match="max_rows"):
        viz.ladder(hand_trace(), max_rows=0)
    with pytest.raises(TraceError, match="max_arrows"):
        viz.ladder(hand_trace(), max_arrows=0)
    with pytest.raises(TraceError, match="lanes"):
        viz.ladder(hand_trace(), lanes="sideways")


def test_meaning_of_bytes():
    from p2plab.stun.message import ALLOCATE, BINDING, ChannelData, StunMessage
    from p2plab.viz.ladder import meaning

    req = StunMessage(ALLOCATE, 0, transaction_id=bytes(12))
    assert meaning(17, 0, req.error_response(401).encode()).label.startswith("Allocate → 401")
    ok = StunMessage(BINDING, 0, transaction_id=bytes(12)).response(attributes=[("XOR-MAPPED-ADDRESS", ("203.0.113.10", 5000))])
    assert meaning(17, 0, ok.encode()).label == "Binding success: you are 203.0.113.10:5000"
    assert meaning(17, 0, ChannelData(0x4001, b"hi").encode()).label == "ChannelData 0x4001 'hi'"
    assert meaning(6, 0x12, b"").label == "SYN/ACK"
    assert meaning(6, 0x14, b"").label == "RST/ACK" and meaning(6, 0x14, b"").kind == "rst"
    assert meaning(6, 0x10, b"hello").label == "data 'hello'"
    assert meaning(17, 0, b"\x00\x01junk").protocol == "UDP"  # not STUN after all: no crash


def test_lane_orders():
    assert viz.lane_order(["server", "bob", "zed", "internet", "alice", "nat-b", "nat-a"]) == [
        "alice", "nat-a", "internet", "nat-b", "bob", "server", "zed"]
    assert viz.column_order(["server", "bob", "zed", "internet", "alice", "nat-b", "nat-a"]) == [
        "alice", "nat-a", "internet", "server", "zed", "nat-b", "bob"]


def test_import_p2plab_viz_is_light():
    import subprocess
    import sys

    code = "import sys, p2plab.viz; print('plotly' in sys.modules, 'pandas' in sys.modules, 'scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_hairpinned_packet_bends_through_the_nat():
    from p2plab import sim, topology

    net = sim.Network.build(topology.same_nat(hairpinning=True), seed=0)
    alice = net.host("alice").udp_socket(5000)
    carol = net.host("carol").udp_socket(5000)
    net.host("server").udp_socket(3478)
    for sock in (alice, carol):
        sock.sendto(b"where am I?", ("192.0.2.1", 3478))
    net.run(until=0.5)
    alice.sendto(b"hi carol", ("203.0.113.10", 5001))  # dropped, but opens alice's mapping to carol
    net.run(until=1.0)
    carol.sendto(b"hi alice", ("203.0.113.10", 5000))  # to alice's public endpoint: hairpinned by nat-a
    net.run(until=1.5)
    fig = viz.ladder(net.trace)
    order = lanes(fig)
    assert order[:3] == ["alice", "carol", "nat-a"]
    text = labels(fig)
    k = text.index("data 'hi alice'")
    x = [x for t in fig.to_dict()["data"] if t.get("meta") == "arrows" for x in t["x"]]
    paths, cur = [], []
    for v in x:
        if v is None:
            paths.append(cur)
            cur = []
        else:
            cur.append(v)
    assert paths[k] == [1, 2, 0]  # carol -> her router's outside address -> back in to alice
    (rw,) = traces_of(fig, "NAT rewrite")
    assert 2 in rw["x"]
