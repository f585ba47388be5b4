"""``python -m p2plab reversal|forward|icmp-nat``: going around the NAT, and what else crosses it.

* ``reversal --world sim|netns --nat P [--mode reversal|direct] [--bob-nat Q]``: Bob (public) asks
  the rendezvous server to connect him to Alice behind NAT ``P`` (RFC 5128 section 3.2).
* ``forward --world sim|netns --rule none|forward|dmz|static [--cgn]``: Bob knocks on Alice's router's
  public port 8080; a port forward or a DMZ rule decides whether her service answers.
* ``icmp-nat --world netns|recorded``: ping, traceroute and TCP through a kernel NAT; prints the ICMP
  identifier mapping, the traceroute with the quoted headers as they arrive, and the checksum checks.
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


def _icmp_cmd(args: argparse.Namespace) -> int:
    from . import icmpnat

    if args.world == "netns":
        problem = _check_world("netns")
        if problem:
            print(f"error: {problem}")
            return 2
        from .netns.icmplab import run_icmp_nat

        trace, _ = run_icmp_nat()
    else:
        from .recorded import load

        trace = load("icmp-nat")
    ids, hops = icmpnat.echo_ids(trace), icmpnat.traceroute(trace)
    tcp = icmpnat.pairs(trace, "nat-a", "TCP")
    ok = all(icmpnat.checksums_ok(trace.raw(k)).get("TCP", True) for pair in tcp for k in pair)
    err = icmpnat.pairs(trace, "nat-a", "ICMP port unreachable")
    rewritten = [] if not err else [f"{r['layer']} {r['field']}" for _, r in
                                    icmpnat.compare(trace.raw(err[0][0]), trace.raw(err[0][1])).iterrows()]
    row = {"world": trace.world,
           "echo_ids": [{k: (int(v) if k.endswith("id") else v) for k, v in r.items()} for r in ids.to_dict("records")],
           "traceroute": [{k: (None if v != v else v) for k, v in r.items()} for r in hops.to_dict("records")],
           "port_unreachable_rewritten": rewritten, "tcp_segments_translated": len(tcp), "tcp_checksums_ok": ok}
    if args.format == "json":
        print(json.dumps(row, default=int))
        return 0
    print(f"[{row['world']}] ICMP echo identifiers through nat-a:")
    for r in row["echo_ids"]:
        print(f"  {r['inside']} id 0x{r['inside id']:04x} -> {r['outside']} id 0x{r['outside id']:04x}")
    print("traceroute from alice:")
    for r in row["traceroute"]:
        print(f"  TTL {r['probe TTL']}: {r['answered by']:12} {r['message']:16} quoted source {r['quoted source']}")
    print("nat-a rewrote in the port unreachable: " + ", ".join(rewritten))
    print(f"TCP: {len(tcp)} segments translated, checksums {'all correct' if ok else 'NOT all correct'}")
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
    f.add_argument("--rule", choices=["none", "forward", "dmz", "static"], default="forward")
    f.add_argument("--nat", default="port-restricted-cone", help="Alice's router's NAT preset")
    f.add_argument("--cgn", action="store_true", help="put a carrier-grade NAT in front of Alice's router")
    f.add_argument("--format", choices=["text", "json"], default="text")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=_forward_cmd)
    i = sub.add_parser("icmp-nat", help="ping, traceroute and TCP through a kernel NAT, dissected (RFC 5508)")
    i.add_argument("--world", choices=["netns", "recorded"], default="recorded",
                   help="netns runs it now in the real lab; recorded reads data/icmp-nat.pcap")
    i.add_argument("--format", choices=["text", "json"], default="text")
    i.set_defaults(func=_icmp_cmd)
