"""Ladder (sequence) diagrams: one vertical lane per node, one arrow per hop, time flowing down.

Works on every trace: simulator traces (lanes are nodes; NAT rewrites drawn on the NAT's lane,
drops marked with an X and their reason) and captures from pcaps (rows are ``captured`` at one
place, so lanes are the IP addresses, like Wireshark's flow graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..addresses import fmt, is_private, is_shared_cgn
from ..errors import TraceError
from . import make_figure, palette

LANE_ORDER = ["alice", "carol", "nat-a", "cgn", "internet", "nat-b", "bob", "dave", "server", "turn", "stun"]


def lane_order(nodes: list[str]) -> list[str]:
    """Order lanes the way the course draws them: alice, nat-a, internet, nat-b, bob, server, others."""
    seen = list(dict.fromkeys(nodes))
    known = [n for n in LANE_ORDER if n in seen]
    return known + [n for n in seen if n not in LANE_ORDER]


def _address_order(ips: list[str]) -> list[str]:
    seen = list(dict.fromkeys(ips))

    def rank(ip: str) -> int:
        try:
            return 0 if is_private(ip) else 1 if is_shared_cgn(ip) else 2
        except ValueError:
            return 3

    return sorted(seen, key=lambda ip: (rank(ip), seen.index(ip)))


@dataclass
class Hop:
    """One arrow: a packet going from one lane to another (``rows`` are the trace rows at each end)."""

    src_lane: str
    dst_lane: str
    t0: float
    t1: float
    rows: tuple[int, int]
    protocol: str
    text: str


@dataclass
class Mark:
    """A point on one lane: a NAT rewrite (``kind='rewrite'``) or a drop (``kind='drop'``)."""

    kind: str
    lane: str
    t: float
    rows: tuple[int, ...]
    label: str
    text: str
    reason: str = ""


def _cols(df) -> dict[str, list]:
    return {c: df[c].tolist() for c in df.columns}


def _fields(c: dict, i: int) -> str:
    return (f"{c['src'][i]}:{c['sport'][i]} → {c['dst'][i]}:{c['dport'][i]} {c['protocol'][i]} "
            f"{c['length'][i]} B")


def _hover(c: dict, i: int, extra: str = "") -> str:
    parts = [f"<b>{c['summary'][i]}</b>", _fields(c, i),
             f"row {i} · t={c['time'][i] * 1000:.3f} ms · {c['node'][i]} {c['direction'][i]} · {c['action'][i]}"]
    if c["reason"][i]:
        parts.append(str(c["reason"][i]))
    if extra:
        parts.append(extra)
    return "<br>".join(parts)


def _rewrite_label(c: dict, before: int, after: int) -> str:
    bits = []
    if (c["src"][before], c["sport"][before]) != (c["src"][after], c["sport"][after]):
        bits.append(f"src {fmt((c['src'][before], c['sport'][before]))} → {fmt((c['src'][after], c['sport'][after]))}")
    if (c["dst"][before], c["dport"][before]) != (c["dst"][after], c["dport"][after]):
        bits.append(f"dst {fmt((c['dst'][before], c['dport'][before]))} → {fmt((c['dst'][after], c['dport'][after]))}")
    return "; ".join(bits) or "no address change"


def hops(trace, rows: range | None = None, lanes: str = "auto") -> tuple[list[str], list[Hop], list[Mark], str]:
    """The lanes, arrows and marks of a ladder, without drawing: ``(lanes, hops, marks, mode)``.

    ``mode`` is ``"nodes"`` (simulator/real lab: one lane per node) or ``"addresses"`` (a capture
    at one place: one lane per IP address).
    """
    trace.require_packets()
    df = trace.df
    c = _cols(df)
    n = len(df)
    idx = list(rows if rows is not None else range(n))
    if lanes == "auto":
        lanes = "addresses" if all(a == "captured" for a in c["action"]) else "nodes"
    if lanes not in ("nodes", "addresses"):
        raise TraceError(f"lanes must be 'auto', 'nodes' or 'addresses', not {lanes!r}")
    hop_list: list[Hop] = []
    marks: list[Mark] = []
    if lanes == "addresses":
        for i in idx:
            hop_list.append(Hop(c["src"][i], c["dst"][i], c["time"][i], c["time"][i], (i, i),
                                str(c["protocol"][i]), _hover(c, i)))
        order = _address_order([x for i in idx for x in (c["src"][i], c["dst"][i])])
        return order, hop_list, marks, lanes

    inside = set(idx)
    chains: dict[Any, list[int]] = {}
    for i in idx:
        chains.setdefault(c["packet_id"][i], []).append(i)
    for chain in chains.values():
        chain.sort(key=lambda i: (c["time"][i], i))
        for a, b in zip(chain, chain[1:]):
            if c["node"][a] != c["node"][b]:
                hop_list.append(Hop(c["node"][a], c["node"][b], c["time"][a], c["time"][b], (a, b),
                                    str(c["protocol"][a]), _hover(c, a, f"arrives at {c['node'][b]} "
                                                                     f"t={c['time'][b] * 1000:.3f} ms")))
    for i in idx:
        action = c["action"][i]
        if action == "dropped":
            reason = str(c["reason"][i]) or "dropped"
            short = reason.split(":")[0] if ":" in reason[:40] else reason[:40]
            marks.append(Mark("drop", c["node"][i], c["time"][i], (i,), f"✗ {short}", _hover(c, i), reason))
        elif action == "translated" and c["direction"][i] == "in":
            j = c["pair"][i]
            if isinstance(j, int) and 0 <= j < n and (j in inside or rows is None):
                label = _rewrite_label(c, i, j)
                marks.append(Mark("rewrite", c["node"][i], c["time"][i], (i, j), label,
                                  f"<b>{c['node'][i]} rewrote</b> {label}<br>before: {_fields(c, i)}<br>"
                                  f"after: {_fields(c, j)}<br>{c['reason'][i]}"))
    nodes = [c["node"][i] for i in idx]
    return lane_order(nodes), hop_list, marks, lanes


def ladder(trace, max_rows: int = 300, start: int = 0, highlight: int | None = None, lanes: str = "auto",
           title: str | None = None, height: int | None = None) -> Any:
    """A ladder diagram of ``trace``: lanes left to right, time (ms) downward, one arrow per hop.

    More than ``max_rows`` rows are windowed: rows ``start`` to ``start + max_rows - 1`` are drawn
    and the summary says so (and counts the whole trace). ``highlight`` is a row number to
    emphasise (the packet stepper uses it). ``lanes`` is ``"auto"``, ``"nodes"`` or ``"addresses"``.
    """
    trace.require_packets()
    n = len(trace)
    if max_rows < 1:
        raise TraceError(f"max_rows must be at least 1, e.g. 300; got {max_rows}")
    start = max(0, min(int(start), n - 1))
    if highlight is not None and not start <= highlight < start + max_rows:
        start = max(0, min(highlight - max_rows // 2, n - max_rows))
    stop = min(n, start + max_rows)
    window = range(start, stop)
    lane_names, hop_list, marks, mode = hops(trace, window, lanes)
    x_of = {name: k for k, name in enumerate(lane_names)}
    df = trace.df

    data: list[dict] = []
    # lane guide lines
    t_all = df["time"].iloc[start:stop]
    y0, y1 = float(t_all.min()) * 1000, float(t_all.max()) * 1000
    pad = max((y1 - y0) * 0.03, 0.5)
    gx, gy = [], []
    for k in range(len(lane_names)):
        gx += [k, k, None]
        gy += [y0 - pad, y1 + pad, None]
    data.append({"type": "scatter", "x": gx, "y": gy, "mode": "lines", "hoverinfo": "skip",
                 "line": {"color": palette.GREY, "width": 1}, "showlegend": False, "name": "lanes"})

    hl_rows = set()
    if highlight is not None:
        hl_rows = {highlight}
        pair = df["pair"].iat[highlight]
        if isinstance(pair, (int,)) or hasattr(pair, "__index__"):
            if int(pair) >= 0:
                hl_rows.add(int(pair))
    # arrows grouped by protocol (one legend entry each; colour and dash both tell them apart)
    groups: dict[str, dict[str, list]] = {}
    hl_x, hl_y = [], []
    for h in hop_list:
        g = groups.setdefault(h.protocol, {"x": [], "y": [], "size": [], "text": []})
        xa, xb = x_of[h.src_lane], x_of[h.dst_lane]
        ya, yb = h.t0 * 1000, h.t1 * 1000
        g["x"] += [xa, (xa + xb) / 2, xb, None]
        g["y"] += [ya, (ya + yb) / 2, yb, None]
        g["size"] += [0, 0, 11, 0]
        g["text"] += [h.text, h.text, h.text, ""]
        if hl_rows and (h.rows[0] in hl_rows or h.rows[1] in hl_rows):
            hl_x += [xa, xb, None]
            hl_y += [ya, yb, None]
    for m in marks:
        if hl_rows and hl_rows & set(m.rows):
            hl_x += [x_of[m.lane], None]
            hl_y += [m.t * 1000, None]
    if highlight is not None:
        data.append({"type": "scatter", "x": hl_x, "y": hl_y, "mode": "lines+markers", "hoverinfo": "skip",
                     "line": {"color": palette.HIGHLIGHT_COLOR, "width": 12},
                     "marker": {"size": 18, "color": palette.HIGHLIGHT_COLOR,
                                "line": {"color": palette.BLACK, "width": 2}},
                     "name": f"row {highlight}", "showlegend": True})
    for proto in sorted(groups, key=lambda p: (p not in palette.PROTOCOL_COLORS, p)):
        g = groups[proto]
        color = palette.protocol_color(proto)
        data.append({
            "type": "scatter", "x": g["x"], "y": g["y"], "mode": "lines+markers", "name": proto,
            "line": {"color": color, "width": 2, "dash": palette.PROTOCOL_DASH.get(proto, "solid")},
            "marker": {"symbol": "arrow", "angleref": "previous", "size": g["size"], "color": color},
            "hovertext": g["text"], "hoverinfo": "text", "connectgaps": False,
        })
    rewrites = [m for m in marks if m.kind == "rewrite"]
    drops = [m for m in marks if m.kind == "drop"]
    for kind, items, symbol, color, name in (
        ("rewrite", rewrites, "diamond", palette.NAT_COLOR, "NAT rewrite"),
        ("drop", drops, "x-thin-open", palette.DROP_COLOR, "dropped"),
    ):
        if not items:
            continue
        # label each distinct rewrite/drop once (repeats keep their marker and hover text)
        seen: set[tuple[str, str]] = set()
        labels = []
        for m in items:
            key = (m.lane, m.label)
            labels.append("" if key in seen else m.label)
            seen.add(key)
        show_text = sum(1 for x in labels if x) <= 40
        data.append({
            "type": "scatter", "x": [x_of[m.lane] for m in items], "y": [m.t * 1000 for m in items],
            "mode": "markers+text" if show_text else "markers", "name": name,
            "text": labels if show_text else None, "textposition": "middle right",
            "textfont": {"size": 10, "color": color},
            "marker": {"symbol": symbol, "size": 12 if kind == "rewrite" else 14, "color": color,
                       "line": {"width": 3, "color": color}},
            "hovertext": [m.text for m in items], "hoverinfo": "text",
        })

    # lane labels (with addresses when we know them)
    ticktext = [_lane_label(trace, name, mode) for name in lane_names]
    text = _summary(trace, lane_names, hop_list, rewrites, drops, mode, start, stop, max_rows, highlight)
    ttl = title or ("Ladder diagram" + (f": {trace.meta.get('source')}" if trace.meta.get("source") else ""))
    layout = {
        "xaxis": {"tickvals": list(range(len(lane_names))), "ticktext": ticktext, "side": "top",
                  "range": [-0.5, len(lane_names) - 0.3], "showgrid": False, "zeroline": False,
                  "title": {"text": ""}},
        "yaxis": {"title": {"text": "time (ms)"}, "autorange": "reversed", "zeroline": False},
        "height": height or int(min(1600, max(450, 120 + 14 * len(hop_list)))),
        "margin": {"l": 60, "r": 20, "t": 110, "b": 30},
        "legend": {"orientation": "h", "y": -0.02, "yanchor": "top"},
        "hovermode": "closest",
    }
    return make_figure(data, layout, summary_text=text, title=ttl)


def _lane_label(trace, name: str, mode: str) -> str:
    """The lane's name and its own address(es): what a host sends from, what a NAT translates to."""
    if mode == "addresses":
        return name
    df = trace.df
    mine = df[df["node"] == name]
    ips = list(dict.fromkeys(mine.loc[mine["action"] == "sent", "src"].head(50)))
    if not ips:
        out = mine[(mine["action"] == "translated") & (mine["direction"] == "out")].head(50)
        src = df["src"].tolist()
        ips = list(dict.fromkeys(s for s, j in zip(out["src"], out["pair"]) if 0 <= int(j) < len(src) and src[int(j)] != s))
    if not ips:
        ips = list(dict.fromkeys(mine.loc[mine["action"] == "delivered", "dst"].head(50)))
    ips = ips[:2]
    return f"<b>{name}</b><br>{'<br>'.join(ips)}" if ips else f"<b>{name}</b>"


