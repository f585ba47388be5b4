"""``python -m p2plab webrtc``: a real WebRTC DataChannel across the lab's NATs.

    python -m p2plab webrtc --client chromium --nat-a port-restricted-cone --nat-b port-restricted-cone
    python -m p2plab webrtc --client aiortc --peer chromium --nat-a symmetric --nat-b symmetric --turn --format json
    python -m p2plab webrtc --client chromium --nat-a symmetric --nat-b symmetric --turn --pcap webrtc.pcap

Alice's stack (``--client``) offers, Bob's (``--peer``, default: the same) answers; p2plab's STUN
server is always in their ``iceServers``, its TURN server with ``--turn``. Prints whether they
connected, the selected candidate pair (types and addresses) and the time to connect.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    from ..nat import PRESETS
    from .run import KINDS

    p = subparsers.add_parser("webrtc", help="Chromium/aiortc connect a DataChannel across the real lab's NATs",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--client", choices=KINDS, default="chromium", help="Alice's WebRTC stack (the offerer)")
    p.add_argument("--peer", choices=KINDS, default=None, help="Bob's WebRTC stack (default: the same as --client)")
    p.add_argument("--nat-a", default="port-restricted-cone", choices=list(PRESETS), help="Alice's NAT")
    p.add_argument("--nat-b", default="port-restricted-cone", choices=list(PRESETS), help="Bob's NAT")
    p.add_argument("--turn", action="store_true", help="give both peers p2plab's TURN server too")
    p.add_argument("--mdns", action=argparse.BooleanOptionalAction, default=False,
                   help="let Chromium hide host addresses behind .local names (Chromium's default; off here)")
    p.add_argument("--timeout", type=float, default=12.0, help="seconds to wait for the DataChannel (default 12)")
    p.add_argument("--pcap", default=None, help="write every packet of the run to this pcap file")
    p.add_argument("--sdp", action="store_true", help="also print the offer, the answer and the trickled candidates")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=_cmd)


def _pair(sel: dict | None) -> str:
    if not sel:
        return "none"
    def one(c: dict) -> str:
        if not c.get("address"):  # browsers do not tell JavaScript the address of a peer-reflexive remote candidate
            return f"{c['type']} (address not shown by the browser)"
        return f"{c['type']} {c['address']}:{c['port']}"

    return f"{one(sel['local'])} -> {one(sel['remote'])}"


def _cmd(args: argparse.Namespace) -> int:
    from .run import run_webrtc, summary

    if args.timeout <= 0:
        from ..errors import ConfigurationError

        raise ConfigurationError("--timeout must be a positive number of seconds, e.g. --timeout 12")
    r = run_webrtc(args.client, args.peer, args.nat_a, args.nat_b, turn=args.turn, mdns=args.mdns,
                   pcap=args.pcap, timeout=args.timeout)
    if args.format == "json":
        row = summary(r)
        if args.sdp:
            row["signalling"] = r["signalling"]
        else:
            row.pop("offer", None)
            row.pop("answer", None)
        print(json.dumps(row, indent=1))
        return 0 if r["connected"] else 1
    print(f"{r['client']} (alice, behind {r['nat_a']}) -> {r['peer']} (bob, behind {r['nat_b']}), "
          f"iceServers: STUN{' + TURN' if r['turn'] else ''}")
    if r["connected"]:
        how = "directly" if r["direct"] else "through p2plab's TURN relay"
        print(f"connected {how} in {r['time']:.3f} s (offer to both DataChannel messages)")
    else:
        print("NOT connected" + ("" if r["turn"] else " (try --turn: a relay works through any NAT pair)"))
    print(f"alice's selected pair: {_pair(r['selected'])}")
    print(f"bob's selected pair:   {_pair(r['selected_bob'])}")
    seen = r["host_candidates_seen"]
    print(f"host candidates the other side saw: alice's {seen[list(seen)[0]]}, bob's {seen[list(seen)[1]]}")
    if args.sdp:
        for m in r["signalling"]:
            print(f"--- {m['t']:.3f} s {m['from']} -> {m['to']}: {m['kind']}")
            if m["text"]:
                print(m["text"].replace("\r\n", "\n").rstrip())
    if r.get("pcap"):
        print(f"wrote {r['pcap']} ({len(r['trace'])} packets)")
    print(f"took {r['timings']['total']:.1f} s")
    return 0 if r["connected"] else 1
