"""``python -m p2plab ladder CAPTURE.pcap -o ladder.html``: draw any capture as a ladder diagram."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _ladder(args: argparse.Namespace) -> int:
    from ..trace import Trace
    from . import ladder, summary

    traces = [Trace.from_pcap(p, node=Path(p).stem) for p in args.capture]
    trace = traces[0] if len(traces) == 1 else Trace.concat(traces, world="recorded")
    if len(traces) > 1:
        trace.meta["source"] = ", ".join(args.capture)
    trace.require_packets()
    fig = ladder(trace, max_rows=args.max_rows, start=args.start, lanes=args.lanes)
    out = Path(args.output or Path(args.capture[0]).with_suffix(".html").name)
    fig.write_html(out, include_plotlyjs="cdn" if args.cdn else True, full_html=True,
                   config={"displaylogo": False, "responsive": True})
    print(summary(fig))
    print(f"wrote {out}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("ladder", help="draw a pcap/pcapng capture as a ladder diagram (HTML)",
                       description="Draw one or more captures (pcap or pcapng) as an interactive ladder diagram.")
    p.add_argument("capture", nargs="+", help="capture file(s); several are merged in time order")
    p.add_argument("-o", "--output", help="HTML file to write (default: CAPTURE.html in the current directory)")
    p.add_argument("--max-rows", type=int, default=300, help="draw at most this many packets (default 300)")
    p.add_argument("--start", type=int, default=0, help="first packet of the window (default 0)")
    p.add_argument("--lanes", choices=["auto", "nodes", "addresses"], default="auto",
                   help="one lane per capture point (nodes) or per IP address (default: auto)")
    p.add_argument("--cdn", action="store_true", help="load plotly.js from the CDN (smaller file, needs internet)")
    p.set_defaults(func=_ladder)
