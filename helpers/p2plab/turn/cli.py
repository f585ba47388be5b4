"""Command-line TURN server: ``python -m p2plab turn-server``.

    python -m p2plab turn-server --host 127.0.0.1 --port 3478 --user alice:secret --realm p2plab \
        [--relay-host 127.0.0.1] [--allow-peer 127.0.0.0/8 ...]

The server also answers plain STUN Binding requests (no credentials needed), as coturn does, so
one server on 3478 serves STUN and TURN (RFC 8656 section 5: TURN runs on STUN's ports).

By default the server refuses to relay to loopback, unspecified, multicast and its own
addresses; ``--allow-peer CIDR`` (repeatable) replaces that rule with an explicit allow-list.

Clients that can only use TCP or TLS (networks that let nothing else out):

    python -m p2plab turn-server --user alice:secret --tcp --tls [--tls-port 5349] \
        [--cert cert.pem --key key.pem]

``--tcp`` listens on TCP on the same port as UDP; ``--tls`` on ``--tls-port`` (default 5349). Without
``--cert/--key`` the server makes a self-signed lab certificate with the ``openssl`` tool (in
``--cert-dir``, default ~/.cache/p2plab) and prints its path: clients must be told to trust it.
Relaying to peers is always UDP. ``--relay-host6`` adds an IPv6 relay address (clients ask for
it with REQUESTED-ADDRESS-FAMILY).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..addresses import check_ip, check_port, fmt


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name or not password:
        raise argparse.ArgumentTypeError(f"--user needs NAME:PASSWORD, e.g. alice:secret; got {text!r}")
    return name, password


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``turn-server`` command."""
    p = subparsers.add_parser("turn-server", help="run a TURN relay server (RFC 8656; also answers STUN Binding)")
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
    p.add_argument("--relay-host6", help="an IPv6 address for IPv6 relays (REQUESTED-ADDRESS-FAMILY)")
    p.add_argument("--tcp", action="store_true", help="also accept clients over TCP (same port as UDP)")
    p.add_argument("--tls", action="store_true", help="also accept clients over TLS (on --tls-port)")
    p.add_argument("--tls-port", type=int, default=5349, help="TLS port (default 5349; 0 picks a free one)")
    p.add_argument("--cert", help="TLS certificate (PEM); default: a self-signed lab certificate")
    p.add_argument("--key", help="private key of --cert (PEM)")
    p.add_argument("--cert-dir", default=str(Path.home() / ".cache" / "p2plab"),
                   help="where the lab certificate is made and kept (default ~/.cache/p2plab)")
    p.set_defaults(func=_server)


def _server(args: argparse.Namespace) -> int:
    import asyncio

    from ..aio import Driver
    from ..errors import ConfigurationError
    from .server import TurnServer
    from .stream import lab_certificate, serve_streams, server_ssl_context

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    host = check_ip(args.host, "--host")
    port = check_port(args.port, "--port")
    relay = check_ip(args.relay_host, "--relay-host") if args.relay_host else host
    relay6 = check_ip(args.relay_host6, "--relay-host6") if args.relay_host6 else None
    if (args.cert is None) != (args.key is None):
        print("error: --cert and --key go together (a certificate and its private key)", file=sys.stderr)
        return 2
    if (args.cert or args.tls_port != 5349) and not args.tls:
        print("error: --cert/--key/--tls-port only matter with --tls", file=sys.stderr)
        return 2
    try:
        server = TurnServer(dict(args.user), realm=args.realm, relay_ip=relay, allowed_peers=args.allow_peer,
                            max_allocations_per_user=args.max_allocations, relay_ip6=relay6)
        ssl_context = None
        if args.tls:
            cert, key = (args.cert, args.key) if args.cert else lab_certificate(args.cert_dir)
            ssl_context = server_ssl_context(cert, key)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        driver = Driver(server, (host, port))
        listeners = []
        try:
            addr = await driver.start()
            where = [f"udp {fmt(addr)}"]
            if args.tcp:
                listeners.append(await serve_streams(driver, host, addr[1]))
                where.append(f"tcp {fmt(addr)}")
            if ssl_context is not None:
                listeners.append(await serve_streams(driver, host, check_port(args.tls_port, "--tls-port"),
                                                     ssl_context))
                where.append(f"tls {fmt(listeners[-1].sockets[0].getsockname()[:2])}")
        except OSError as exc:
            driver.close()
            print(f"error: cannot listen on {host}: {exc.strerror or exc}", file=sys.stderr)
            return 1

        def banner() -> None:
            print(f"TURN server listening on {', '.join(where)}, realm {args.realm!r}, relaying from "
                  f"{relay}{' and ' + relay6 if relay6 else ''}; Ctrl-C stops it", flush=True)
            if ssl_context is not None and not args.cert:
                print(f"TLS uses the self-signed lab certificate {cert}; clients must trust it", flush=True)

        import gc

        gc.freeze()  # start-up objects live forever: keep them out of the collector's full passes
        await driver.serve_forever(on_ready=banner)
        for listener in listeners:
            listener.close()
        print(f"stopped: {len(server.allocations)} allocations left, {server.stats['bad']} bad packets", flush=True)
        return 0

    return asyncio.run(main())
