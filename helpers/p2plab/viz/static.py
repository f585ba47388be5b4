"""Static pictures of p2plab's plotly figures: SVG text written directly, without a browser.

JupyterLab draws a figure interactively with plotly.js. GitHub, nbviewer, a PDF or a browser with
JavaScript off cannot, so every figure's display bundle also carries ``image/svg+xml`` made here::

    from p2plab import viz
    fig = viz.ladder(trace)
    svg = viz.to_svg(fig)          # a string: <svg ...>...</svg>

This is not a general plotly renderer. It draws what p2plab's figures use: scatter traces
(lines with dashes, markers, text), heatmaps, tables, rectangle and line shapes, annotations,
linear and category axes, titles and a legend. Text stays text (selectable, read by screen
readers), and the picture carries the figure's alt text as its ``<title>``.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

from ..errors import ConfigurationError

DEFAULT_WIDTH = 800
DEFAULT_HEIGHT = 450
FONT = "DejaVu Sans, Arial, sans-serif"
AXIS_COLOR = "#242424"
_PLOTLY_MARGIN = {"l": 80, "r": 80, "t": 100, "b": 80}


# -- small helpers ------------------------------------------------------------------------------

def _num(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _f(v: float) -> str:
    """A coordinate with at most one decimal: small files, stable output."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _esc(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _get(d: Any, *path: str, default: Any = None) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return default
        d = d[k]
    return d


def _dash(dash: str | None, width: float) -> str:
    """plotly's dash patterns (Drawing.dashStyle), scaled by the line width."""
    w = max(width, 3)
    pattern = {"dot": [w, w], "dash": [3 * w, 3 * w], "longdash": [5 * w, 5 * w],
               "dashdot": [3 * w, w, w, w], "longdashdot": [5 * w, 2 * w, w, 2 * w]}.get(dash or "solid")
    return f' stroke-dasharray="{",".join(_f(x) for x in pattern)}"' if pattern else ""


# -- rich text: plotly's small HTML subset (<br>, <b>, <i>, <span style="color:..">) ----------------

_TAG = re.compile(r"<(/?)(b|i|em|span|br|sub|sup)(\s[^>]*)?/?>", re.I)


def _rich_lines(text: Any) -> list[list[tuple[str, dict]]]:
    """Split plotly rich text into lines of (text, style) runs."""
    lines: list[list[tuple[str, dict]]] = [[]]
    stack: list[dict] = [{}]
    pos = 0
    s = str(text if text is not None else "")
    for m in _TAG.finditer(s):
        if m.start() > pos:
            lines[-1].append((html.unescape(s[pos:m.start()]), dict(stack[-1])))
        pos = m.end()
        closing, tag, attrs = m.group(1), m.group(2).lower(), m.group(3) or ""
        if tag == "br":
            lines.append([])
        elif closing:
            if len(stack) > 1:
                stack.pop()
        else:
            style = dict(stack[-1])
            if tag == "b":
                style["bold"] = True
            elif tag in ("i", "em"):
                style["italic"] = True
            elif tag == "span":
                c = re.search(r"color\s*:\s*([#\w(),.\s]+?)\s*(;|\"|'|$)", attrs)
                if c:
                    style["color"] = c.group(1)
            stack.append(style)
    if pos < len(s):
        lines[-1].append((html.unescape(s[pos:]), dict(stack[-1])))
    return lines


def _text_width(text: Any, size: float) -> float:
    """An estimate of a text's width in px (DejaVu Sans averages about 0.6 em per character)."""
    return max((sum(len(t) for t, _ in line) for line in _rich_lines(text)), default=0) * size * 0.6


