"""Step through a trace one row at a time: the ladder highlights the row, the NAT table and the
packet inspector follow."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..viz import inspect_packet, ladder, nat_table_from_trace
from ..viz.static import StaticPictureMixin
from .explorer import show_figure, show_html


class PacketStepper(StaticPictureMixin, W.VBox):
    """Forward/back through ``trace`` (a Trace, or a Network / PunchResult that has one)."""

    def __init__(self, trace: Any, start: int = 0, max_rows: int = 120, timeout: float | None = None) -> None:
        trace = getattr(trace, "trace", trace)
        trace.require_packets()
        self.trace = trace
        self.max_rows = max_rows
        self.timeout = timeout
        n = len(trace)
        self.back = W.Button(description="◀ Back", tooltip="previous packet event (row)", layout=W.Layout(width="110px"))
        self.forward = W.Button(description="Forward ▶", tooltip="next packet event (row)", layout=W.Layout(width="110px"))
        self.row = W.IntSlider(value=max(0, min(start, n - 1)), min=0, max=n - 1, description="row",
                               continuous_update=False, layout=W.Layout(width="420px"))
        self.caption = W.HTML(layout=W.Layout(min_height="2.5em"))
        self.ladder_out = W.Output()
        self.nat_out = W.Output()
        self.inspector_out = W.Output()
        self.tabs = W.Tab(children=[self.nat_out, self.inspector_out])
        self.tabs.set_title(0, "NAT tables")
        self.tabs.set_title(1, "Packet inspector")
        self.figure: Any = None
        self.view: Any = None
        self.table: Any = None
        self.back.on_click(lambda _b: self.step(-1))
        self.forward.on_click(lambda _b: self.step(1))
        self.row.observe(lambda ch: self.show(ch["new"]), names="value")
        super().__init__([W.HBox([self.back, self.row, self.forward]), self.caption, self.ladder_out, self.tabs])
        self.add_class("p2plab-packet-stepper")
        self.show(self.row.value)

    def step(self, delta: int) -> None:
        """Move ``delta`` rows (clamped to the trace)."""
        self.row.value = max(0, min(len(self.trace) - 1, self.row.value + delta))

    def show(self, i: int) -> None:
        """Draw everything for row ``i``."""
        df = self.trace.df
        r = df.iloc[i]
        self.back.disabled = i == 0
        self.forward.disabled = i == len(df) - 1
        why = f" — {html.escape(str(r['reason']))}" if r["reason"] else ""
        self.caption.value = (f'<p role="status" aria-live="polite">Row {i} of {len(df) - 1}: t={r["time"] * 1000:.3f} ms, '
                              f"<b>{html.escape(str(r['node']))}</b> {html.escape(str(r['action']))} "
                              f"{html.escape(str(r['summary']))} ({html.escape(str(r['src']))}:{r['sport']} → "
                              f"{html.escape(str(r['dst']))}:{r['dport']}){why}</p>")
        self.figure = ladder(self.trace, max_rows=self.max_rows, highlight=i)
        show_figure(self.ladder_out, self.figure)
        self.table = nat_table_from_trace(self.trace, upto=i, timeout=self.timeout)
        if len(self.table):
            from ..viz import nat_table

            styled = nat_table(self.table, caption=f"Mappings the NATs hold after row {i}")
            show_html(self.nat_out, styled.to_html(), self.table.to_string(index=False))
        else:
            show_html(self.nat_out, "<p>No NAT has translated anything yet.</p>", "No NAT mappings yet.")
        self.view = inspect_packet(self.trace, i)
        show_html(self.inspector_out, self.view._repr_html_(), self.view.text())
