"""NAT translation tables over time, styled so new and expired mappings stand out.

Colour is never the only signal: a ``status`` column says ``new``, ``kept``, ``changed`` or
``expired`` in words, and expired rows are also struck through.
"""

from __future__ import annotations

from typing import Any

from ..addresses import fmt
from ..errors import TraceError
from . import palette

KEY = ["proto", "inside", "outside"]


def _snapshots(obj: Any) -> list[tuple[Any, Any]]:
    """Normalise a DataFrame / list of DataFrames / list of (time, df) / {time: df} to [(time, df)]."""
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return [(None, obj)]
    if isinstance(obj, dict):
        return sorted(obj.items(), key=lambda kv: kv[0])
    out = []
    for k, item in enumerate(obj):
        if isinstance(item, pd.DataFrame):
            out.append((k, item))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], pd.DataFrame):
            out.append((item[0], item[1]))
        else:
            raise TraceError("nat_table() takes a DataFrame (net.nat_table('nat-a')), a list of them, a list of "
                             f"(time, DataFrame) snapshots or a {{time: DataFrame}} dict; got an item {item!r}")
    return out


def nat_table_changes(df_or_snapshots: Any, now: float | None = None) -> Any:
    """One DataFrame with a ``snapshot`` and a ``status`` column (new / kept / changed / expired).

    Each snapshot is compared with the one before by (proto, inside, outside): rows that appear
    are ``new``, rows that disappear are listed once more as ``expired``, rows whose remotes or
    counters moved are ``changed``. With a single table and ``now``, rows whose ``expires`` is
    past are ``expired``.
    """
    import pandas as pd

    snaps = _snapshots(df_or_snapshots)
    frames = []
    prev = None
    for when, df in snaps:
        df = df.copy()
        given = df.pop("status").tolist() if "status" in df.columns else None
        key_cols = [c for c in KEY if c in df.columns] or list(df.columns[:2])
        keys = [tuple(r) for r in df[key_cols].itertuples(index=False)]
        status = []
        if prev is None:
            status = given if given and len(snaps) == 1 else ["new" if len(snaps) > 1 else "live"] * len(df)
        else:
            pkeys = {tuple(r[key_cols]): r for _, r in prev.iterrows()}
            for k, (_, row) in zip(keys, df.iterrows()):
                old = pkeys.get(k)
                if old is None:
                    status.append("new")
                else:
                    same = all(str(old.get(c)) == str(row.get(c)) for c in df.columns if c in old.index)
                    status.append("kept" if same else "changed")
        if now is not None and "expires" in df.columns:
            status = ["expired" if e <= now else s for s, e in zip(status, df["expires"])]
        df.insert(0, "status", status)
        df.insert(0, "snapshot", when)
        if prev is not None:
            gone = prev[~prev[key_cols].apply(tuple, axis=1).isin(keys)].copy()
            if len(gone):
                gone.insert(0, "status", "expired")
                gone.insert(0, "snapshot", when)
                df = pd.concat([df, gone], ignore_index=True)
        frames.append(df)
        prev = snaps[len(frames) - 1][1]
    if not frames:
        return pd.DataFrame(columns=["snapshot", "status", *KEY])
    out = pd.concat(frames, ignore_index=True)
    if len(snaps) == 1 and snaps[0][0] is None:
        out = out.drop(columns="snapshot")
    return out


def _summary(changes, n_snap: int) -> str:
    counts = changes["status"].value_counts()
    parts = [f"{counts[s]} {s}" for s in ("new", "changed", "kept", "live", "expired") if s in counts]
    lines = [f"NAT table ({n_snap} snapshot{'s' if n_snap != 1 else ''}): " + (", ".join(parts) or "no mappings") + "."]
    for _, r in changes[changes["status"].isin(["new", "expired"])].head(6).iterrows():
        if "inside" in r and "outside" in r:
            lines.append(f"{r['status']}: {r['inside']} -> {r['outside']}"
                         + (f" (remote {r['remote']})" if r.get("remote") else ""))
    return "\n".join(lines)


