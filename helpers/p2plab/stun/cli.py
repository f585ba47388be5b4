"""Command-line STUN tools: ``stun-server`` and ``stun-client`` (``python -m p2plab ...``).

    python -m p2plab stun-server --host 127.0.0.1 --port 3478 [--alt-host 127.0.0.2 --alt-port 3479]
    python -m p2plab stun-client 127.0.0.1 3478 [--timeout 5]
    python -m p2plab stun-client --live        # ask public STUN servers (needs the Internet)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import threading

from ..addresses import check_ip, check_port, fmt

LIVE_SERVERS = [("stun.l.google.com", 19302), ("stun.cloudflare.com", 3478)]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``stun-server`` and ``stun-client`` commands."""
    p = subparsers.add_parser("stun-server", help="run a STUN server (RFC 8489, optionally RFC 5780)")
    p.add_argument("--host", default="127.0.0.1", help="IP address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=3478, help="UDP port (default 3478; 0 picks a free one)")
    p.add_argument("--alt-host", help="second IP address for RFC 5780 NAT behaviour tests")
    p.add_argument("--alt-port", type=int, help="second port for RFC 5780 NAT behaviour tests")
    p.set_defaults(func=_server)

    c = subparsers.add_parser("stun-client", help="ask a STUN server which address it sees you as")
    c.add_argument("host", nargs="?", help="server IP address or name")
    c.add_argument("port", nargs="?", type=int, default=3478, help="server port (default 3478)")
    c.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)")
    c.add_argument("--bind", default=None, help="local IP to send from (default: any)")
    c.add_argument("--live", action="store_true",
                   help="ask public STUN servers on the Internet (opt-in; needs network access)")
    c.set_defaults(func=_client)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)


def _server(args: argparse.Namespace) -> int:
    from ..aio import serve
    from .server import StunServer

    _logging()
    host = check_ip(args.host, "--host")
    port = check_port(args.port, "--port")
    if (args.alt_host is None) != (args.alt_port is None):
        print("error: give both --alt-host and --alt-port (RFC 5780 needs a second IP and a second port)",
              file=sys.stderr)
        return 2
    alt_ip = check_ip(args.alt_host, "--alt-host") if args.alt_host else None
    alt_port = check_port(args.alt_port, "--alt-port", allow_zero=False) if args.alt_port else None
    server = StunServer(alt_ip=alt_ip, alt_port=alt_port)

    def banner(addr) -> str:
        extra = f" (+ {', '.join(fmt(a) for a in sorted(server.local_addresses()))})" if alt_ip else ""
        return f"STUN server listening on udp {fmt(addr)}{extra}; Ctrl-C stops it"

    return serve(server, host, port, banner,
                 lambda: f"stopped: {server.stats['responses']} responses, {server.stats['bad']} bad packets")


def _resolve(host: str, port: int, timeout: float) -> tuple[str, int] | None:
    """Resolve a host name with a time limit (DNS can hang for a long time when offline)."""
    result: list = []

    def work() -> None:
        try:
            infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
            result.append((infos[0][4][0], port))
        except OSError:
            pass

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else None


async def query(server: tuple[str, int], timeout: float, bind: str | None = None):
    """Run one StunClient against ``server``; returns the final event (mapped/error/timeout)."""
    from ..aio import Driver
    from .client import StunClient

    local = (bind or ("::" if ":" in server[0] else "0.0.0.0"), 0)
    async with Driver(StunClient(server), local) as driver:
        try:
            return await driver.wait_for(("mapped", "error", "timeout"), timeout)
        except TimeoutError:
            return None


def _client(args: argparse.Namespace) -> int:
    if args.live:
        return _live(args)
    if not args.host:
        print("error: give the server address, e.g. stun-client 127.0.0.1 3478 (or --live)", file=sys.stderr)
        return 2
    port = check_port(args.port, "port", allow_zero=False)
    try:
        host = check_ip(args.host, "host")
    except ValueError:
        resolved = _resolve(args.host, port, 2.0)
        if resolved is None:
            print(f"error: cannot resolve {args.host!r} (no DNS?)", file=sys.stderr)
            return 1
        host = resolved[0]
    ev = asyncio.run(query((host, port), args.timeout, args.bind))
    if ev is None or ev.kind == "timeout":
        print(f"error: no answer from {host}:{port} within {args.timeout:g} s (is a STUN server running "
              "there? is UDP blocked?)", file=sys.stderr)
        return 1
    if ev.kind == "error":
        print(f"error: the server answered {ev.code} {ev.reason}", file=sys.stderr)
        return 1
    print(f"mapped address: {fmt(ev.address)} (server {fmt(ev.server)}, rtt {ev.rtt * 1000:.1f} ms)")
    return 0


def _live(args: argparse.Namespace) -> int:
    print("--live: asking public STUN servers on the Internet (this leaves the lab)", file=sys.stderr)
    ok = 0
    for name, port in LIVE_SERVERS:
        addr = _resolve(name, port, 2.0)
        if addr is None:
            print(f"error: cannot resolve {name}: this machine seems to be offline (no DNS). "
                  "The live probe needs Internet access; the lab servers on 127.0.0.1 do not.", file=sys.stderr)
            return 1
        ev = asyncio.run(query(addr, min(args.timeout, 3.0)))
        if ev is not None and ev.kind == "mapped":
            ok += 1
            print(f"{name}:{port} sees you as {fmt(ev.address)}")
        else:
            print(f"{name}:{port}: no answer (UDP to the Internet may be blocked)", file=sys.stderr)
    return 0 if ok else 1