def _text(x: float, y: float, text: Any, *, size: float = 12, color: str = "#000000", anchor: str = "middle",
          valign: str = "middle", bold: bool = False, rotate: float | None = None) -> str:
    """An SVG <text> of plotly rich text, one <tspan> per line, anchored like plotly's text."""
    lines = _rich_lines(text)
    if not any(t.strip() for line in lines for t, _ in line):
        return ""
    lh = size * 1.3
    n = len(lines)
    if valign == "top":
        first = y + size * 0.8
    elif valign == "bottom":
        first = y - (n - 1) * lh - size * 0.25
    else:
        first = y - (n - 1) * lh / 2 + size * 0.35
    ta = {"left": "start", "right": "end", "center": "middle", "start": "start", "end": "end"}.get(anchor, "middle")
    attrs = f'x="{_f(x)}" y="{_f(first)}" font-size="{_f(size)}" fill="{_esc(color)}" text-anchor="{ta}"'
    if bold:
        attrs += ' font-weight="bold"'
    if rotate:
        attrs += f' transform="rotate({_f(rotate)} {_f(x)} {_f(y)})"'
    out = [f"<text {attrs}>"]
    for k, line in enumerate(lines):
        runs = []
        for t, st in line:
            if not t:
                continue
            a = ""
            if st.get("bold"):
                a += ' font-weight="bold"'
            if st.get("italic"):
                a += ' font-style="italic"'
            if st.get("color"):
                a += f' fill="{_esc(st["color"])}"'
            runs.append(f"<tspan{a}>{_esc(t)}</tspan>" if a else _esc(t))
        dy = "0" if k == 0 else _f(lh)
        out.append(f'<tspan x="{_f(x)}" dy="{dy}">{"".join(runs) or " "}</tspan>')
    out.append("</text>")
    return "".join(out)


# -- colours -----------------------------------------------------------------------------------

def _rgb(c: str) -> tuple[int, int, int]:
    c = c.strip()
    if c.startswith("#") and len(c) == 7:
        return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)
    m = re.match(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)", c)
    if m:
        return tuple(int(float(v)) for v in m.groups())  # type: ignore[return-value]
    return (128, 128, 128)


def _colorscale(scale: Any, t: float) -> str:
    stops = scale if isinstance(scale, list) and scale else [[0, "#FFFFFF"], [1, "#000000"]]
    t = min(1.0, max(0.0, t))
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t0 <= t <= t1:
            u = 0 if t1 == t0 else (t - t0) / (t1 - t0)
            a, b = _rgb(c0), _rgb(c1)
            return "#" + "".join(f"{round(x + (y - x) * u):02X}" for x, y in zip(a, b))
    return stops[-1][1]


# -- axes --------------------------------------------------------------------------------------

class _Axis:
    """Maps data values to pixels along one axis (linear or category)."""

    def __init__(self, spec: dict, lo_px: float, hi_px: float, values: list, flip: bool) -> None:
        self.spec = spec
        self.lo_px, self.hi_px = lo_px, hi_px
        self.flip = flip  # y: larger values go up the screen
        self.categories: list[str] = []
        nums = [_num(v) for v in values]
        if any(isinstance(v, str) and _num(v) is None for v in values) or spec.get("type") == "category":
            for v in values:
                if v is not None and str(v) not in self.categories:
                    self.categories.append(str(v))
        rng = spec.get("range")
        if isinstance(rng, (list, tuple)) and len(rng) == 2 and None not in rng:
            self.r0, self.r1 = float(rng[0]), float(rng[1])
        else:
            if self.categories:
                self.r0, self.r1 = -0.5, len(self.categories) - 0.5
            else:
                finite = [v for v in nums if v is not None] or [0.0, 1.0]
                lo, hi = min(finite), max(finite)
                if spec.get("rangemode") == "tozero":
                    lo, hi = min(lo, 0.0), max(hi, 0.0)
                pad = (hi - lo) * 0.05 or 1.0
                self.r0 = lo if (spec.get("rangemode") == "tozero" and lo == 0) else lo - pad
                self.r1 = hi + pad
            if spec.get("autorange") == "reversed":
                self.r0, self.r1 = self.r1, self.r0

    def value(self, v: Any) -> float | None:
        if self.categories:
            if v is None:
                return None
            if str(v) in self.categories:
                return float(self.categories.index(str(v)))
            return _num(v)
        return _num(v)

    def px(self, v: Any) -> float | None:
        x = self.value(v)
        if x is None or self.r1 == self.r0:
            return None
        u = (x - self.r0) / (self.r1 - self.r0)
        return self.hi_px - u * (self.hi_px - self.lo_px) if self.flip else self.lo_px + u * (self.hi_px - self.lo_px)

    def ticks(self) -> list[tuple[float, str]]:
        spec = self.spec
        if spec.get("tickvals") is not None:
            texts = spec.get("ticktext") or [self._fmt(v) for v in spec["tickvals"]]
            return [(v, str(t)) for v, t in zip(spec["tickvals"], texts)]
        if self.categories:
            return [(k, c) for k, c in enumerate(self.categories)]
        lo, hi = sorted((self.r0, self.r1))
        span = hi - lo
        if span <= 0:
            return []
        raw = span / 6
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
        first = math.ceil(lo / step) * step
        out, v = [], first
        while v <= hi + step * 1e-9:
            out.append((v, self._fmt(v)))
            v += step
        return out

    def _fmt(self, v: Any) -> str:
        x = _num(v)
        if x is None:
            return str(v)
        fmt = self.spec.get("tickformat") or ""
        if fmt.endswith("%"):
            digits = re.search(r"\.(\d+)", fmt)
            return f"{x:.{int(digits.group(1)) if digits else 0}%}"
        if abs(x - round(x)) < 1e-9:
            return f"{int(round(x)):,}"
        return f"{x:g}"


