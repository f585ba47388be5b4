"""The NAT behaviour explorer: choose how each NAT maps and filters, punch, and read why."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..nat import ALLOCATIONS, BEHAVIOURS, PRESETS, NatBehavior, preset
from ..viz import ladder, mimebundle, summary
from ..viz.static import StaticPictureMixin

CUSTOM = "custom"
_SHORT = {"endpoint-independent": "EI", "address-dependent": "AD", "address-and-port-dependent": "APD"}
# RFC 4787 section 4.1 (mapping) and 5 (filtering), in a few words
MAPPING_WORDS = {
    "endpoint-independent": "one public port for every destination",
    "address-dependent": "a new public port for every destination address",
    "address-and-port-dependent": "a new public port for every destination address and port",
}
FILTERING_WORDS = {
    "endpoint-independent": "lets anyone in to a mapped port",
    "address-dependent": "lets in only addresses it has sent to",
    "address-and-port-dependent": "lets in only the address and port it has sent to",
}


STALE_CSS = "<style>.p2plab-stale { opacity: 0.35; filter: grayscale(1); }</style>"


def nat_line(who: str, behavior: NatBehavior) -> str:
    """One short line about one NAT: its name, how it maps and how it filters."""
    return (f"{who.capitalize()}'s NAT ({behavior.name}): {MAPPING_WORDS[behavior.mapping]}; "
            f"{FILTERING_WORDS[behavior.filtering]}.")


def verdict(result: Any, a: NatBehavior, b: NatBehavior) -> str:
    """One sentence: did the punch work, and if not the main reason, in words."""
    if result.direct:
        when = f" in {result.time * 1000:.0f} ms" if result.time is not None else ""
        return f"Direct path: Alice and Bob punched through{when}, after {result.packets} punch packets."
    hard = [(who, other, beh) for who, other, beh in (("Alice", "Bob", a), ("Bob", "Alice", b))
            if beh.mapping != "endpoint-independent"]
    if hard:
        who, other, _ = hard[-1]
        return (f"No direct path: {who}'s NAT gives {who} a new port for every destination, so {other} "
                f"punches a port that {who}'s NAT never opened for {other}.")
    reason = str(getattr(result, "reason", ""))
    for nat, who in (("nat-b", "Bob"), ("nat-a", "Alice")):
        if f"{nat} dropped" in reason:
            return f"No direct path: {who}'s NAT dropped every punch that reached it."
    return "No direct path: neither side heard the other's punches."


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


class NatExplorer(StaticPictureMixin, W.VBox):
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
        self.stale = False
        self.sentence = ""
        self._shown = ""
        self.punch_button.on_click(self._on_punch)
        for side in (self.alice, self.bob):
            for w in (side.preset, side.mapping, side.filtering, side.allocation):
                w.observe(self._mark_stale, names="value")
        self.seed.observe(self._mark_stale, names="value")
        controls = W.HBox([self.alice, self.bob], layout=W.Layout(flex_flow="row wrap"))
        style = W.HTML(STALE_CSS, layout=W.Layout(display="none"))  # fades a stale result
        super().__init__([style, controls, W.HBox([self.seed, self.punch_button], layout=W.Layout(flex_flow="row wrap")),
                          self.outcome, self.figure_out])
        self.add_class("p2plab-nat-explorer")
        if auto:
            self.punch()

    def _on_punch(self, _button: Any = None) -> None:
        self.punch()

    def _mark_stale(self, _change: Any = None) -> None:
        """A control changed: the result shown is no longer the one the controls describe."""
        if self.result is None or self.stale:
            return
        self.stale = True
        self.figure_out.add_class("p2plab-stale")
        self.outcome.value = ('<div role="status" aria-live="polite" class="p2plab-stale-note">'
                              "<p><b>Settings changed: press Punch to run this pair.</b> The faded result "
                              f"below is for {html.escape(self._shown)}.</p></div>")

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
        self.stale = False
        self._shown = f"alice behind {a.name}, bob behind {b.name}"
        self.figure_out.remove_class("p2plab-stale")
        self.sentence = verdict(result, a, b)
        head = "DIRECT PATH" if result.direct else "NO DIRECT PATH (relay needed)"
        colour = "#009E73" if result.direct else "#D55E00"
        why = "".join(f"<li>{html.escape(x.strip())}</li>" for x in str(result.reason).removeprefix(
            "no direct path. ").split(" | "))
        self.outcome.value = (f'<div role="status" aria-live="polite"><p><b style="color:{colour}">'
                              f"{'✓' if result.direct else '✗'} {head}</b>: "
                              f"{html.escape(self.sentence.split(': ', 1)[1])}</p>"
                              f"<p style=\"margin:0\">{html.escape(nat_line('alice', a))}<br>"
                              f"{html.escape(nat_line('bob', b))}</p>"
                              f"<details><summary>Why, packet by packet</summary><ul>{why}</ul></details></div>")
        if result.trace is not None and len(result.trace):
            self.figure = ladder(result.trace, max_rows=self.max_rows,
                                 title=f"Punch: alice behind {a.name}, bob behind {b.name}")
            show_figure(self.figure_out, self.figure)
        return result

    @property
    def text(self) -> str:
        """What the widget shows, as plain text: the verdict, one line per NAT, the ladder's summary."""
        if self.result is None:
            return "no punch yet"
        if self.stale:
            return f"Settings changed: press Punch to run this pair. The result shown is for {self._shown}."
        a, b = self.alice.behavior(), self.bob.behavior()
        return "\n".join([self.sentence, nat_line("alice", a), nat_line("bob", b)]
                         + ([summary(self.figure)] if self.figure is not None else []))
