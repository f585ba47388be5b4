"""p2plab.aio: sans-I/O protocols on real UDP sockets (127.0.0.1/127.0.0.2 only)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from p2plab.aio import Driver, run_protocol
from p2plab.stun import StunClient, StunServer
from p2plab.stun.discovery import NatDiscovery
from p2plab.turn import TurnClient, TurnServer

pytestmark = pytest.mark.timeout(60)


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _free_on(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def test_stun_client_and_server() -> None:
    async def main() -> None:
        async with Driver(StunServer(), ("127.0.0.1", 0)) as srv:
            client = StunClient(srv.local_addr)
            events = await run_protocol(client, ("127.0.0.1", 0), until="mapped", timeout=5)
            mapped = [e for e in events if e.kind == "mapped"][0]
            assert mapped.address[0] == "127.0.0.1" and mapped.address[1] > 0
            assert any(e.kind == "binding" for e in srv.events)

    asyncio.run(main())


def test_rfc5780_server_sends_from_alternate_addresses() -> None:
    """CHANGE-REQUEST answers really leave from 127.0.0.2 and the alternate port."""
    # the alternate port is bound on both addresses, and the primary port must not be it: choose both
    # (a primary bound to port 0 could be given the alternate port and make the server skip a socket)
    alt_port = next(p for p in iter(lambda: free_port("127.0.0.2"), None) if _free_on("127.0.0.1", p))
    main_port = next(p for p in iter(free_port, None) if p != alt_port)

    async def main() -> None:
        server = StunServer(alt_ip="127.0.0.2", alt_port=alt_port)
        async with Driver(server, ("127.0.0.1", main_port)) as srv:
            assert set(srv.sockets) == {srv.local_addr, *server.local_addresses()}
            for flags, expected in [(0x06, ("127.0.0.2", alt_port)), (0x02, ("127.0.0.1", alt_port)),
                                    (None, srv.local_addr)]:
                async with Driver(StunClient(srv.local_addr, change_request=flags), ("127.0.0.1", 0)) as cli:
                    ev = await cli.wait_for("mapped", 5)
                    assert ev.source == expected and ev.response_origin == expected
            # discovery on loopback: no NAT, endpoint-independent filtering
            async with Driver(NatDiscovery(srv.local_addr), ("127.0.0.1", 0)) as cli:
                ev = await cli.wait_for(("nat-type", "failed"), 10)
                assert ev.kind == "nat-type" and ev.nat is False and ev.filtering == "endpoint-independent"

    asyncio.run(main())


def test_client_timeout_event() -> None:
    dead = free_port()

    async def main() -> None:
        client = StunClient(("127.0.0.1", dead), rto=0.02, rc=3, rm=2)
        events = await run_protocol(client, ("127.0.0.1", 0), until=("timeout", "mapped"), timeout=5)
        assert events[-1].kind == "timeout" and abs(events[-1].after - 0.1) < 0.05

    asyncio.run(main())


def test_turn_relay_sockets_open_and_close() -> None:
    async def main() -> None:
        server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"])
        async with Driver(server, ("127.0.0.1", 0)) as srv:
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.bind(("127.0.0.1", 0))
            peer.settimeout(2)
            client = TurnClient(srv.local_addr, "alice", "secret")
            async with Driver(client, ("127.0.0.1", 0)) as cli:
                ev = await cli.wait_for(("allocated", "error"), 5)
                assert ev.kind == "allocated"
                relay = ev.relayed
                assert relay in srv.sockets  # the driver opened the relay socket
                cli.call(client.create_permission, peer.getsockname())
                await cli.wait_for("permission", 5)
                client.send_to(b"ping", peer.getsockname())
                cli.poke()
                data, src = await asyncio.get_running_loop().run_in_executor(None, peer.recvfrom, 100)
                assert (data, src) == (b"ping", relay)
                peer.sendto(b"pong", relay)
                ev = await cli.wait_for("data", 5)
                assert ev.data["data"] == b"pong"
                client.refresh(0)
                cli.poke()
                await cli.wait_for("deallocated", 5)
                await asyncio.sleep(0.05)
                assert relay not in srv.sockets  # freed
            peer.close()

    asyncio.run(main())


@pytest.mark.parametrize("cmd", ["stun-server", "turn-server"])
def test_cli_servers_stop_cleanly_on_sigterm(cmd: str) -> None:
    port = free_port()
    args = [sys.executable, "-m", "p2plab", cmd, "--host", "127.0.0.1", "--port", str(port)]
    if cmd == "turn-server":
        args += ["--user", "alice:secret"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert "listening on udp 127.0.0.1:" in line
        if cmd == "stun-server":
            out = subprocess.run([sys.executable, "-m", "p2plab", "stun-client", "127.0.0.1", str(port),
                                  "--timeout", "3"], capture_output=True, text=True, timeout=20)
            assert out.returncode == 0 and "mapped address: 127.0.0.1:" in out.stdout
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in err


def test_cli_client_timeout_is_a_clear_error() -> None:
    port = free_port()
    t = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "p2plab", "stun-client", "127.0.0.1", str(port), "--timeout", "1"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 1 and "no answer from 127.0.0.1" in out.stderr and "Traceback" not in out.stderr
    assert time.monotonic() - t < 10


def test_turn_relay_sockets_follow_allocations_deletion_and_expiry() -> None:
    """The driver re-reads a TURN server's relay addresses only when they change
    (``addresses_version``): sockets still open for each new allocation and close when one is
    deleted or expires, and datagrams relayed in between do not touch them."""
    from p2plab.turn import TurnClient, TurnServer

    async def main() -> None:
        server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"], default_lifetime=1.0)
        async with Driver(server, ("127.0.0.1", 0)) as srv:
            def relay_sockets() -> set:
                return set(srv.sockets) - {srv.local_addr}

            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.bind(("127.0.0.1", 0))
            peer.settimeout(5)
            kept = Driver(TurnClient(srv.local_addr, "alice", "secret", lifetime=600), ("127.0.0.1", 0))
            dying = Driver(TurnClient(srv.local_addr, "alice", "secret", lifetime=1, auto_refresh=False),
                           ("127.0.0.1", 0))
            for d in (kept, dying):
                await d.start()
                assert (await d.wait_for(("allocated", "error"), 5)).kind == "allocated"
            assert relay_sockets() == server.local_addresses() and len(relay_sockets()) == 2
            version = server.addresses_version
            kept.call(kept.protocol.channel_bind, peer.getsockname())
            assert (await kept.wait_for(("channel-bound", "error"), 5)).kind == "channel-bound"
            for i in range(20):
                kept.call(kept.protocol.send_to, b"x%d" % i, peer.getsockname())
                data, src = await asyncio.get_running_loop().run_in_executor(None, peer.recvfrom, 100)
                assert data == b"x%d" % i and src == kept.protocol.relayed
            assert server.addresses_version == version  # relaying changed no address
            await asyncio.sleep(1.5)  # the dying allocation's lifetime (1 s) runs out
            assert server.stats["relayed-to-peer"] == 20
            assert set(server.allocations) == {kept.local_addr}
            assert relay_sockets() == {kept.protocol.relayed}  # the expired relay's socket is closed
            kept.close()  # Refresh LIFETIME=0
            dying.close()
            for _ in range(50):
                if not relay_sockets():
                    break
                await asyncio.sleep(0.05)
            assert relay_sockets() == set() and server.allocations == {}
            peer.close()

    asyncio.run(main())
