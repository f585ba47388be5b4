"""Figures of packets, NATs and costs: pure functions that return plotly figures (or HTML).

Every figure carries a short text summary (``summary(fig)``), also shown as the figure's plain
text, so screen readers, terminals and nbval's text comparison all get words, not pixels::

    from p2plab import viz
    fig = viz.ladder(trace)
    print(viz.summary(fig))

plotly is imported only inside the functions, so ``import p2plab.viz`` stays fast; in a Jupyter
kernel this module switches plotly to the ``plotly_mimetype`` renderer, which JupyterLab draws
with the ``jupyterlab-plotly`` extension shipped inside the ``plotly`` package.
"""

from __future__ import annotations

import copy
import json
from typing import Any

_FIGURE_CLASS: Any = None


def figure_class() -> type:
    """``SummaryFigure``: a ``plotly.graph_objects.Figure`` whose plain-text form is its summary."""
    global _FIGURE_CLASS
    if _FIGURE_CLASS is None:
        import plotly.graph_objects as go

        class SummaryFigure(go.Figure):
            """A plotly Figure that shows its text summary as text/plain (nbval, terminals, screen readers)."""

            def __repr__(self) -> str:
                return summary(self) or super().__repr__()

            def _repr_mimebundle_(self, include=None, exclude=None, validate=True, **kwargs):
                return mimebundle(self)

            def _ipython_display_(self) -> None:
                # plotly's own display hook would go through plotly.io's renderers (and import
                # nbformat and jsonschema, seconds in a fresh kernel); this bundle is exactly what
                # the plotly_mimetype renderer sends, plus the text summary as text/plain.
                from IPython.display import display

                display(mimebundle(self), raw=True)

        _FIGURE_CLASS = SummaryFigure
    return _FIGURE_CLASS


def make_figure(data: list | None = None, layout: dict | None = None, *, summary_text: str,
                title: str = "", alt: str | None = None) -> Any:
    """Build a figure (without per-property validation, for speed) that carries a summary and alt text."""
    cls = figure_class()
    layout = dict(layout or {})
    meta = dict(layout.pop("meta", None) or {})
    meta.update({"summary": summary_text, "alt": alt or summary_text.split("\n", 1)[0]})
    layout["meta"] = meta
    if title:
        layout.setdefault("title", {"text": title})
    layout.setdefault("template", _template("simple_white"))
    layout.setdefault("font", {"family": "DejaVu Sans, Arial, sans-serif", "size": 12})
    # the figures are our own dicts: plotly's per-property validators would cost a widget redraw
    # most of its 100 ms, so they are skipped (the template is expanded here, once, instead)
    return cls(data=data or [], layout=layout, _validate=False)


_TEMPLATES: dict[str, dict] = {}


def _template(name: str) -> dict:
    """A plotly template as a plain dict (what plotly.js needs), expanded once per session."""
    if name not in _TEMPLATES:
        import plotly.io as pio

        _TEMPLATES[name] = pio.templates[name].to_plotly_json()
    return copy.deepcopy(_TEMPLATES[name])


def summary(obj: Any) -> str:
    """The text summary of a figure (or of any p2plab view object) for screen readers and tests."""
    layout = getattr(obj, "layout", None)
    if layout is not None:
        meta = layout.meta
        if isinstance(meta, dict):
            return str(meta.get("summary", ""))
        if isinstance(meta, (list, tuple)) and meta and isinstance(meta[0], dict):
            return str(meta[0].get("summary", ""))
        return ""
    if isinstance(obj, dict) and "layout" in obj:
        return str((obj["layout"].get("meta") or {}).get("summary", ""))
    if hasattr(obj, "summary") and isinstance(obj.summary, str):
        return obj.summary
    if hasattr(obj, "text_summary"):
        return obj.text_summary()
    caption = getattr(obj, "caption", None)  # pandas Styler
    return str(caption or "")


def mimebundle(fig: Any, static: bool = True) -> dict:
    """The Jupyter display bundle of a figure: plotly JSON, a static SVG picture and the summary as text.

    JupyterLab draws the plotly JSON (its plotly renderer ranks above the SVG one); GitHub, nbviewer,
    nbconvert's HTML and PDF, and a browser with JavaScript off show the SVG (``p2plab.viz.static``,
    made without a browser). ``static=False`` leaves the SVG out.
    """
    import plotly.io as pio

    spec = json.loads(pio.to_json(fig, validate=False, remove_uids=False))
    spec["config"] = {"displaylogo": False, "responsive": True}
    bundle = {"application/vnd.plotly.v1+json": spec, "text/plain": summary(fig)}
    if static:
        try:
            bundle["image/svg+xml"] = to_svg(spec)
        except Exception as exc:  # the interactive figure must still show if the picture cannot be drawn
            import warnings

            warnings.warn(f"p2plab could not draw a static picture of this figure ({exc!r}); "
                          "the interactive figure and its text summary are still shown", stacklevel=2)
    return bundle


def use_mimetype_renderer() -> None:
    """Make plotly draw through JupyterLab's plotly mimetype renderer (``plotly_mimetype``)."""
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype"


# The figure functions. Their modules import nothing heavy at import time. Importing the
# functions *after* the submodules makes ``viz.ladder`` and ``viz.nat_table`` the functions,
# not the modules of the same name.
from .charts import birthday_curve, ice_pairs_table, port_guess_probability, punch_heatmap, relay_cost_chart  # noqa: E402
from .inspector import changed_bytes, hexdump, inspect_packet, xor_mapped_address_steps  # noqa: E402
from .ladder import column_order, ladder, lane_order, messages  # noqa: E402
from .nat_table import nat_table, nat_table_changes, nat_table_from_trace  # noqa: E402
from .static import to_svg  # noqa: E402
from .topology_fig import topology  # noqa: E402

__all__ = [
    "ladder", "messages", "column_order", "lane_order", "topology", "nat_table", "nat_table_changes", "nat_table_from_trace",
    "inspect_packet", "xor_mapped_address_steps", "hexdump", "changed_bytes", "relay_cost_chart",
    "punch_heatmap", "birthday_curve", "port_guess_probability", "ice_pairs_table", "summary",
    "mimebundle", "to_svg", "make_figure", "figure_class", "use_mimetype_renderer", "palette",
]