# -- markers -----------------------------------------------------------------------------------

def _marker(symbol: str, x: float, y: float, size: float, color: str, line_color: str | None, line_width: float,
            prev: tuple[float, float] | None) -> str:
    r = size / 2
    stroke = f' stroke="{_esc(line_color)}" stroke-width="{_f(line_width)}"' if line_color and line_width else ""
    fill = f'fill="{_esc(color)}"'
    if symbol.endswith("-open"):
        base = symbol[:-5]
        oc = line_color or color
        ow = line_width or 2
        if base in ("x", "x-thin"):
            return (f'<path d="M{_f(x - r)},{_f(y - r)}L{_f(x + r)},{_f(y + r)}M{_f(x - r)},{_f(y + r)}L{_f(x + r)},{_f(y - r)}" '
                    f'stroke="{_esc(oc)}" stroke-width="{_f(ow)}" fill="none"/>')
        return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" fill="none" stroke="{_esc(oc)}" stroke-width="{_f(ow)}"/>'
    if symbol == "arrow":
        if prev is None:
            return ""
        dx, dy = x - prev[0], y - prev[1]
        d = math.hypot(dx, dy)
        if d == 0:
            return ""
        ux, uy = dx / d, dy / d
        length, half = size * 0.8, size * 0.35
        bx, by = x - ux * length, y - uy * length
        pts = [(x, y), (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]
        return f'<polygon points="{" ".join(f"{_f(a)},{_f(b)}" for a, b in pts)}" {fill}/>'
    if symbol == "square":
        return f'<rect x="{_f(x - r)}" y="{_f(y - r)}" width="{_f(size)}" height="{_f(size)}" {fill}{stroke}/>'
    if symbol == "diamond":
        pts = [(x, y - r * 1.2), (x + r * 1.2, y), (x, y + r * 1.2), (x - r * 1.2, y)]
        return f'<polygon points="{" ".join(f"{_f(a)},{_f(b)}" for a, b in pts)}" {fill}{stroke}/>'
    if symbol == "hexagon":
        pts = [(x + r * math.cos(math.pi / 6 + k * math.pi / 3), y + r * math.sin(math.pi / 6 + k * math.pi / 3))
               for k in range(6)]
        return f'<polygon points="{" ".join(f"{_f(a)},{_f(b)}" for a, b in pts)}" {fill}{stroke}/>'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" {fill}{stroke}/>'


def _per_point(v: Any, k: int, default: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return v[k] if k < len(v) and v[k] is not None else default
    return default if v is None else v


# -- the figure --------------------------------------------------------------------------------

def _spec(fig: Any) -> dict:
    if isinstance(fig, dict):
        return fig
    if hasattr(fig, "to_plotly_json"):
        import plotly.io as pio

        return json.loads(pio.to_json(fig, validate=False))
    raise ConfigurationError(f"to_svg needs a plotly figure or its dict (data, layout); got {type(fig).__name__}")


def to_svg(fig: Any, width: int | None = None) -> str:
    """An SVG picture (text) of a p2plab figure, made without a browser: for GitHub, nbviewer, PDFs.

    ``fig`` is a figure from ``p2plab.viz`` (or its plotly JSON as a dict). ``width`` in px
    defaults to the figure's own width or 800. The SVG has a ``<title>`` with the figure's alt text.
    """
    spec = _spec(fig)
    data = list(spec.get("data") or [])
    layout = dict(spec.get("layout") or {})
    W = float(width or layout.get("width") or DEFAULT_WIDTH)
    H = float(layout.get("height") or DEFAULT_HEIGHT)
    m = dict(_PLOTLY_MARGIN)
    m.update({k: v for k, v in (layout.get("margin") or {}).items() if k in m and _num(v) is not None})
    L, R, T, B = m["l"], W - m["r"], m["t"], H - m["b"]
    if R - L < 50:
        L, R = 10, W - 10
    base_size = float(_get(layout, "font", "size", default=12))
    meta = layout.get("meta")
    meta = meta[0] if isinstance(meta, list) and meta else meta
    alt = str((meta or {}).get("alt") or (meta or {}).get("summary") or _get(layout, "title", "text", default="figure"))

    tables = [t for t in data if t.get("type") == "table"]
    xs_vals: list = []
    ys_vals: list = []
    for t in data:
        if t.get("type") in ("scatter", "heatmap", None):
            xs_vals += [v for v in (t.get("x") or [])]
            ys_vals += [v for v in (t.get("y") or [])]
    xspec = dict(layout.get("xaxis") or {})
    yspec = dict(layout.get("yaxis") or {})
    xa = _Axis(xspec, L, R, xs_vals, flip=False)
    ya = _Axis(yspec, T, B, ys_vals, flip=True)

    def XY(x: Any, y: Any, xref: str = "x", yref: str = "y") -> tuple[float | None, float | None]:
        px = L + float(x) * (R - L) if xref == "paper" and _num(x) is not None else xa.px(x)
        py = B - float(y) * (B - T) if yref == "paper" and _num(y) is not None else ya.px(y)
        return px, py

    below: list[str] = []
    body: list[str] = []
    above: list[str] = []
    # shapes (with the template's defaults: simple_white draws them at opacity 0.3)
    shape_defaults = _get(layout, "template", "layout", "shapedefaults", default={})
    for s in layout.get("shapes") or []:
        s = {**shape_defaults, **s}
        x0, y0 = XY(s.get("x0"), s.get("y0"), s.get("xref", "x"), s.get("yref", "y"))
        x1, y1 = XY(s.get("x1"), s.get("y1"), s.get("xref", "x"), s.get("yref", "y"))
        if None in (x0, y0, x1, y1):
            continue
        ln = s.get("line") or {}
        lw = float(ln.get("width", 2) if ln.get("width") is not None else 2)
        stroke = f' stroke="{_esc(ln.get("color", "#444444"))}" stroke-width="{_f(lw)}"{_dash(ln.get("dash"), lw)}' if lw else ""
        op = f' opacity="{s["opacity"]}"' if s.get("opacity") is not None else ""
        if s.get("type") == "rect":
            el = (f'<rect x="{_f(min(x0, x1))}" y="{_f(min(y0, y1))}" width="{_f(abs(x1 - x0))}" '
                  f'height="{_f(abs(y1 - y0))}" fill="{_esc(s.get("fillcolor") or "none")}"{stroke}{op}/>')
        elif s.get("type") == "line":
            stroke = stroke or ' stroke="#444444"'
            el = f'<line x1="{_f(x0)}" y1="{_f(y0)}" x2="{_f(x1)}" y2="{_f(y1)}"{stroke}{op}/>'
        else:
            continue
        (below if s.get("layer") == "below" else above).append(el)

    legend: list[tuple[str, dict]] = []
    for t in data:
        kind = t.get("type") or "scatter"
        if kind == "scatter":
            body.append(_scatter(t, xa, ya, base_size))
            if t.get("showlegend") is not False and t.get("name") and t.get("visible", True) is True:
                legend.append((str(t["name"]), t))
        elif kind == "heatmap":
            body.append(_heatmap(t, xa, ya, layout, R, T, B))
        elif kind == "table":
            body.append(_table(t, L, R, T, B))

    # axes
    axes: list[str] = []
    if not tables:
        axes += _axis_svg(xa, "x", xspec, L, R, T, B, base_size)
        axes += _axis_svg(ya, "y", yspec, L, R, T, B, base_size)

    # annotations
    for a in layout.get("annotations") or []:
        px, py = XY(a.get("x", 0.5), a.get("y", 0.5), a.get("xref", "x"), a.get("yref", "y"))
        if px is None or py is None:
            continue
        px += float(a.get("xshift") or 0)
        py -= float(a.get("yshift") or 0)
        size = float(_get(a, "font", "size", default=base_size))
        color = _get(a, "font", "color", default="#000000")
        if a.get("showarrow", True):
            ax, ay = float(a.get("ax", -10)), float(a.get("ay", -30))
            above.append(f'<line x1="{_f(px + ax)}" y1="{_f(py + ay)}" x2="{_f(px)}" y2="{_f(py)}" stroke="#444444"/>')
            px, py = px + ax, py + ay
        xanchor = a.get("xanchor", "center")
        xanchor = "center" if xanchor == "auto" else xanchor
        yanchor = {"top": "top", "bottom": "bottom"}.get(a.get("yanchor", "middle"), "middle")
        above.append(_text(px, py, a.get("text", ""), size=size, color=color, anchor=xanchor, valign=yanchor))

    # title
    title = layout.get("title") or {}
    title = {"text": title} if isinstance(title, str) else title
    head = ""
    if title.get("text"):
        tsize = float(_get(title, "font", "size", default=base_size + 5))
        tx = float(title.get("x", 0.05) if title.get("x") is not None else 0.05) * W
        anchor = title.get("xanchor", "left")
        anchor = "left" if anchor == "auto" else anchor
        ty = float(_get(title, "pad", "t", default=8)) + 2
        head = _text(tx, ty, title["text"], size=tsize, anchor=anchor, valign="top")

    # legend: one row (or more) under the figure, each name with its line or marker
    show_legend = layout.get("showlegend")
    if show_legend is None:
        show_legend = len(legend) > 1
    foot: list[str] = []
    extra = 0.0
    if show_legend and legend:
        x, row = 10.0, 0
        under_plot = xspec.get("side") == "top" or xspec.get("visible") is False  # the bottom margin is free: plotly puts the legend there
        items = []
        for name, t in legend:
            w = 40 + _text_width(name, base_size) + 16
            if x + w > W - 10 and x > 10:
                x, row = 10.0, row + 1
            items.append((x, row, name, t))
            x += w
        top = B + 8 if under_plot and H - B >= (row + 1) * 22 + 8 else H + 4
        extra = max(0.0, top + (row + 1) * 22 + 4 - H)
        for x, row, name, t in items:
            y = top + row * 22 + 11
            foot.append(_legend_sample(t, x, y))
            foot.append(_text(x + 36, y, name, size=base_size, anchor="left"))
    total_h = H + extra

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(W)}" height="{_f(total_h)}" '
           f'viewBox="0 0 {_f(W)} {_f(total_h)}" role="img" aria-label="{_esc(alt)}" '
           f'font-family="{FONT}" style="background:#FFFFFF;max-width:100%;height:auto">',
           f"<title>{_esc(alt)}</title>",
           f'<rect width="{_f(W)}" height="{_f(total_h)}" fill="#FFFFFF"/>']
    out += below + axes + [b for b in body if b] + above + [head] + foot
    out.append("</svg>")
    return "\n".join(x for x in out if x)


