"""Interoperability with coturn: its clients against p2plab servers, p2plab clients against turnserver.

Everything listens and relays on 127.0.0.1 only; coturn runs from a temporary config, in the
foreground, and is killed at the end.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

import pytest

from p2plab.aio import Driver
from p2plab.stun import StunClient, StunServer
from p2plab.turn import TurnClient, TurnServer

# test helpers next to this file (ruff cannot tell what kind of import they are)
# isort: off
from _servers import ServerThread, free_port
from conftest import need
# isort: on

pytestmark = pytest.mark.timeout(90)


def test_turnutils_stunclient_against_p2plab_rfc5780_server() -> None:
    need("turnutils_stunclient", "timeout")
    alt = free_port("127.0.0.2")
    with ServerThread(StunServer(alt_ip="127.0.0.2", alt_port=alt)) as srv:
        out = subprocess.run(["timeout", "20", "turnutils_stunclient", "-p", str(srv.addr[1]), "127.0.0.1"],
                             capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "UDP reflexive addr: 127.0.0.1:" in out.stdout
    assert f"Other addr: : 127.0.0.2:{alt}" in out.stdout
    assert f"Response origin: : 127.0.0.2:{alt}" in out.stdout  # the CHANGE-REQUEST answer


def test_turnutils_uclient_through_p2plab_turn_server(tmp_path: Path) -> None:
    need("turnutils_uclient", "turnutils_peer", "timeout")
    peer_port = free_port()
    # started directly (not under `timeout`) so that killing it really ends it
    peer = subprocess.Popen(["turnutils_peer", "-p", str(peer_port), "-L", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        server = TurnServer({"alice": "secret"}, realm="p2plab", allowed_peers=["127.0.0.0/8"])
        with ServerThread(server) as srv:
            out = subprocess.run(
                ["timeout", "30", "turnutils_uclient", "-s", "-c", "-n", "30", "-l", "120",
                 "-u", "alice", "-w", "secret", "-e", "127.0.0.1", "-r", str(peer_port), "-L", "127.0.0.1",
                 "-p", str(srv.addr[1]), "127.0.0.1"], capture_output=True, text=True)
            stats = dict(srv.call(lambda: dict(server.stats)))
    finally:
        peer.kill()
        peer.wait()
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "tot_send_msgs=30, tot_recv_msgs=30" in text, text[-2000:]
    assert "Total lost packets 0" in text
    assert stats.get("relayed-to-peer", 0) >= 30 and stats.get("relayed-to-client", 0) >= 30


@pytest.fixture
def coturn(tmp_path: Path):
    """coturn's turnserver on 127.0.0.1 (temporary config, foreground, no daemon)."""
    need("turnserver")
    port = free_port()
    conf = tmp_path / "turnserver.conf"
    conf.write_text(f"""
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port={port}
min-port=49152
max-port=65535
lt-cred-mech
user=alice:secret
realm=p2plab
allow-loopback-peers
no-tcp
no-tls
no-dtls
no-tcp-relay
no-cli
fingerprint
no-multicast-peers
pidfile={tmp_path / 'turnserver.pid'}
log-file=stdout
simple-log
""")
    proc = subprocess.Popen(["turnserver", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # wait until it answers a Binding request
        deadline = time.monotonic() + 15
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.3)
                from p2plab.stun.message import StunMessage

                s.sendto(StunMessage().encode(), ("127.0.0.1", port))
                try:
                    s.recvfrom(2048)
                    break
                except TimeoutError:
                    pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("coturn did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
        yield ("127.0.0.1", port)
    finally:
        proc.kill()
        proc.wait()


def test_p2plab_stun_client_against_coturn(coturn) -> None:
    async def main() -> None:
        async with Driver(StunClient(coturn), ("127.0.0.1", 0)) as cli:
            ev = await cli.wait_for(("mapped", "timeout", "error"), 10)
            assert ev.kind == "mapped" and ev.address == cli.local_addr

    asyncio.run(main())


def test_p2plab_turn_client_against_coturn(coturn) -> None:
    async def main() -> None:
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(3)
        P = peer.getsockname()
        loop = asyncio.get_running_loop()
        c = TurnClient(coturn, "alice", "secret")
        async with Driver(c, ("127.0.0.1", 0)) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "allocated", ev
            c.create_permission(P)
            d.poke()
            assert (await d.wait_for(("permission", "error"), 10)).kind == "permission"
            c.send_to(b"via send indication", P)
            d.poke()
            data, src = await loop.run_in_executor(None, peer.recvfrom, 2048)
            assert data == b"via send indication" and src == ev.relayed
            peer.sendto(b"back as Data", src)
            assert (await d.wait_for("data", 10)).data["data"] == b"back as Data"
            c.channel_bind(P)
            d.poke()
            assert (await d.wait_for(("channel-bound", "error"), 10)).kind == "channel-bound"
            c.send_to(b"via channel", P)
            d.poke()
            data, src = await loop.run_in_executor(None, peer.recvfrom, 2048)
            assert data == b"via channel"
            peer.sendto(b"back on channel", src)
            got = await d.wait_for("data", 10)
            assert got.data["data"] == b"back on channel" and got.data["channel"] == 0x4000
            c.refresh(0)
            d.poke()
            assert (await d.wait_for(("deallocated", "error"), 10)).kind == "deallocated"
        peer.close()

    asyncio.run(main())


def test_p2plab_turn_client_wrong_password_against_coturn(coturn) -> None:
    async def main() -> None:
        async with Driver(TurnClient(coturn, "alice", "wrong"), ("127.0.0.1", 0)) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "error" and ev.code == 401

    asyncio.run(main())
