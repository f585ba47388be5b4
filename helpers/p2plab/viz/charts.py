"""Charts: the relay bill, the hole-punching matrix, the birthday-paradox curve, ICE candidate pairs."""

from __future__ import annotations

import math
from typing import Any

from ..errors import ConfigurationError
from . import make_figure, palette

# Tailscale's calculation (github.com/danderson/nat-birthday-paradox) uses ports 1025-65535.
PORT_SPACE = 65535 - 1025 + 1


def _pct(p: float) -> str:
    return f"{p:.2%}" if 0.995 < p < 1 else f"{p:.1%}"


# -- relay cost ---------------------------------------------------------------------------------

def relay_cost_chart(users: int = 1000, bitrate_mbps: float = 2.0, price_per_gb: float = 0.05,
                     relayed_fraction: float = 1.0, max_users: int | None = None, hours_per_day: float = 24.0,
                     days: float = 30.0, charge_ingress: bool = False) -> Any:
    """The monthly relay bill against the number of users, with your choice marked."""
    from ..costs import relay_cost

    chosen = relay_cost(users, bitrate_mbps, price_per_gb, relayed_fraction, hours_per_day, days, charge_ingress)
    top = max(10, int(max_users or max(users * 2, 100)))
    xs = [round(top * k / 50) for k in range(51)]
    data = []
    fractions = [1.0] if relayed_fraction == 1.0 else [1.0, relayed_fraction]
    for frac, color, dash in zip(fractions, (palette.VERMILLION, palette.BLUE), ("dash", "solid")):
        ys = [relay_cost(x, bitrate_mbps, price_per_gb, frac, hours_per_day, days, charge_ingress).monthly_cost
              for x in xs]
        data.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": f"{frac:.0%} relayed",
                     "line": {"color": color, "dash": dash, "width": 3},
                     "hovertemplate": "%{x} users: $%{y:,.0f}/month<extra></extra>"})
    data.append({"type": "scatter", "x": [users], "y": [chosen.monthly_cost], "mode": "markers+text",
                 "name": "your choice", "text": [f"${chosen.monthly_cost:,.0f}/month"], "textposition": "top left",
                 "marker": {"size": 14, "color": palette.BLACK, "symbol": "circle"},
                 "hovertext": [chosen.describe().replace("\n", "<br>")], "hoverinfo": "text"})
    layout = {"xaxis": {"title": {"text": "users"}, "rangemode": "tozero"},
              "yaxis": {"title": {"text": f"bill per {days:g} days ($)"}, "rangemode": "tozero"},
              "height": 380, "legend": {"orientation": "h", "y": -0.2}}
    return make_figure(data, layout, summary_text="Relay cost. " + chosen.describe(),
                       title=f"Relay bill: {bitrate_mbps:g} Mbit/s per user at ${price_per_gb:g}/GB")


# -- hole punching matrix -----------------------------------------------------------------------