def _axis_svg(ax: _Axis, which: str, spec: dict, L: float, R: float, T: float, B: float, size: float) -> list[str]:
    if spec.get("visible") is False:
        return []
    out: list[str] = []
    tsize = float(_get(spec, "tickfont", "size", default=size))
    if which == "x":
        top = spec.get("side") == "top"
        y = T if top else B
        if spec.get("showline", True):
            out.append(f'<line x1="{_f(L)}" y1="{_f(y)}" x2="{_f(R)}" y2="{_f(y)}" stroke="{AXIS_COLOR}"/>')
        ticks = [(ax.px(v), label) for v, label in ax.ticks()]
        ticks = [(px, label) for px, label in ticks if px is not None and L - 1 <= px <= R + 1]
        gaps = [b - a for (a, _), (b, _) in zip(ticks, ticks[1:])]
        widest = max((_text_width(label, tsize) for _, label in ticks), default=0.0)
        tilt = bool(gaps) and widest > 0.95 * min(abs(g) for g in gaps)  # crowded: tilt them, as plotly does
        for px, label in ticks:
            if spec.get("ticks", "outside") == "outside":
                out.append(f'<line x1="{_f(px)}" y1="{_f(y)}" x2="{_f(px)}" y2="{_f(y - 5 if top else y + 5)}" stroke="{AXIS_COLOR}"/>')
            if tilt:
                out.append(_text(px, y - 8 if top else y + 8, label, size=tsize, anchor="left" if top else "right",
                                 rotate=-30))
            else:
                out.append(_text(px, y - 8 if top else y + 8, label, size=tsize, valign="bottom" if top else "top"))
        t = _get(spec, "title", "text")
        if t:
            n = max((len(_rich_lines(label)) for _, label in ticks), default=1)
            off = 14 + (widest * 0.5 + tsize if tilt else n * tsize * 1.3)
            out.append(_text((L + R) / 2, y - off if top else y + off, t, size=size + 2,
                             valign="bottom" if top else "top"))
    else:
        if spec.get("showline", True):
            out.append(f'<line x1="{_f(L)}" y1="{_f(T)}" x2="{_f(L)}" y2="{_f(B)}" stroke="{AXIS_COLOR}"/>')
        widest = 0.0
        for v, label in ax.ticks():
            py = ax.px(v)
            if py is None or py < T - 1 or py > B + 1:
                continue
            if spec.get("ticks", "outside") == "outside":
                out.append(f'<line x1="{_f(L - 5)}" y1="{_f(py)}" x2="{_f(L)}" y2="{_f(py)}" stroke="{AXIS_COLOR}"/>')
            out.append(_text(L - 8, py, label, size=tsize, anchor="right"))
            widest = max(widest, _text_width(label, tsize))
        t = _get(spec, "title", "text")
        if t:
            x = max(14.0, L - 24 - widest)
            out.append(_text(x, (T + B) / 2, t, size=size + 2, rotate=-90))
    return out


