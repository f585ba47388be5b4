"""Command-line TURN server: ``python -m p2plab turn-server``.

    python -m p2plab turn-server --host 127.0.0.1 --port 3478 --user alice:secret --realm p2plab \
        [--relay-host 127.0.0.1] [--allow-peer 127.0.0.0/8 ...]

By default the server refuses to relay to loopback, unspecified, multicast and its own
addresses; ``--allow-peer CIDR`` (repeatable) replaces that rule with an explicit allow-list.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..addresses import check_ip, check_port, fmt


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name or not password:
        raise argparse.ArgumentTypeError(f"--user needs NAME:PASSWORD, e.g. alice:secret; got {text!r}")
    return name, password


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``turn-server`` command."""
    p = subparsers.add_parser("turn-server", help="run a TURN relay server (RFC 8656, UDP)")
    p.add_argument("--host", default="127.0.0.1", help="IP address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3478, help="UDP port (default 3478; 0 picks a free one)")
    p.add_argument("--user", type=_user, action="append", required=True,
                   help="NAME:PASSWORD of a user (repeatable)")
    p.add_argument("--realm", default="p2plab", help="authentication realm (default p2plab)")
    p.add_argument("--relay-host", help="IP address for relay sockets (default: --host)")
    p.add_argument("--allow-peer", action="append", metavar="CIDR",
                   help="only relay to/from peers in this network (repeatable), e.g. 127.0.0.0/8")
    p.add_argument("--max-allocations", type=int, default=10,
                   help="allocation quota per user (default 10; beyond it Allocate gets 486)")
    p.set_defaults(func=_server)


def _server(args: argparse.Namespace) -> int:
    from ..aio import serve
    from .server import TurnServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    host = check_ip(args.host, "--host")
    port = check_port(args.port, "--port")
    relay = check_ip(args.relay_host, "--relay-host") if args.relay_host else host
    server = TurnServer(dict(args.user), realm=args.realm, relay_ip=relay, allowed_peers=args.allow_peer,
                        max_allocations_per_user=args.max_allocations)

    return serve(
        server, host, port,
        lambda addr: (f"TURN server listening on udp {fmt(addr)}, realm {args.realm!r}, relaying from {relay}; "
                      "Ctrl-C stops it"),
        lambda: f"stopped: {len(server.allocations)} allocations left, {server.stats['bad']} bad packets")