def _summary(trace, lanes, hop_list, rewrites, drops, mode, start, stop, max_rows, highlight) -> str:
    n = len(trace)
    what = "addresses" if mode == "addresses" else "nodes"
    lines = [f"Ladder diagram of {stop - start} packet events ({trace.world} world) between {len(lanes)} {what}: "
             f"{', '.join(lanes)}. {len(hop_list)} arrows, {len(rewrites)} NAT rewrites, {len(drops)} drops."]
    for m in rewrites[:3]:
        lines.append(f"{m.lane} rewrote {m.label} at {m.t * 1000:.1f} ms.")
    reasons = list(dict.fromkeys(f"{m.lane}: {m.reason}" for m in drops))
    for r in reasons[:3]:
        lines.append(f"Dropped at {r}")
    if n > stop - start:
        df = trace.df
        counts = df["protocol"].value_counts()
        lines.append(f"Windowed: showing rows {start}-{stop - 1} of {n} (max_rows={max_rows}); pass start= to "
                     f"move the window. Whole trace: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                     + f", {int((df['action'] == 'dropped').sum())} dropped.")
    if highlight is not None:
        df = trace.df
        lines.append(f"Highlighted row {highlight}: {df['summary'].iat[highlight]} at {df['node'].iat[highlight]} "
                     f"({df['action'].iat[highlight]}).")
    return "\n".join(lines)