def _scatter(t: dict, xa: _Axis, ya: _Axis, base_size: float) -> str:
    mode = t.get("mode") or "lines+markers"
    xs, ys = list(t.get("x") or []), list(t.get("y") or [])
    pts = [(xa.px(x), ya.px(y)) for x, y in zip(xs, ys)]
    out: list[str] = []
    op = f' opacity="{t["opacity"]}"' if t.get("opacity") is not None else ""
    if "lines" in mode:
        ln = t.get("line") or {}
        lw = float(ln.get("width", 2))
        color = ln.get("color", "#444444")
        seg: list[tuple[float, float]] = []
        paths = []
        for p in pts + [(None, None)]:
            if p[0] is None or p[1] is None:
                if len(seg) > 1:
                    paths.append("M" + "L".join(f"{_f(a)},{_f(b)}" for a, b in seg))
                seg = []
            else:
                seg.append(p)  # type: ignore[arg-type]
        if paths:
            out.append(f'<path d="{"".join(paths)}" fill="none" stroke="{_esc(color)}" stroke-width="{_f(lw)}"'
                       f'{_dash(ln.get("dash"), lw)} stroke-linejoin="round"{op}/>')
    if "markers" in mode:
        mk = t.get("marker") or {}
        mline = mk.get("line") or {}
        default_color = mk.get("color") if isinstance(mk.get("color"), str) else _get(t, "line", "color", default="#1F77B4")
        for k, (px, py) in enumerate(pts):
            if px is None or py is None:
                continue
            size = float(_per_point(mk.get("size"), k, 6))
            if size <= 0:
                continue
            prev = pts[k - 1] if k and pts[k - 1][0] is not None and pts[k - 1][1] is not None else None
            out.append(_marker(str(_per_point(mk.get("symbol"), k, "circle")), px, py, size,
                               str(_per_point(mk.get("color"), k, default_color)),
                               mline.get("color"), float(mline.get("width") or 0), prev))  # type: ignore[arg-type]
    if "text" in mode:
        tf = t.get("textfont") or {}
        texts = t.get("text")
        msize = float(_get(t, "marker", "size", default=6)) if "markers" in mode and not isinstance(
            _get(t, "marker", "size"), list) else 0
        for k, (px, py) in enumerate(pts):
            if px is None or py is None:
                continue
            txt = _per_point(texts, k, "")
            if not txt:
                continue
            pos = str(_per_point(t.get("textposition"), k, "middle center"))
            v, _, h = pos.partition(" ")
            h = h or "center"
            gap = msize / 2 + 3 if msize else 0
            x = px + (gap if h == "right" else -gap if h == "left" else 0)
            y = py + (gap if v == "bottom" else -gap if v == "top" else 0)
            anchor = {"right": "left", "left": "right"}.get(h, "center")
            valign = {"bottom": "top", "top": "bottom"}.get(v, "middle")
            out.append(_text(x, y, txt, size=float(_per_point(tf.get("size"), k, base_size)),
                             color=str(_per_point(tf.get("color"), k, "#000000")), anchor=anchor, valign=valign))
    return "\n".join(x for x in out if x)


