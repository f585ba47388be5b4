"""The relay-cost explorer: sliders for users, bitrate, price and the share that needs the relay."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..costs import relay_cost
from ..viz import relay_cost_chart
from ..viz.static import StaticPictureMixin
from .explorer import show_figure


class CostExplorer(StaticPictureMixin, W.VBox):
    """How much does relaying cost? Move the sliders; the bill and the chart follow."""

    def __init__(self, users: int = 1000, bitrate_mbps: float = 2.0, price_per_gb: float = 0.05,
                 relayed_fraction: float = 1.0) -> None:
        style = {"description_width": "150px"}
        wide = W.Layout(width="480px", max_width="100%")
        self.users = W.IntSlider(value=users, min=0, max=max(20000, users), step=50, description="users",
                                 continuous_update=False, style=style, layout=wide)
        self.bitrate = W.FloatSlider(value=bitrate_mbps, min=0.1, max=max(20.0, bitrate_mbps), step=0.1,
                                     description="Mbit/s per user", continuous_update=False, style=style, layout=wide)
        self.price = W.BoundedFloatText(value=price_per_gb, min=0.0, max=10.0, step=0.01, description="$ per GB",
                                        style=style, layout=W.Layout(width="260px"))
        self.relayed = W.FloatSlider(value=relayed_fraction, min=0.0, max=1.0, step=0.01, readout_format=".0%",
                                     description="share relayed", continuous_update=False, style=style, layout=wide)
        self.result_html = W.HTML()
        self.figure_out = W.Output()
        self.cost: Any = None
        self.figure: Any = None
        for w in (self.users, self.bitrate, self.price, self.relayed):
            w.observe(lambda _ch: self.update(), names="value")
        super().__init__([self.users, self.bitrate, self.price, self.relayed, self.result_html, self.figure_out])
        self.add_class("p2plab-cost-explorer")
        self.update()

    def update(self) -> None:
        """Recompute the bill and redraw."""
        self.cost = relay_cost(self.users.value, self.bitrate.value, self.price.value, self.relayed.value)
        lines = self.cost.describe().split("\n")
        self.result_html.value = ('<div role="status" aria-live="polite">'
                                  + "".join(f"<p>{html.escape(x)}</p>" for x in lines) + "</div>")
        self.figure = relay_cost_chart(self.users.value, self.bitrate.value, self.price.value, self.relayed.value)
        show_figure(self.figure_out, self.figure)
