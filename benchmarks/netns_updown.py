"""How fast does the real Linux lab come up and go away? Prints JSON.

A 6-host, 2-NAT topology (alice and carol behind nat-a, bob and dave behind nat-b, a server and a
relay on public addresses) is built and torn down ``--runs`` times; the target is <= 2 s for one
bring-up + teardown. Needs root (``sudo .venv/bin/python benchmarks/netns_updown.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def six_hosts_two_nats():
    from p2plab.topology import Topology

    t = Topology("six-two")
    t.add_nat("nat-a", "203.0.113.10", "192.168.1.0/24", "port-restricted-cone")
    t.add_nat("nat-b", "198.51.100.20", "192.168.0.0/24", "symmetric")
    t.add_host("alice", "192.168.1.10", behind="nat-a")
    t.add_host("carol", "192.168.1.11", behind="nat-a")
    t.add_host("bob", "192.168.0.25", behind="nat-b")
    t.add_host("dave", "192.168.0.26", behind="nat-b")
    t.add_server("server", "192.0.2.1", "192.0.2.2")
    t.add_server("relay", "192.0.2.3")
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--capture", action="store_true", help="also start and stop tcpdump in every namespace")
    ap.add_argument("--target", type=float, default=2.0)
    args = ap.parse_args(argv)
    from p2plab.netns import Lab, available

    ok, why = available()
    if not ok:
        print(json.dumps({"benchmark": "netns_updown", "skipped": why}))
        return 0
    totals, ups, downs = [], [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        lab = Lab(six_hosts_two_nats(), capture=args.capture)
        lab.start()
        up = time.perf_counter() - t
        lab.close()
        totals.append(time.perf_counter() - t)
        ups.append(up)
        downs.append(totals[-1] - up)
    result = {
        "benchmark": "netns_updown", "topology": "6 hosts, 2 NATs (9 namespaces)", "runs": args.runs,
        "capture": args.capture,
        "up_median_s": round(statistics.median(ups), 4), "down_median_s": round(statistics.median(downs), 4),
        "total_median_s": round(statistics.median(totals), 4), "total_max_s": round(max(totals), 4),
        "target_s": args.target, "ok": max(totals) <= args.target,
        "phases_last_run_s": {k: round(v, 4) for k, v in lab.timings.items()},
    }
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
