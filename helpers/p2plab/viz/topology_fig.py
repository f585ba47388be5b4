"""The network as a picture: nodes, links, addresses, and the path one packet took."""

from __future__ import annotations

from typing import Any

from ..errors import TopologyError, TraceError
from ..topology import INTERNET, Topology
from . import make_figure, palette
from .ladder import lane_order


def _topology_of(obj: Any) -> Topology:
    if isinstance(obj, Topology):
        return obj
    topo = getattr(obj, "topology", None)
    if isinstance(topo, Topology):
        return topo
    raise TopologyError(f"topology() needs a p2plab Topology or a simulated Network, e.g. topology.punch(); got {obj!r}")


def layout_positions(topo: Topology) -> dict[str, tuple[float, float]]:
    """x, y of every node: the internet in the middle, alice's side left, bob's side right, servers above."""
    children: dict[str, list[str]] = {}
    for n in topo.nodes.values():
        children.setdefault(n.behind, []).append(n.name)
    top = lane_order(children.get(INTERNET, []))
    servers = [n for n in top if topo.nodes[n].kind == "server"]
    sides = [n for n in top if n not in servers]

    def subtree_has(name: str, target: str) -> bool:
        return name == target or any(subtree_has(c, target) for c in children.get(name, []))

    left = [n for n in sides if any(subtree_has(n, x) for x in ("alice", "carol"))]
    right = [n for n in sides if n not in left and any(subtree_has(n, x) for x in ("bob", "dave"))]
    rest = [n for n in sides if n not in left and n not in right]
    for n in rest:  # balance the others
        (left if len(left) <= len(right) else right).append(n)
    pos: dict[str, tuple[float, float]] = {INTERNET: (0.0, 0.0)}

    def place(name: str, x: float, y: float, direction: int, spread: float) -> None:
        pos[name] = (x, y)
        kids = lane_order(children.get(name, []))
        for k, kid in enumerate(kids):
            dy = (k - (len(kids) - 1) / 2) * spread
            place(kid, x + direction, y + dy, direction, spread / 2 if len(kids) > 1 else spread)

    for group, direction in ((left, -1), (right, 1)):
        for k, name in enumerate(group):
            place(name, direction * 1.0, (k - (len(group) - 1) / 2) * 1.2, direction, 0.8)
    for k, name in enumerate(servers):
        place(name, (k - (len(servers) - 1) / 2) * 1.0, 1.2, 1, 0.8)
    return pos


def _node_text(node) -> str:
    if node.kind == "nat":
        return (f"<b>{node.name}</b> ({node.nat.name})<br>outside {', '.join(node.ips)}<br>"
                f"inside {node.lan_ip} ({node.lan})")
    return f"<b>{node.name}</b><br>{', '.join(node.ips)}"


def packet_path(trace, row: int) -> list[str]:
    """The nodes the packet of trace row ``row`` passed, in order (the same packet_id)."""
    df = trace.df
    if not 0 <= row < len(df):
        raise TraceError(f"row {row} does not exist: this trace has rows 0 to {len(df) - 1}")
    pid = df["packet_id"].iat[row]
    sub = df[df["packet_id"] == pid].sort_values("time", kind="stable")
    return list(dict.fromkeys(sub["node"]))


def _tree_path(topo: Topology, a: str, b: str) -> list[str]:
    def up(n: str) -> list[str]:
        chain = [n]
        while n != INTERNET:
            n = topo.nodes[n].behind
            chain.append(n)
        return chain

    ua, ub = up(a), up(b)
    common = next(x for x in ua if x in ub)
    return ua[: ua.index(common) + 1] + list(reversed(ub[: ub.index(common)]))


def topology(topo_or_network: Any, highlight_packet: int | list[str] | None = None, trace: Any = None,
             title: str | None = None) -> Any:
    """A figure of the network: nodes (shape and colour by kind), links, addresses.

    ``highlight_packet`` is a trace row (the packet's path is taken from ``trace``, or from the
    network's own trace) or a list of node names; its path is drawn thick with arrows.
    """
    topo = _topology_of(topo_or_network)
    pos = layout_positions(topo)
    data: list[dict] = []
    ex, ey = [], []
    for n in topo.nodes.values():
        (x0, y0), (x1, y1) = pos[n.name], pos[n.behind]
        ex += [x0, x1, None]
        ey += [y0, y1, None]
    data.append({"type": "scatter", "x": ex, "y": ey, "mode": "lines", "line": {"color": palette.GREY, "width": 2},
                 "hoverinfo": "skip", "showlegend": False, "name": "links"})
    path: list[str] = []
    if highlight_packet is not None:
        if isinstance(highlight_packet, int):
            tr = trace if trace is not None else getattr(topo_or_network, "trace", None)
            if tr is None:
                raise TraceError("to highlight a packet by row number, pass trace=... (or a Network, which has one)")
            nodes = packet_path(tr, highlight_packet)
        else:
            nodes = list(highlight_packet)
        for name in nodes:
            if name != INTERNET and name not in topo.nodes:
                raise TopologyError(f"node {name!r} is not in this topology ({', '.join(topo.nodes)})")
        for a, b in zip(nodes, nodes[1:]):
            seg = _tree_path(topo, a, b)
            path += seg if not path else seg[1:]
        if len(nodes) == 1:
            path = nodes
        px = [pos[p][0] for p in path]
        py = [pos[p][1] for p in path]
        data.append({"type": "scatter", "x": px, "y": py, "mode": "lines+markers", "name": "packet path",
                     "line": {"color": palette.VERMILLION, "width": 5},
                     "marker": {"symbol": "arrow", "angleref": "previous", "size": [0] + [16] * (len(px) - 1),
                                "color": palette.VERMILLION},
                     "hoverinfo": "skip"})
    by_kind: dict[str, list[str]] = {}
    for name in [INTERNET, *topo.nodes]:
        kind = "router" if name == INTERNET else topo.nodes[name].kind
        by_kind.setdefault(kind, []).append(name)
    for kind, names in by_kind.items():
        texts = ["<b>internet</b><br>core router" if nm == INTERNET else _node_text(topo.nodes[nm]) for nm in names]
        data.append({
            "type": "scatter", "x": [pos[nm][0] for nm in names], "y": [pos[nm][1] for nm in names],
            "mode": "markers+text", "name": kind, "text": texts, "textposition": "bottom center",
            "hovertext": texts, "hoverinfo": "text",
            "marker": {"symbol": palette.NODE_KIND_SYMBOLS[kind], "size": 28, "color": palette.NODE_KIND_COLORS[kind],
                       "line": {"color": palette.BLACK, "width": 1}},
        })
    lines = [f"Topology {topo.name!r}: {len(topo.nodes)} nodes around the internet core."]
    lines += [ln for ln in topo.describe().splitlines()]
    if path:
        lines.append("Highlighted packet path: " + " -> ".join(path) + ".")
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    layout = {
        "xaxis": {"visible": False, "range": [min(xs) - 0.8, max(xs) + 0.8]},
        "yaxis": {"visible": False, "range": [min(ys) - 0.8, max(ys) + 0.6]},
        "height": 420, "margin": {"l": 10, "r": 10, "t": 50, "b": 10}, "hovermode": "closest",
        "legend": {"orientation": "h"},
    }
    return make_figure(data, layout, summary_text="\n".join(lines), title=title or f"Network: {topo.name}")