def _heatmap(t: dict, xa: _Axis, ya: _Axis, layout: dict, R: float, T: float, B: float) -> str:
    z = t.get("z") or []
    xs = t.get("x") or list(range(max((len(r) for r in z), default=0)))
    ys = t.get("y") or list(range(len(z)))
    zs = [v for row in z for v in row if _num(v) is not None]
    zmin = _num(t.get("zmin")) if _num(t.get("zmin")) is not None else (min(zs) if zs else 0)
    zmax = _num(t.get("zmax")) if _num(t.get("zmax")) is not None else (max(zs) if zs else 1)
    xgap, ygap = float(t.get("xgap") or 0), float(t.get("ygap") or 0)
    texts = t.get("text") or []
    out: list[str] = []
    size = float(_get(t, "textfont", "size", default=_get(layout, "font", "size", default=12)))
    for i, (yv, row) in enumerate(zip(ys, z)):
        for j, (xv, v) in enumerate(zip(xs, row)):
            cx, cy = xa.px(xv), ya.px(yv)
            if cx is None or cy is None:
                continue
            hx = abs((xa.px(xa.value(xv) + 0.5) or cx) - cx)  # type: ignore[operator]
            hy = abs((ya.px(ya.value(yv) + 0.5) or cy) - cy)  # type: ignore[operator]
            if _num(v) is not None:
                u = 0 if zmax == zmin else (float(v) - zmin) / (zmax - zmin)
                out.append(f'<rect x="{_f(cx - hx + xgap / 2)}" y="{_f(cy - hy + ygap / 2)}" '
                           f'width="{_f(2 * hx - xgap)}" height="{_f(2 * hy - ygap)}" '
                           f'fill="{_colorscale(t.get("colorscale"), u)}"/>')
            label = texts[i][j] if i < len(texts) and j < len(texts[i]) else ""
            if label and "%{text}" in str(t.get("texttemplate", "%{text}")):
                out.append(_text(cx, cy, label, size=size))
    if t.get("showscale", True) is not False and zs:  # a small colour bar of stacked bands
        bx, steps, top, bottom = R + 20, 20, T, B
        hstep = (bottom - top) / steps
        for k in range(steps):
            u = 1 - (k + 0.5) / steps
            out.append(f'<rect x="{_f(bx)}" y="{_f(top + k * hstep)}" width="14" height="{_f(hstep + 0.5)}" '
                       f'fill="{_colorscale(t.get("colorscale"), u)}"/>')
        cb = t.get("colorbar") or {}
        tv = cb.get("tickvals") or [zmin, zmax]
        tt = cb.get("ticktext") or [f"{v:g}" for v in tv]
        for v, label in zip(tv, tt):
            u = 0 if zmax == zmin else (float(v) - zmin) / (zmax - zmin)
            out.append(_text(bx + 18, bottom - u * (bottom - top), label, size=11, anchor="left"))
    return "\n".join(out)