def punch_heatmap(results: list[dict[str, Any]], title: str | None = None) -> Any:
    """Which NAT pairs get a direct path: rows Alice's NAT, columns Bob's (``python -m p2plab matrix``).

    ``results`` are dicts with nat_a, nat_b, direct (bool), packets, time, reason. Several
    results for one pair (different seeds) give a success rate.
    """
    if not results:
        raise ConfigurationError("punch_heatmap needs results: run p2plab.matrix.run_matrix() or "
                                 "`python -m p2plab matrix --format json` first")
    names_a = list(dict.fromkeys(r["nat_a"] for r in results))
    names_b = list(dict.fromkeys(r["nat_b"] for r in results))
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        cells.setdefault((r["nat_a"], r["nat_b"]), []).append(r)
    z, text, hover = [], [], []
    for a in names_a:
        zr, tr, hr = [], [], []
        for b in names_b:
            rs = cells.get((a, b), [])
            if not rs:
                zr.append(None)
                tr.append("")
                hr.append(f"{a} x {b}: not run")
                continue
            rate = sum(bool(r["direct"]) for r in rs) / len(rs)
            zr.append(rate)
            first = rs[0]
            if len(rs) == 1:
                label = (f"✓ direct<br>{first.get('packets', '?')} pkts" + (
                    f", {first['time'] * 1000:.0f} ms" if first.get("time") is not None else "")
                    if first["direct"] else "✗ relay")
            else:
                label = f"{rate:.0%} direct"
            tr.append(label)
            hr.append(f"<b>alice behind {a}, bob behind {b}</b><br>{label}<br>{first.get('reason', '')}")
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    data = [{"type": "heatmap", "z": z, "x": names_b, "y": names_a, "text": text, "texttemplate": "%{text}",
             "hovertext": hover, "hoverinfo": "text", "zmin": 0, "zmax": 1, "xgap": 2, "ygap": 2,
             "colorscale": [[0, palette.ORANGE], [1, palette.SKY_BLUE]],
             "colorbar": {"title": {"text": "direct"}, "tickvals": [0, 1], "ticktext": ["relay", "direct"]}}]
    yes_no = all(v in (0, 1, None) for row in z for v in row)
    annotations = []
    if yes_no:  # two colours, two words: a legend, not a continuous colour bar
        data[0]["showscale"] = False
        annotations.append({"xref": "paper", "yref": "paper", "x": 1, "y": 1, "yanchor": "bottom", "xanchor": "right",
                            "yshift": 52, "showarrow": False, "align": "right", "font": {"size": 12},
                            "text": f'<span style="color:{palette.SKY_BLUE}">■</span> direct path   '
                                    f'<span style="color:{palette.ORANGE}">■</span> relay needed'})
    n_direct = sum(1 for r in results if r["direct"])
    lines = [f"{title or 'Hole punching matrix'}: {n_direct} of {len(results)} NAT pairs got a direct path "
             f"(rows: alice's NAT; columns: bob's NAT)."]
    failed = [f"{a} x {b}" for (a, b), rs in cells.items() if not any(r["direct"] for r in rs)]
    if failed:
        lines.append("No direct path: " + ", ".join(failed) + ".")
    layout = {"xaxis": {"title": {"text": "bob's NAT"}, "side": "top"},
              "yaxis": {"title": {"text": "alice's NAT"}, "autorange": "reversed"},
              "height": 140 + 70 * len(names_a), "margin": {"l": 170, "t": 150}, "annotations": annotations}
    return make_figure(data, layout, summary_text="\n".join(lines), title=title or "Does hole punching work?")


# -- birthday paradox ---------------------------------------------------------------------------

def port_guess_probability(probes: int, open_ports: int = 256, port_space: int = PORT_SPACE,
                           hard_both: bool = False) -> float:
    """P(at least one of ``probes`` random distinct guesses hits one of ``open_ports`` open ports).

    1 - prod_{i=0}^{probes-1} (N - k - i) / (N - i), with N the port space (ports 1025-65535 by
    default, as in Tailscale's "How NAT traversal works") and k the open ports. With
    ``hard_both`` (both NATs endpoint-dependent) the search space is pairs of ports, N**2.
    """
    if probes < 0 or open_ports < 0:
        raise ConfigurationError(f"probes and open_ports must be >= 0; got {probes}, {open_ports}")
    n = port_space * port_space if hard_both else port_space
    if open_ports > n:
        raise ConfigurationError(f"open_ports ({open_ports}) cannot exceed the port space ({n})")
    if probes > n - open_ports:
        return 1.0
    log_miss = 0.0
    for i in range(probes):
        log_miss += math.log1p(-open_ports / (n - i))
    return 1.0 - math.exp(log_miss)


def probes_for(probability: float, open_ports: int = 256, port_space: int = PORT_SPACE) -> int:
    """The fewest random probes that reach ``probability`` of at least one hit."""
    if not 0 < probability < 1:
        raise ConfigurationError(f"probability must be between 0 and 1 (exclusive); got {probability}")
    log_miss, target = 0.0, math.log1p(-probability)
    for i in range(port_space - open_ports + 1):
        log_miss += math.log1p(-open_ports / (port_space - i))
        if log_miss <= target:
            return i + 1
    return port_space - open_ports + 1


