"""``python -m p2plab matrix`` and ``punch``: real punches, one pair or every pair of NAT presets.

Nothing here is a lookup table: each cell runs a punch in the simulator (UDP:
``p2plab.punch.run_punch``; TCP: ``p2plab.scenarios.tcp.run_tcp_punch``, listen+connect) and
reports whether a direct path formed, after how many packets and how long, and why not.
``punch --world netns`` runs the same punch through real kernel NATs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .nat import PRESETS

DEFAULT_PRESETS = ["full-cone", "restricted-cone", "port-restricted-cone", "linux-masquerade", "symmetric"]


def run_matrix(presets: list[str] | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Punch Alice (behind ``nat_a``) to Bob (behind ``nat_b``) for every ordered pair of presets."""
    from .punch import run_punch

    names = presets or DEFAULT_PRESETS
    return [run_punch(a, b, seed=seed, record=True).as_dict() for a in names for b in names]


def run_tcp_matrix(presets: list[str] | None = None, seed: int = 0, listen: bool = True) -> list[dict[str, Any]]:
    """TCP hole punch (listen+connect, or connect only with ``listen=False``) for every ordered pair."""
    from .scenarios.tcp import run_tcp_punch

    names = presets or DEFAULT_PRESETS
    return [run_tcp_punch(a, b, seed=seed, listen=listen).as_dict() for a in names for b in names]


def as_table(rows: list[dict[str, Any]]) -> str:
    """A text grid: rows are Alice's NAT, columns Bob's; each cell 'direct' or 'relay'."""
    names = list(dict.fromkeys(r["nat_a"] for r in rows))
    width = max(len(n) for n in names) + 2
    out = ["alice \\ bob".ljust(width) + "".join(n[:20].ljust(22) for n in names)]
    cell = {(r["nat_a"], r["nat_b"]): r for r in rows}
    for a in names:
        line = a.ljust(width)
        for b in names:
            r = cell[(a, b)]
            text = f"direct {r['time'] * 1000:.0f} ms" if r["direct"] else "no (relay)"
            line += text.ljust(22)
        out.append(line.rstrip())
    return "\n".join(out)


def _cmd(args: argparse.Namespace) -> int:
    presets = args.presets.split(",") if args.presets else None
    for p in presets or []:
        from .nat import preset

        preset(p)  # clear error for unknown names
    rows = run_tcp_matrix(presets, seed=args.seed) if args.transport == "tcp" else run_matrix(presets, seed=args.seed)
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        print(as_table(rows))
        failed = [r for r in rows if not r["direct"]]
        if failed and args.why:
            print()
            for r in failed:
                print(f"{r['nat_a']} x {r['nat_b']}: {r['reason']}")
    return 0


def _punch_cmd(args: argparse.Namespace) -> int:
    from .nat import preset

    preset(args.nat_a)
    preset(args.nat_b)  # clear errors for unknown names before anything starts
    if args.world == "netns":
        from .netns import available

        ok, why = available()
        if not ok:
            print(f"error: the netns world is not available here: {why}")
            return 2
    if args.portmap and args.transport == "tcp":
        print("error: --portmap works with the UDP punch only (drop --transport tcp)")
        return 2
    if args.transport == "tcp":
        if args.world == "netns":
            from .netns.tcppunch import run_tcp_punch
        else:
            from .scenarios.tcp import run_tcp_punch
        kw = {} if args.world == "netns" else {"seed": args.seed}
        row = run_tcp_punch(args.nat_a, args.nat_b, listen=not args.connect_only, **kw).as_dict()
    elif args.world == "netns":
        from .netns import run_punch

        res = run_punch(args.nat_a, args.nat_b, capture=False, portmap=args.portmap)
        row = {k: res[k] for k in ("nat_a", "nat_b", "direct", "packets", "time", "reason", "world")}
        row["transport"] = "udp"
        if args.portmap:
            row["portmap"] = {k: v for k, v in res["portmap"].items() if k != "server_log"}
    else:
        from .punch import run_punch as sim_punch

        row = {**sim_punch(args.nat_a, args.nat_b, seed=args.seed, portmap=args.portmap).as_dict(), "transport": "udp"}
    if args.format == "json":
        print(json.dumps(row))
    elif row["transport"] == "tcp":
        head = "DIRECT" if row["direct"] else "NO DIRECT PATH"
        when = f" in {row['time'] * 1000:.0f} ms" if row["direct"] else ""
        print(f"[{row['world']}] TCP ({row['method']}) {row['nat_a']} x {row['nat_b']}: {head}{when}\n{row['reason']}")
    else:
        head = "DIRECT" if row["direct"] else "NO DIRECT PATH"
        when = f" after {row['packets']} punch packets in {row['time'] * 1000:.0f} ms" if row["direct"] else ""
        print(f"[{row['world']}] {row['nat_a']} x {row['nat_b']}: {head}{when}\n{row['reason']}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("punch", help="run one hole punch (simulated or in the real Linux lab) and explain it")
    p.add_argument("--world", choices=["sim", "netns"], default="sim")
    p.add_argument("--nat-a", default="port-restricted-cone", help="Alice's NAT preset")
    p.add_argument("--nat-b", default="port-restricted-cone", help="Bob's NAT preset")
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp",
                   help="udp: the UDP punch of notebook 06; tcp: TCP hole punching with listen+connect (notebook 08)")
    p.add_argument("--connect-only", action="store_true",
                   help="tcp: only connect(), no listening socket on the same port")
    p.add_argument("--portmap", choices=["pcp", "natpmp", "upnp"], default=None,
                   help="alice first asks her router for a port mapping (PCP, RFC 6887, NAT-PMP, RFC 6886, or "
                        "UPnP IGD - netns only, against Debian's miniupnpd) and advertises it")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_punch_cmd)

    p = sub.add_parser("matrix", help="punch between every pair of NAT presets in the simulator")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--transport", choices=["udp", "tcp"], default="udp", help="which punch to run for every pair")
    p.add_argument("--presets", help=f"comma-separated presets (default: {','.join(DEFAULT_PRESETS)}; known: {','.join(PRESETS)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--why", action="store_true", help="explain each failure")
    p.set_defaults(func=_cmd)
