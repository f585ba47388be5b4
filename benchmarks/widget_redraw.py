"""How long one widget interaction takes: re-simulate a punch and redraw a 200-packet ladder.

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

    from p2plab.widgets import NatExplorer, PacketStepper

    explorer = NatExplorer(nat_a="port-restricted-cone", nat_b="symmetric", max_rows=200)
    explorer.punch_button.click()  # warm-up: imports, first DataFrame, plotly
    rows = len(explorer.result.trace)
    punch_ms = []
    for k in range(args.repeat):
        explorer.seed.value = k + 1
        t0 = time.perf_counter()
        explorer.punch_button.click()  # re-simulate + rebuild the 200-packet ladder + display bundle
        punch_ms.append((time.perf_counter() - t0) * 1000)

    stepper = PacketStepper(explorer.result.trace, max_rows=200)
    step_ms = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        stepper.forward.click()  # ladder highlight + NAT table + inspector
        step_ms.append((time.perf_counter() - t0) * 1000)

    def stats(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"median_ms": round(statistics.median(xs), 2), "p95_ms": round(xs[int(0.95 * (len(xs) - 1))], 2),
                "max_ms": round(xs[-1], 2)}

    result = {
        "benchmark": "widget_redraw",
        "ladder_rows": 200,
        "trace_rows": rows,
        "repeat": args.repeat,
        "punch_click": stats(punch_ms),
        "stepper_forward": stats(step_ms),
        "target_ms": TARGET_MS,
    }
    result["ok"] = result["punch_click"]["median_ms"] <= TARGET_MS and result["stepper_forward"]["median_ms"] <= TARGET_MS
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
