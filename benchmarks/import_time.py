"""How long a cold ``import p2plab`` takes: the median over N fresh Python processes.

Each run starts a new interpreter (so nothing is cached in memory) and times only the import
statement, inside that process, with ``time.perf_counter``. The target is 0.3 s: heavy libraries
(scapy, pandas, plotly) must load only when first used.

    python benchmarks/import_time.py            # 15 runs, JSON on stdout
    python benchmarks/import_time.py -n 30 --check   # exit status 1 when the median misses the target
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys

TARGET_S = 0.3
HEAVY = ("scapy", "pandas", "plotly", "numpy", "ipywidgets")

PROBE = f"""
import sys, time, json
t0 = time.perf_counter()
import {{module}}
dt = time.perf_counter() - t0
print(json.dumps({{{{"seconds": dt, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}}}))
"""


def one_run(module: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(module=module)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--runs", type=int, default=15, help="fresh processes to time (default 15)")
    ap.add_argument("--module", default="p2plab", help="module to import (default p2plab)")
    ap.add_argument("--target", type=float, default=TARGET_S, help=f"target median in seconds (default {TARGET_S})")
    ap.add_argument("--check", action="store_true", help="exit with status 1 if the median misses the target")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    one_run(args.module)  # warm the disk cache so the first timed run is not an outlier
    runs = [one_run(args.module) for _ in range(args.runs)]
    times = [r["seconds"] for r in runs]
    heavy = sorted({m for r in runs for m in r["heavy"]})
    median = statistics.median(times)
    result = {
        "benchmark": "import_time",
        "module": args.module,
        "runs": args.runs,
        "median_s": round(median, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "target_s": args.target,
        "ok": median <= args.target and not heavy,
        "heavy_modules_imported": heavy,
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