def birthday_curve(open_ports: int = 256, max_probes: int = 4096, port_space: int = PORT_SPACE,
                   marks: tuple[int, ...] = (174, 256, 1024, 2048)) -> Any:
    """P(success) of guessing a hard NAT's port against the number of probes, ``open_ports`` open."""
    step = max(1, max_probes // 400)
    xs = list(range(0, max_probes + 1, step))
    if xs[-1] != max_probes:
        xs.append(max_probes)
    ys, miss, prev = [], 0.0, 0
    for x in xs:  # incremental product: O(max_probes)
        for i in range(prev, x):
            miss += math.log1p(-open_ports / (port_space - i))
        prev = x
        ys.append(1.0 - math.exp(miss))
    marks = tuple(m for m in marks if m <= max_probes)
    mp = [port_guess_probability(m, open_ports, port_space) for m in marks]
    data = [
        {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": "P(at least one hit)",
         "line": {"color": palette.BLUE, "width": 3},
         "hovertemplate": "%{x} probes: %{y:.1%}<extra></extra>"},
        {"type": "scatter", "x": list(marks), "y": mp, "mode": "markers+text", "name": "marked",
         "text": [f"{m}: {_pct(p)}" for m, p in zip(marks, mp)], "textposition": "bottom right",
         "marker": {"size": 10, "color": palette.VERMILLION, "symbol": "diamond"},
         "hovertemplate": "%{x} probes: %{y:.2%}<extra></extra>"},
    ]
    lines = [f"Birthday paradox for port guessing: {open_ports} open ports on the hard side among {port_space} "
             f"ports, random probes from the easy side."]
    lines.append("; ".join(f"{m} probes: {_pct(p)}" for m, p in zip(marks, mp)) + ".")
    layout = {"xaxis": {"title": {"text": "probes sent by the easy side"}},
              "yaxis": {"title": {"text": "probability of at least one hit"}, "range": [0, 1.02],
                        "tickformat": ".0%"},
              "height": 380, "showlegend": False}
    return make_figure(data, layout, summary_text="\n".join(lines),
                       title=f"Guessing ports: {open_ports} open ports on the hard NAT")


# -- ICE candidate pairs ------------------------------------------------------------------------

ICE_COLUMNS = ["local", "remote", "type", "priority", "state"]


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(str(text), width) or [""]


def ice_pairs_table(pairs: list[dict[str, Any]], title: str | None = None) -> Any:
    """The ICE checklist as a table a learner can read: one row per pair, best priority first.

    Columns: rank, the pair's candidate types, its addresses, its state (★ selected, valid,
    nominated), the checks sent and why it ended so. Every row is visible (no scrolling).
    """
    rows = sorted(pairs, key=lambda p: -int(p.get("priority", 0) or 0))
    why_width = 46
    cols: dict[str, list[str]] = {"#": [], "pair": [], "local → remote": [], "state": [], "checks": [], "why": []}
    heights = []
    for k, p in enumerate(rows, 1):
        kind = p.get("type") or f"{p.get('local_type', '?')}-{p.get('remote_type', '?')}"
        state = str(p.get("state", ""))
        marks = [x for x, on in (("★ selected", p.get("selected")), ("nominated", p.get("nominated") and not p.get("selected")),
                                 ("valid", p.get("valid") and not p.get("selected"))) if on]
        why = _wrap(p.get("why", ""), why_width)
        cols["#"].append(str(k))
        cols["pair"].append(f"<b>{kind}</b>" if p.get("selected") else str(kind))
        cols["local → remote"].append(f"{p.get('local', '')}<br>→ {p.get('remote', '')}")
        cols["state"].append("<br>".join([state] + marks))
        cols["checks"].append(str(p.get("checks_sent", "")))
        cols["why"].append("<br>".join(why))
        heights.append(max(2, len(why), 1 + len(marks)))
    fill = [palette.STATUS_COLORS.get(str(p.get("state", "")).lower(), "#FFFFFF") for p in rows]
    line_px = 17
    data = [{"type": "table", "columnwidth": [0.35, 1.0, 1.9, 1.05, 0.6, 3.2],
             "header": {"values": [f"<b>{c}</b>" for c in cols], "fill": {"color": "#DDDDDD"}, "align": "left",
                        "font": {"size": 12, "color": palette.BLACK}, "height": 24},
             "cells": {"values": list(cols.values()), "fill": {"color": [fill] * len(cols)}, "align": "left",
                       "font": {"size": 12, "color": palette.BLACK}, "height": line_px + 2}}]
    states: dict[str, int] = {}
    for p in rows:
        states[str(p.get("state", "?"))] = states.get(str(p.get("state", "?")), 0) + 1
    lines = [f"ICE candidate pairs: {len(rows)} (" + ", ".join(f"{v} {k}" for k, v in states.items()) + ")."]
    chosen = [p for p in rows if p.get("selected")] or [p for p in rows if p.get("nominated")]
    ok = [p for p in rows if str(p.get("state", "")).lower() == "succeeded"]
    if chosen:
        best = chosen[0]
        lines.append(f"Selected pair: {best.get('local')} -> {best.get('remote')} ({best.get('type')}, "
                     f"priority {best.get('priority')}).")
    elif ok:
        best = ok[0]
        lines.append(f"Highest-priority succeeded pair: {best.get('local')} -> {best.get('remote')} "
                     f"({best.get('type')}, priority {best.get('priority')}).")
    body = sum(h * line_px + 8 for h in heights)
    layout = {"height": 60 + 24 + body + 20, "margin": {"l": 10, "r": 10, "t": 50, "b": 10}}
    return make_figure(data, layout, summary_text="\n".join(lines), title=title or "ICE candidate pairs")