def _table(t: dict, L: float, R: float, T: float, B: float) -> str:
    header = t.get("header") or {}
    cells = t.get("cells") or {}
    cols = list(cells.get("values") or [])
    heads = list(header.get("values") or [])
    n = max(len(cols), len(heads))
    if n == 0:
        return ""
    widths = list(t.get("columnwidth") or [1] * n)
    widths = (widths + [widths[-1]] * n)[:n]
    total = sum(widths)
    xs = [L]
    for w in widths:
        xs.append(xs[-1] + (R - L) * w / total)
    fsize = float(_get(cells, "font", "size", default=12))
    hsize = float(_get(header, "font", "size", default=12))
    line_h = float(cells.get("height") or 20)
    out: list[str] = []
    y = T
    hh = max(float(header.get("height") or 28),
             max((len(_rich_lines(h)) for h in heads), default=1) * hsize * 1.3 + 8)
    hfill = _get(header, "fill", "color", default="#DDDDDD")
    for j in range(n):
        out.append(f'<rect x="{_f(xs[j])}" y="{_f(y)}" width="{_f(xs[j + 1] - xs[j])}" height="{_f(hh)}" '
                   f'fill="{_esc(hfill if isinstance(hfill, str) else "#DDDDDD")}" stroke="#FFFFFF"/>')
        if j < len(heads):
            out.append(_text(xs[j] + 5, y + hh / 2, heads[j], size=hsize, anchor="left"))
    y += hh
    nrows = max((len(c) for c in cols), default=0)
    fills = _get(cells, "fill", "color", default="#FFFFFF")
    for i in range(nrows):
        lines = max((len(_rich_lines(c[i])) for c in cols if i < len(c)), default=1)
        rh = max(line_h, lines * fsize * 1.3 + 8)
        for j in range(n):
            fill = fills
            if isinstance(fills, list):
                fill = fills[j] if j < len(fills) else "#FFFFFF"
                if isinstance(fill, list):
                    fill = fill[i] if i < len(fill) else "#FFFFFF"
            out.append(f'<rect x="{_f(xs[j])}" y="{_f(y)}" width="{_f(xs[j + 1] - xs[j])}" height="{_f(rh)}" '
                       f'fill="{_esc(str(fill))}" stroke="#BBBBBB" stroke-width="0.5"/>')
            if j < len(cols) and i < len(cols[j]):
                out.append(_text(xs[j] + 5, y + 4, cols[j][i], size=fsize, anchor="left", valign="top"))
        y += rh
    return "\n".join(out)


