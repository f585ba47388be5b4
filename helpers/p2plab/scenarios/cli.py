"""``python -m p2plab network-change`` and ``python -m p2plab peer-auth``: notebook 13's scenarios.

    python -m p2plab network-change --world sim --detect consent
    python -m p2plab network-change --world netns --detect interface --format json
    python -m p2plab peer-auth --world sim --attacker
    python -m p2plab peer-auth --world netns --attacker --no-auth
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    nc = sub.add_parser("network-change", help="alice changes network mid-call; ICE restarts (sim or real lab)",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    nc.add_argument("--world", choices=["sim", "netns"], default="sim")
    nc.add_argument("--detect", choices=["consent", "interface"], default="consent",
                    help="who notices: RFC 7675 consent expiry, or the OS's network-change notice")
    nc.add_argument("--mobile-nat", default="port-restricted-cone", help="the carrier NAT's preset (sim only)")
    nc.add_argument("--consent-timeout", type=float, default=6.0,
                    help="netns only: consent expiry in seconds (the real value, 30, makes a long run)")
    nc.add_argument("--seed", type=int, default=0)
    nc.add_argument("--format", choices=["text", "json"], default="text")
    nc.set_defaults(func=_network_change)

    pa = sub.add_parser("peer-auth", help="hole punching with/without peer authentication, mallory racing",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pa.add_argument("--world", choices=["sim", "netns"], default="sim")
    pa.add_argument("--attacker", action="store_true", help="mallory races packets at alice's hole")
    pa.add_argument("--no-auth", action="store_true", help="plain hole punching: take the first endpoint that answers")
    pa.add_argument("--nat-a", default="full-cone", help="alice's NAT preset (sim only)")
    pa.add_argument("--seed", type=int, default=0)
    pa.add_argument("--format", choices=["text", "json"], default="text")
    pa.set_defaults(func=_peer_auth)


def _network_change(args: argparse.Namespace) -> int:
    if args.world == "sim":
        from .network_change import run_network_change

        r = run_network_change(args.detect, mobile_nat=args.mobile_nat, seed=args.seed)
        steps = [{"step": s.name, "time": s.at, "after_move": round(s.at - r.moved_at, 6), "who": s.who,
                  "what": s.what} for s in r.steps]
        row = {"world": "sim", "detect": r.detect, "reconnected": r.reconnected, "new_pair": r.new_pair,
               "new_pair_kind": r.new_pair_kind, "time_to_reconnect": r.time_to_reconnect, "outage": r.outage,
               "media": r.media, "steps": steps}
        text = r.summary()
    else:
        from ..netns.netchange import run_network_change as real

        out = real(args.detect, consent_timeout=args.consent_timeout, capture=False)
        row = {"world": "netns", **out["outcome"], "steps": out["steps"]}
        text = "\n".join([out["outcome"]["reason"]] + [f"{s['after_move']:+8.3f} s  {s['who']:<6} {s['step']}: "
                                                       f"{s['what']}" for s in out["steps"]])
    print(json.dumps(row, indent=1) if args.format == "json" else text)
    return 0 if row["reconnected"] else 1


def _peer_auth(args: argparse.Namespace) -> int:
    auth = not args.no_auth
    if args.world == "sim":
        from .peer_auth import run_peer_auth

        r = run_peer_auth(auth=auth, attacker=args.attacker, nat_a=args.nat_a, seed=args.seed)
        row = {"world": "sim", "auth": auth, "attacker": args.attacker, "alice_talks_to": r.alice_talks_to,
               "bob_talks_to": r.bob_talks_to, "delivered": r.delivered, "mallory_read": r.mallory_read,
               "rejected": r.rejected, "verdicts": r.verdicts}
        text = r.summary() + ("\n" + r.df.drop(columns=["from"]).to_string(index=False) if r.verdicts else "")
    else:
        from ..netns.peerauthlab import run_peer_auth as real

        out = real(auth=auth, attacker=args.attacker, seed=args.seed, capture=False)
        row = {"world": "netns", **out["outcome"], "verdicts": out["verdicts"]}
        text = out["outcome"]["reason"] + "".join(f"\n{v['at']:<6} {v['sender']:<8} {v['kind']:<8} {v['verdict']:<9} "
                                                  f"{v['why']}" for v in out["verdicts"])
    print(json.dumps(row, indent=1) if args.format == "json" else text)
    return 0