def nat_table(df_or_snapshots: Any, now: float | None = None, caption: str | None = None) -> Any:
    """A styled table (pandas Styler) of NAT mappings in which new and expired entries stand out.

    Takes ``net.nat_table('nat-a')``, a list of such tables taken at different times (or
    ``(time, table)`` pairs / a ``{time: table}`` dict). ``p2plab.viz.summary(styler)`` gives
    its text summary (also the caption).
    """
    changes = nat_table_changes(df_or_snapshots, now)
    text = _summary(changes, len(_snapshots(df_or_snapshots)))  # empty snapshots count too

    def row_style(row):
        status = row["status"]
        css = f"background-color: {palette.STATUS_COLORS.get(status, '#FFFFFF')}; color: #000000"
        if status == "expired":
            css += "; text-decoration: line-through"
        if status == "new":
            css += "; font-weight: bold"
        return [css] * len(row)

    shown = changes.copy()
    for col in ("snapshot", "created", "expires"):  # times in ms, like every axis and ladder
        if col in shown.columns and shown[col].dtype.kind == "f":
            shown[col] = shown[col] * 1000
            shown = shown.rename(columns={col: f"{col} (ms)"})
    styler = shown.style.apply(row_style, axis=1).hide(axis="index")
    styler = styler.format({c: "{:,.0f}" for c in shown.columns if c.endswith("(ms)")}, na_rep="")
    # the full summary is the figure's alt text (viz.summary); the caption is its first line only
    styler = styler.set_caption(caption or text.split("\n", 1)[0])
    styler = styler.set_table_styles([
        {"selector": "", "props": "font-size: 12px; max-width: 100%; border-collapse: collapse"},
        {"selector": "td, th", "props": "padding: 2px 6px; white-space: nowrap"},
        {"selector": "th.col_heading", "props": "white-space: normal"},
        {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: bold"},
    ])
    if "remote" in shown.columns:  # the one long column wraps, so the table fits its notebook column
        styler = styler.set_properties(subset=["remote"], **{"white-space": "normal", "min-width": "12em"})
    styler = styler.set_table_attributes('class="p2plab-nat-table" aria-label="NAT translation table" '
                                         'style="display: block; overflow-x: auto"')
    styler.summary = text  # type: ignore[attr-defined]
    return styler


def nat_table_from_trace(trace, nat: str | None = None, upto: int | None = None,
                         timeout: float | None = None) -> Any:
    """The mappings a NAT must have had, reconstructed from the rewrites in a trace.

    Every ``translated`` pair is one use of a mapping: a changed source is outbound (inside ->
    outside), a changed destination inbound. ``upto`` stops at that row (the stepper uses it);
    ``timeout`` (seconds) marks mappings idle that long as expired. Columns: nat, proto,
    inside, outside, remote, created, last_used, packets_out, packets_in, status.
    """
    import pandas as pd

    df = trace.df
    stop = len(df) if upto is None else min(len(df), upto + 1)
    now = float(df["time"].iat[stop - 1]) if stop else 0.0
    c = {col: df[col].tolist() for col in ("node", "src", "sport", "dst", "dport", "protocol", "action",
                                            "direction", "pair", "time")}
    maps: dict[tuple, dict] = {}
    for i in range(stop):
        if c["action"][i] != "translated" or c["direction"][i] != "in":
            continue
        if nat is not None and c["node"][i] != nat:
            continue
        j = c["pair"][i]
        if not (isinstance(j, int) and 0 <= j < len(df)):
            continue
        before_src, after_src = (c["src"][i], c["sport"][i]), (c["src"][j], c["sport"][j])
        before_dst, after_dst = (c["dst"][i], c["dport"][i]), (c["dst"][j], c["dport"][j])
        proto = "TCP" if c["protocol"][i] == "TCP" else "UDP"
        if before_src != after_src:
            key = (c["node"][i], proto, fmt(before_src), fmt(after_src))
            remote, out = fmt(before_dst), True
        elif before_dst != after_dst:
            key = (c["node"][i], proto, fmt(after_dst), fmt(before_dst))
            remote, out = fmt(before_src), False
        else:
            continue
        m = maps.setdefault(key, {"created": c["time"][i], "last_out": c["time"][i], "remotes": [],
                                  "packets_out": 0, "packets_in": 0, "last_row": i})
        m["last_row"] = i
        if out:
            m["packets_out"] += 1
            m["last_out"] = c["time"][i]
            if remote not in m["remotes"]:
                m["remotes"].append(remote)
        else:
            m["packets_in"] += 1
    rows = []
    for (node, proto, inside, outside), m in maps.items():
        status = "live"
        if upto is not None and m["last_row"] >= stop - 2:
            status = "new" if m["packets_out"] + m["packets_in"] == 1 else "changed"
        if timeout is not None and m["last_out"] + timeout <= now:
            status = "expired"
        rows.append({"nat": node, "proto": proto, "inside": inside, "outside": outside,
                     "remote": ", ".join(m["remotes"]), "created": round(m["created"], 6),
                     "last_used": round(m["last_out"], 6), "packets_out": m["packets_out"],
                     "packets_in": m["packets_in"], "status": status})
    cols = ["nat", "proto", "inside", "outside", "remote", "created", "last_used", "packets_out", "packets_in", "status"]
    return pd.DataFrame(rows, columns=cols)
