"""``python -m p2plab ice``: ICE between Alice and Bob behind two NATs, simulated or in the real lab.

    python -m p2plab ice --nat-a symmetric --nat-b symmetric
    python -m p2plab ice --world netns --nat-a udp-blocked --nat-b port-restricted-cone --format json

The simulator (``--world sim``, default) runs ``p2plab.ice.run_ice``: STUN, UDP TURN, checks and
nomination, explained pair by pair. The real lab (``--world netns``) runs ``p2plab.ice.labrun``:
the agents try TURN over UDP, then TCP, then TLS on port 443, and the output lists each attempt
with its outcome and the time to connect. ``udp-blocked`` (only TCP to port 443 leaves) needs the
real lab to connect: the simulator has no TCP/TLS TURN and says so.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _cmd(args: argparse.Namespace) -> int:
    from ..nat import preset

    for name in (args.nat_a, args.nat_b):
        preset(name)  # unknown names fail here, with the list of presets
    if args.world == "netns":
        from ..netns import available

        ok, why = available()
        if not ok:
            print(f"error: --world netns needs the real Linux lab: {why}")
            return 2
        from .labrun import run_ice_lab

        res = run_ice_lab(args.nat_a, args.nat_b, fallback=not args.no_fallback, capture=args.capture)
        out: dict[str, Any] = res.as_dict()
        text = str(res)
    else:
        from .run import run_ice

        r = run_ice(args.nat_a, args.nat_b, seed=args.seed)
        out = r.as_dict()
        text = str(r)
        if r.success and r.local is not None and r.local.type == "relay":
            text += f"\nalice's relay is reached over {(r.local.relay_protocol or 'udp').upper()}"
    if args.format == "json":
        print(json.dumps(out, indent=1))
    else:
        print(text)
    return 0 if out["success"] else 1


def register(sub: Any) -> None:
    from ..nat import FIREWALLED, PRESETS

    names = ", ".join([*PRESETS, *FIREWALLED])
    p = sub.add_parser("ice", help="ICE between alice and bob behind two NATs (sim or real lab); names the "
                                   "selected pair and, for a relay, how it reaches the TURN server")
    p.add_argument("--world", choices=["sim", "netns"], default="sim",
                   help="sim: the simulator (UDP TURN only); netns: the real Linux lab (TURN over UDP, TCP, TLS)")
    p.add_argument("--nat-a", default="port-restricted-cone", help=f"Alice's NAT preset ({names})")
    p.add_argument("--nat-b", default="port-restricted-cone", help="Bob's NAT preset")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.add_argument("--no-fallback", action="store_true",
                   help="netns: give the agents UDP TURN only (no TCP/TLS fallback)")
    p.add_argument("--capture", action="store_true", help="netns: capture packets too (slower)")
    p.set_defaults(func=_cmd)
