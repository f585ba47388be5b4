"""``python -m p2plab reversal|forward``: going around the NAT instead of through it.

* ``reversal --world sim|netns --nat P [--mode reversal|direct] [--bob-nat Q]``: Bob (public) asks
  the rendezvous server to connect him to Alice behind NAT ``P`` (RFC 5128 section 3.2).
* ``forward --world sim|netns --rule none|forward|dmz [--cgn]``: Bob knocks on Alice's router's
  public port 8080; a port forward or a DMZ rule decides whether her service answers.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _check_world(world: str) -> str | None:
    if world != "netns":
        return None
    from .netns import available

    ok, why = available()
    return None if ok else f"the netns world is not available here: {why}"


def _reversal_cmd(args: argparse.Namespace) -> int:
    from .nat import preset

    preset(args.nat)
    if args.bob_nat:
        preset(args.bob_nat)
    problem = _check_world(args.world)
    if problem:
        print(f"error: {problem}")
        return 2
    if args.world == "netns":
        from .netns.reversal import run_reversal

        res = run_reversal(args.nat, args.mode, args.bob_nat or None, capture=False)
    else:
        from .scenarios.reversal import run_reversal as sim_reversal

        res = sim_reversal(args.nat, args.mode, args.bob_nat or None, seed=args.seed)
    row = res.row()
    if args.format == "json":
        print(json.dumps(row))
    else:
        head = f"CONNECTED ({row['how']})" if row["direct"] else "NO CONNECTION"
        bob = f"bob behind {row['bob_nat']}" if row["bob_nat"] else "bob public"
        print(f"[{row['world']}] alice behind {row['nat']}, {bob}, mode {row['mode']}: {head}\n{row['reason']}")
    return 0


def _forward_cmd(args: argparse.Namespace) -> int:
    from .nat import preset

    preset(args.nat)
    problem = _check_world(args.world)
    if problem:
        print(f"error: {problem}")
        return 2
    if args.world == "netns":
        from .netns.forwarding import run_forwarding

        res = run_forwarding(args.rule, args.nat, args.cgn, capture=True)
    else:
        from .scenarios.forwarding import run_forwarding as sim_forwarding

        res = sim_forwarding(args.rule, args.nat, args.cgn, seed=args.seed)
    row = res.row()
    if args.format == "json":
        print(json.dumps(row))
    else:
        print(f"[{row['world']}] rule {row['rule']}{' behind CGN' if row['cgn'] else ''}: "
              f"{'REACHED' if row['reached'] else 'NOT REACHED'}\n{row['reason']}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("reversal", help="connection reversal: the NATed peer calls the public one (RFC 5128 3.2)")
    p.add_argument("--world", choices=["sim", "netns"], default="sim")
    p.add_argument("--nat", default="port-restricted-cone", help="Alice's NAT preset")
    p.add_argument("--bob-nat", default="", help="put Bob behind this NAT preset too (the server then refuses)")
    p.add_argument("--mode", choices=["reversal", "direct"], default="reversal",
                   help="reversal: the server asks Alice to call; direct: Bob calls Alice's public endpoint")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_reversal_cmd)
    f = sub.add_parser("forward", help="port forwarding / DMZ: can Bob reach a service behind Alice's NAT?")
    f.add_argument("--world", choices=["sim", "netns"], default="sim")
    f.add_argument("--rule", choices=["none", "forward", "dmz"], default="forward")
    f.add_argument("--nat", default="port-restricted-cone", help="Alice's router's NAT preset")
    f.add_argument("--cgn", action="store_true", help="put a carrier-grade NAT in front of Alice's router")
    f.add_argument("--format", choices=["text", "json"], default="text")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=_forward_cmd)
