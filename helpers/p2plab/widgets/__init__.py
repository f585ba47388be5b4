"""Interactive widgets over the pure figures of ``p2plab.viz`` (ipywidgets; keyboard usable).

* ``NatExplorer()`` - pick Alice's and Bob's NAT behaviour, press Punch, see the ladder and why.
* ``PacketStepper(trace)`` - step forward/back through a trace; ladder, NAT table and inspector follow.
* ``CostExplorer()`` - sliders for users, bitrate, $/GB and relayed share; the relay bill updates.

Each is an ``ipywidgets.VBox``: show it by leaving it last in a cell. Their callbacks are plain
methods, so tests drive them by setting ``.value`` and calling ``Button.click()``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "NatExplorer": "p2plab.widgets.explorer",
    "PacketStepper": "p2plab.widgets.stepper",
    "CostExplorer": "p2plab.widgets.cost",
    "show_figure": "p2plab.widgets.explorer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'p2plab.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
