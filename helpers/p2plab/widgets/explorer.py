"""The NAT behaviour explorer: choose how each NAT maps and filters, punch, and read why."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..nat import ALLOCATIONS, BEHAVIOURS, PRESETS, NatBehavior, preset
from ..viz import ladder, mimebundle, summary

CUSTOM = "custom"
_SHORT = {"endpoint-independent": "EI", "address-dependent": "AD", "address-and-port-dependent": "APD"}


def show_figure(out: W.Output, fig: Any) -> None:
    """Put a figure into an Output widget as a display bundle (plotly JSON + text summary).

    Setting ``outputs`` directly works with and without a running kernel, so tests can read it.
    """
    out.outputs = ({"output_type": "display_data", "data": mimebundle(fig), "metadata": {}},)


def show_html(out: W.Output, markup: str, text: str = "") -> None:
    out.outputs = ({"output_type": "display_data", "data": {"text/html": markup, "text/plain": text or markup},
                    "metadata": {}},)


class NatSide(W.VBox):
    """Preset, mapping, filtering and port allocation for one NAT (Alice's or Bob's)."""

    def __init__(self, who: str, initial: str = "port-restricted-cone") -> None:
        base = preset(initial)
        style = {"description_width": "110px"}
        self.who = who
        self.preset = W.Dropdown(options=[*PRESETS, CUSTOM], value=base.name, description=f"{who}'s NAT",
                                 style=style, layout=W.Layout(width="340px"))
        self.mapping = W.Dropdown(options=list(BEHAVIOURS), value=base.mapping, description="mapping",
                                  style=style, layout=W.Layout(width="340px"))
        self.filtering = W.Dropdown(options=list(BEHAVIOURS), value=base.filtering, description="filtering",
                                    style=style, layout=W.Layout(width="340px"))
        self.allocation = W.Dropdown(options=list(ALLOCATIONS), value=base.port_allocation,
                                     description="port allocation", style=style, layout=W.Layout(width="340px"))
        self._syncing = False
        self.preset.observe(self._preset_changed, names="value")
        for w in (self.mapping, self.filtering, self.allocation):
            w.observe(self._knob_changed, names="value")
        super().__init__([W.HTML(f"<b>{html.escape(who)}</b>"), self.preset, self.mapping, self.filtering,
                          self.allocation])

    def _preset_changed(self, change: dict) -> None:
        if change["new"] == CUSTOM:
            return
        b = PRESETS[change["new"]]
        self._syncing = True
        try:
            self.mapping.value, self.filtering.value, self.allocation.value = b.mapping, b.filtering, b.port_allocation
        finally:
            self._syncing = False

    def _knob_changed(self, change: dict) -> None:
        if self._syncing or self.preset.value == CUSTOM:
            return
        b = PRESETS[self.preset.value]
        if (self.mapping.value, self.filtering.value, self.allocation.value) != (b.mapping, b.filtering, b.port_allocation):
            self.preset.value = CUSTOM

    def behavior(self) -> NatBehavior:
        """The NatBehavior these controls describe."""
        if self.preset.value != CUSTOM:
            return PRESETS[self.preset.value]
        return NatBehavior(self.mapping.value, self.filtering.value, port_allocation=self.allocation.value,
                           port_range=(32768, 60999) if self.allocation.value == "random" else (1024, 65535),
                           name=f"custom {_SHORT[self.mapping.value]}M+{_SHORT[self.filtering.value]}F")


class NatExplorer(W.VBox):
    """Pick Alice's and Bob's NATs, press **Punch**: a real simulated punch, its ladder and its outcome.

    ``runner(nat_a, nat_b, seed=...)`` defaults to ``p2plab.punch.run_punch``.
    """

    def __init__(self, nat_a: str = "port-restricted-cone", nat_b: str = "symmetric", seed: int = 0,
                 max_rows: int = 200, runner: Callable[..., Any] | None = None, auto: bool = False) -> None:
        self.alice = NatSide("alice", nat_a)
        self.bob = NatSide("bob", nat_b)
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed",
                                     style={"description_width": "110px"}, layout=W.Layout(width="220px"))
        self.punch_button = W.Button(description="Punch", button_style="primary", icon="bolt",
                                     tooltip="run a hole punch between alice and bob in the simulator")
        self.outcome = W.HTML(value="<p>Choose the two NATs and press <b>Punch</b>.</p>",
                              layout=W.Layout(min_height="3em"))
        self.figure_out = W.Output(layout=W.Layout(min_height="40px"))
        self.max_rows = max_rows
        self._runner = runner
        self.result: Any = None
        self.figure: Any = None
        self.punch_button.on_click(self._on_punch)
        super().__init__([W.HBox([self.alice, self.bob]), W.HBox([self.seed, self.punch_button]), self.outcome,
                          self.figure_out])
        self.add_class("p2plab-nat-explorer")
        if auto:
            self.punch()

    def _on_punch(self, _button: Any = None) -> None:
        self.punch()

    def punch(self) -> Any:
        """Run the punch with the current settings; update the outcome and the ladder. Returns the result."""
        runner = self._runner
        if runner is None:
            from ..punch import run_punch as runner
        a, b = self.alice.behavior(), self.bob.behavior()
        self.punch_button.disabled = True
        try:
            result = runner(a, b, seed=int(self.seed.value))
        except Exception as exc:  # show the learner, do not lose the widget
            self.outcome.value = f'<p role="alert"><b>Error:</b> {html.escape(str(exc))}</p>'
            self.result = None
            raise
        finally:
            self.punch_button.disabled = False
        self.result = result
        verdict = "DIRECT PATH" if result.direct else "NO DIRECT PATH (relay needed)"
        colour = "#009E73" if result.direct else "#D55E00"
        detail = (f" after {result.packets} punch packets in {result.time * 1000:.0f} ms"
                  if result.direct and result.time is not None else "")
        self.outcome.value = (f'<div role="status" aria-live="polite"><p><b style="color:{colour}">'
                              f"{'✓' if result.direct else '✗'} {verdict}</b>{detail} "
                              f"({html.escape(a.name)} × {html.escape(b.name)})</p>"
                              f"<p>{html.escape(result.reason)}</p></div>")
        if result.trace is not None and len(result.trace):
            self.figure = ladder(result.trace, max_rows=self.max_rows,
                                 title=f"Punch: alice behind {a.name}, bob behind {b.name}")
            show_figure(self.figure_out, self.figure)
        return result

    @property
    def text(self) -> str:
        """The outcome and the ladder summary as plain text."""
        if self.result is None:
            return "no punch yet"
        return str(self.result) + ("\n" + summary(self.figure) if self.figure is not None else "")