def _legend_sample(t: dict, x: float, y: float) -> str:
    mode = t.get("mode") or "lines+markers"
    out = []
    if "lines" in mode:
        ln = t.get("line") or {}
        lw = min(float(ln.get("width", 2)), 6)
        out.append(f'<line x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x + 30)}" y2="{_f(y)}" stroke="{_esc(ln.get("color", "#444444"))}" '
                   f'stroke-width="{_f(lw)}"{_dash(ln.get("dash"), lw)}/>')
    if "markers" in mode:
        mk = t.get("marker") or {}
        color = mk.get("color") if isinstance(mk.get("color"), str) else _get(t, "line", "color", default="#444444")
        symbol = mk.get("symbol") if isinstance(mk.get("symbol"), str) else "circle"
        mline = mk.get("line") or {}
        out.append(_marker(symbol, x + 30 if symbol == "arrow" else x + 15, y, 10, str(color), mline.get("color"),
                           float(mline.get("width") or 0), (x, y) if symbol == "arrow" else None))
    return "".join(out)


# -- widgets -----------------------------------------------------------------------------------

class StaticPictureMixin:
    """For p2plab's widgets: a saved output that still says and shows something without a kernel.

    A widget's output holds only a view id, which GitHub, nbviewer, a PDF or a page with
    JavaScript off cannot draw. Mixed into a widget class (before the ipywidgets base) that keeps
    its current figure in ``self.figure``, this adds a static SVG of that figure and replaces the
    truncated constructor repr in ``text/plain`` with words: the widget's name and the figure's
    summary. In JupyterLab the live widget is still what shows (its renderer ranks first).
    """

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if not isinstance(data, dict):
            return data
        from . import summary

        fig = getattr(self, "figure", None)
        words = [f"{type(self).__name__}: an interactive widget; run this notebook in JupyterLab to use it."]
        if fig is not None:
            text = summary(fig)
            if text:
                words.append("Its figure now: " + text)
            try:
                data["image/svg+xml"] = to_svg(fig)
            except Exception as exc:  # the live widget must still show if the picture cannot be drawn
                import warnings

                warnings.warn(f"p2plab could not draw a static picture of this widget's figure ({exc!r})",
                              stacklevel=2)
        data["text/plain"] = "\n".join(words)
        return data
