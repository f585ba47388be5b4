"""How long one widget interaction takes, for every widget: NatExplorer (Punch, a control change),
PacketStepper (Forward, a slider jump) and CostExplorer (a slider move).

Target: <= 100 ms per interaction (median), so clicking Punch or stepping feels immediate.
Prints one JSON object. Run: python benchmarks/widget_redraw.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

TARGET_MS = 100.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)

    from p2plab.widgets import CostExplorer, NatExplorer, PacketStepper

    def timed(action, setup=None) -> list[float]:
        out = []
        for k in range(args.repeat):
            if setup is not None:
                setup(k)
            t0 = time.perf_counter()
            action(k)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    explorer = NatExplorer(nat_a="port-restricted-cone", nat_b="symmetric", max_rows=200)
    explorer.punch_button.click()  # warm-up: imports, first DataFrame, plotly
    rows = len(explorer.result.trace)

    def punch(k: int) -> None:
        explorer.seed.value = k + 1  # (marks the result stale; the click redraws it)
        explorer.punch_button.click()  # re-simulate + rebuild the ladder + display bundle

    punch_ms = timed(punch)
    presets = ["full-cone", "symmetric"]
    control_ms = timed(lambda k: setattr(explorer.bob.preset, "value", presets[k % 2]),
                       setup=lambda k: explorer.punch_button.click())  # a fresh result, then a change: stale

    stepper = PacketStepper(explorer.result.trace, max_rows=200)
    step_ms = timed(lambda k: stepper.forward.click())  # ladder highlight + NAT table + inspector
    n = len(stepper.trace)
    jump_ms = timed(lambda k: setattr(stepper.row, "value", (k * 37) % n))

    cost = CostExplorer()
    cost_ms = timed(lambda k: setattr(cost.users, "value", 1000 + 50 * (k + 1)))

    def stats(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"median_ms": round(statistics.median(xs), 2), "p95_ms": round(xs[int(0.95 * (len(xs) - 1))], 2),
                "max_ms": round(xs[-1], 2)}

    result = {
        "benchmark": "widget_redraw",
        "ladder_rows": 200,
        "trace_rows": rows,
        "repeat": args.repeat,
        "nat_explorer_punch": stats(punch_ms),
        "nat_explorer_control_change": stats(control_ms),
        "stepper_forward": stats(step_ms),
        "stepper_slider_jump": stats(jump_ms),
        "cost_explorer_slider": stats(cost_ms),
        "target_ms": TARGET_MS,
    }
    result["ok"] = all(v["median_ms"] <= TARGET_MS for v in result.values() if isinstance(v, dict))
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
