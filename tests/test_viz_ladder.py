"""The ladder diagram: lanes, arrows, NAT rewrites and drops, read back through fig.to_dict()."""

from __future__ import annotations

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


def test_hand_trace_lanes_arrows_rewrite_drop():
    fig = viz.ladder(hand_trace())
    d = fig.to_dict()
    ticks = d["layout"]["xaxis"]["ticktext"]
    assert [t.split("<br>")[0] for t in ticks] == ["<b>alice</b>", "<b>nat-a</b>", "<b>internet</b>", "<b>nat-b</b>"]
    assert "203.0.113.10" in ticks[1]  # a NAT lane is labelled with its outside address
    (p2p,) = traces_of(fig, "P2P")
    # three hops: alice->nat-a, nat-a->internet, internet->nat-b; 4 points each (start, mid, end, gap)
    assert len(p2p["x"]) == 12
    assert p2p["x"][0:3] == [0, 0.5, 1] and p2p["x"][8:11] == [2, 2.5, 3]
    assert p2p["marker"]["symbol"] == "arrow" and list(p2p["marker"]["size"][:4]) == [0, 0, 11, 0]
    assert "P2P PUNCH alice 1" in p2p["hovertext"][0]
    assert list(p2p["y"][:3]) == [0.0, 0.5, 1.0]  # milliseconds, downward
    (rw,) = traces_of(fig, "NAT rewrite")
    assert rw["x"] == [1]
    assert rw["text"] == ["src 192.168.1.10:5000 → 203.0.113.10:40000"]  # inside before → outside after
    (drop,) = traces_of(fig, "dropped")
    assert drop["x"] == [3] and drop["marker"]["symbol"] == "x-thin-open"
    assert "filtered" in drop["text"][0] and "192.0.2.1:7000" in drop["hovertext"][0]
    assert d["layout"]["yaxis"]["autorange"] == "reversed"
    s = viz.summary(fig)
    assert "alice, nat-a, internet, nat-b" in s
    assert "3 arrows, 1 NAT rewrites, 1 drops" in s
    assert "nat-a rewrote src 192.168.1.10:5000 → 203.0.113.10:40000" in s
    assert "Dropped at nat-b: filtered" in s
    assert repr(fig) == s  # the plain-text form of the figure is its summary
    assert fig.to_dict()["layout"]["meta"]["alt"]


def test_palette_is_okabe_ito():
    from p2plab.viz import palette

    fig = viz.ladder(hand_trace())
    colours = {t["line"]["color"] for t in fig.to_dict()["data"] if "line" in t and t.get("name") != "lanes"}
    assert colours <= set(palette.OKABE_ITO) | {palette.GREY}


def test_bundle_has_plotly_json_and_text():
    fig = viz.ladder(hand_trace())
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.plotly.v1+json", "text/plain"}
    assert bundle["text/plain"] == viz.summary(fig)
    assert bundle["application/vnd.plotly.v1+json"]["data"]


def test_simulated_punch_ladder():
    from p2plab.punch import run_punch

    res = run_punch("port-restricted-cone", "symmetric", seed=0)
    fig = viz.ladder(res.trace)
    s = viz.summary(fig)
    assert s.startswith("Ladder diagram of 300 packet events (sim world) between 6 nodes: "
                        "alice, nat-a, internet, nat-b, bob, server.")
    assert f"Windowed: showing rows 0-299 of {len(res.trace)}" in s
    assert "Dropped at nat-b: filtered" in s
    names = {t["name"] for t in fig.to_dict()["data"]}
    assert {"P2P", "NAT rewrite", "dropped"} <= names
    # deterministic: the same seed draws the same figure
    again = viz.ladder(run_punch("port-restricted-cone", "symmetric", seed=0).trace)
    assert again.to_dict() == fig.to_dict()


def test_window_and_highlight():
    from p2plab.punch import run_punch

    trace = run_punch("port-restricted-cone", "symmetric", seed=0).trace
    fig = viz.ladder(trace, max_rows=50, highlight=400)
    s = viz.summary(fig)
    assert "showing rows 375-424" in s and "Highlighted row 400" in s
    (hl,) = traces_of(fig, "row 400")
    assert hl["x"]


def test_pcap_ladder_uses_address_lanes(tmp_path):
    from p2plab.punch import run_punch

    trace = run_punch().trace
    path = trace.where(node="nat-a").to_pcap(tmp_path / "nat-a.pcap")
    cap = Trace.from_pcap(path)
    fig = viz.ladder(cap)
    ticks = fig.to_dict()["layout"]["xaxis"]["ticktext"]
    assert ticks[0] == "192.168.1.10"  # private addresses first
    assert "203.0.113.10" in ticks and "192.0.2.1" in ticks
    s = viz.summary(fig)
    assert "(recorded world)" in s and "addresses" in s
    assert len(traces_of(fig, "P2P")[0]["x"]) == 4 * len(cap)


def test_empty_trace_and_bad_args():
    with pytest.raises(TraceError, match="no packets"):
        viz.ladder(Trace([], []))
    with pytest.raises(TraceError, match="max_rows"):
        viz.ladder(hand_trace(), max_rows=0)
    with pytest.raises(TraceError, match="lanes"):
        viz.ladder(hand_trace(), lanes="sideways")


def test_lane_order():
    assert viz.lane_order(["server", "bob", "zed", "internet", "alice", "nat-b", "nat-a"]) == [
        "alice", "nat-a", "internet", "nat-b", "bob", "server", "zed"]


def test_import_p2plab_viz_is_light():
    import subprocess
    import sys

    code = "import sys, p2plab.viz; print('plotly' in sys.modules, 'pandas' in sys.modules, 'scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
