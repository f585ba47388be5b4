"""``python -m p2plab mdns|nat64|punch6``: hidden host addresses, NAT64 and IPv6 firewalls (lesson 14).

* ``mdns --world sim|recorded [--same-link]``: Alice hides her host candidate behind a ``.local``
  name; Bob (another LAN, or with ``--same-link`` Carol on Alice's LAN) tries to resolve it.
  ``recorded`` reads the mDNS packets two Chromium browsers sent in the lab (``data/webrtc-mdns``).
* ``nat64 --world sim|netns|recorded``: IPv6-only Alice sends UDP to the IPv4 server through a NAT64;
  prints the packet before and after translation (``netns`` runs Debian's ``tayga`` in the lab).
* ``punch6 [--world sim|netns|recorded] --filter-a F --filter-b F [--one-sided]``: a hole punch between
  two stateful IPv6 firewalls (no NAT at all); ``netns`` builds them with nftables in the lab.

``--format json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    print(json.dumps(data) if args.format == "json" else text)
    return 0


def _mdns_cmd(args: argparse.Namespace) -> int:
    import random

    from . import mdns

    if args.world == "recorded":
        from . import recorded

        rows = mdns_packets(recorded.load("webrtc-mdns"))
        out = {"world": "recorded", "packets": rows}
        text = "\n".join(f"{r['node']:>6} {r['src']:>13} -> {r['dst']}  {r['kind']:<8} {r['what']}" for r in rows)
        return _emit(args, out, "[recorded] mDNS packets of two Chromium browsers in the lab\n" + text)
    links = mdns.Links()
    links.add("alice", "home-a", "192.168.1.10")
    links.add("carol", "home-a", "192.168.1.11")
    links.add("bob", "home-b", "192.168.0.25")
    lines = ["candidate:1 1 udp 2113937151 192.168.1.10 5000 typ host",
             "candidate:2 1 udp 1677729535 203.0.113.10 5000 typ srflx raddr 192.168.1.10 rport 5000"]
    sent = mdns.hide_host_candidates(lines, links, "alice", random.Random(args.seed))
    peer = "carol" if args.same_link else "bob"
    rows = mdns.resolve_candidates(sent, links, peer)
    out = {"world": "sim", "peer": peer, "candidates": sent, "resolved": rows, "packets": links.log}
    text = [f"[sim] alice signals {len(sent)} candidates; {peer} resolves them:"]
    text += [f"  {r['type']:<5} {r['address']}:{r['port']} -> {'usable' if r['usable'] else 'dropped'} ({r['why']})"
             for r in rows]
    return _emit(args, out, "\n".join(text))


def mdns_packets(trace) -> list[dict[str, Any]]:
    """The mDNS packets of a trace (the hosts' own copies), decoded: node, src, dst, kind, what."""
    from . import mdns

    rows = []
    df = trace.df
    for i in df.index[(df["dport"] == 5353) & (df["action"] == "sent")]:
        raw = trace.raw(i)
        ihl = (raw[0] & 0x0F) * 4
        msg = mdns.parse(raw[ihl + 8:])
        what = (", ".join(msg["questions"]) if msg["kind"] == "query" else
                "; ".join(f"{n} {k} {a}".strip() for n, k, a, _, _ in msg["answers"]))
        rows.append({"time": round(float(df.at[i, "time"]), 3), "node": df.at[i, "node"], "src": df.at[i, "src"],
                     "dst": df.at[i, "dst"], "ttl": raw[8], "kind": msg["kind"], "what": what})
    return rows


def _nat64_cmd(args: argparse.Namespace) -> int:
    from ._scapy import ip_packet

    if args.world == "sim":
        from ._scapy import scapy_all
        from .nat64 import Nat64, embed_ipv4

        sc = scapy_all()
        n = Nat64(prefix=args.prefix)
        dst = embed_ipv4("192.0.2.1", args.prefix)
        v6 = bytes(sc.IPv6(src="2001:db8:1::10", dst=dst, hlim=64) / sc.UDP(sport=5000, dport=7000) / b"hello")
        v4 = n.to_ipv4(v6)
        before, after = ip_packet(v6).summary(), (ip_packet(v4).summary() if v4 else f"dropped: {n.last_drop}")
        out = {"world": "sim", "prefix": args.prefix, "target": dst, "before": before, "after": after}
    else:
        from .recorded import real_run

        run = real_run("nat64", live=True if args.world == "netns" else False)
        r = run.outcome.get("details", {}).get("router") or []
        pk = [p for p in r if p["ifname"] in ("lan", "wan") and p["outgoing"] == (p["ifname"] == "wan")]
        before = ip_packet(bytes.fromhex(pk[0]["hex"])).summary() if pk else ""
        after = ip_packet(bytes.fromhex(pk[1]["hex"])).summary() if len(pk) > 1 else ""
        out = {"world": run.world, "ok": bool(run.outcome.get("ok")), "reason": run.outcome.get("reason", ""),
               "before": before, "after": after}
    text = f"[{out['world']}] on the LAN (IPv6): {out['before']}\n[{out['world']}] leaving the router (IPv4): {out['after']}"
    if "reason" in out:
        text += f"\n{out['reason']}"
    return _emit(args, out, text)


def _punch6_cmd(args: argparse.Namespace) -> int:
    if args.world == "sim":
        from .nat64 import punch6

        r = punch6(args.filter_a, args.filter_b, bob_sends=not args.one_sided)
        return _emit(args, {"world": "sim", "connected": r.connected, "packets": r.rows}, str(r))
    if args.world == "recorded" and args.one_sided:
        print("error: the recording (data/ipv6-firewall) is of the two-sided punch; drop --one-sided, "
              "or use --world sim or netns")
        return 2
    if args.world == "netns":
        from .netns import available
        from .netns.ipv6lab import run_ipv6_punch

        ok, why = available()
        if not ok:
            print(f"error: the netns world is not available here: {why}")
            return 2
        r = run_ipv6_punch(bob_sends=not args.one_sided)
        trace, outcome, world = r["trace"], r["outcome"], "netns"
    else:
        from .recorded import load
        from .recorded import outcome as recorded_outcome

        trace, outcome, world = load("ipv6-firewall"), recorded_outcome("ipv6-firewall"), "recorded"
    df = trace.df
    rows = df[df["action"].isin(["sent", "delivered", "dropped"])][["time", "node", "interface", "action", "src",
                                                                     "dst", "summary", "reason"]]
    data = {"world": world, "connected": bool(outcome.get("direct")), "reason": outcome.get("reason", ""),
            "packets": rows.to_dict("records")}
    text = rows[["node", "action", "summary", "reason"]].to_string(index=False)
    return _emit(args, data, f"[{world}] {text}\ndirect IPv6 path: {'yes' if data['connected'] else 'no'}")


def register(sub: argparse._SubParsersAction) -> None:
    from .nat64 import FILTERS, LAB_PREFIX

    p = sub.add_parser("mdns", help="mDNS host candidates: who can resolve a browser's .local name",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", choices=["sim", "recorded"], default="sim")
    p.add_argument("--same-link", action="store_true", help="the peer is Carol, on Alice's own LAN")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_mdns_cmd)
    p = sub.add_parser("nat64", help="IPv6-only Alice reaches an IPv4 server through a NAT64",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", choices=["sim", "netns", "recorded"], default="sim")
    p.add_argument("--prefix", default=LAB_PREFIX,
                   help="the NAT64 prefix (sim world; RFC 6052 lengths; try the well-known 64:ff9b::/96)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_nat64_cmd)
    p = sub.add_parser("punch6", help="a hole punch between two stateful IPv6 firewalls (no NAT)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", choices=["sim", "netns", "recorded"], default="sim",
                   help="netns: real nftables firewalls in the lab (they filter by address and port)")
    p.add_argument("--filter-a", choices=FILTERS, default="address-and-port-dependent")
    p.add_argument("--filter-b", choices=FILTERS, default="address-and-port-dependent")
    p.add_argument("--one-sided", action="store_true", help="only alice sends")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_punch6_cmd)
