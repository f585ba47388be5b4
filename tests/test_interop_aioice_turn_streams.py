"""aioice's TURN client over TCP and TLS against p2plab's stream listeners (RFC 8656 framing
written by someone else), relaying UDP to a peer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aioice.turn import create_turn_endpoint  # a test dependency: missing means a broken install

from p2plab.aio import Driver
from p2plab.turn import TurnServer
from p2plab.turn.stream import client_ssl_context, lab_certificate, serve_streams, server_ssl_context

# test helpers next to this file (ruff cannot tell what kind of import they are)
# isort: off
from conftest import need
# isort: on

pytestmark = pytest.mark.timeout(60)


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait((data, addr))


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_aioice_turn_client_over_streams_against_p2plab(transport: str, tmp_path) -> None:
    if transport == "tls":
        need("openssl")
        cert, key = lab_certificate(tmp_path)

    async def main() -> None:
        server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"])
        async with Driver(server, ("127.0.0.1", 0)) as srv:
            ctx = server_ssl_context(cert, key) if transport == "tls" else None
            listener = await serve_streams(srv, "127.0.0.1", 0, ctx)
            addr = listener.sockets[0].getsockname()[:2]
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.bind(("127.0.0.1", 0))
            peer.setblocking(False)
            loop = asyncio.get_running_loop()
            turn, proto = await asyncio.wait_for(create_turn_endpoint(
                Collector, addr, "alice", "secret", transport="tcp",
                ssl=client_ssl_context(cert) if transport == "tls" else None), 10)
            try:
                relayed = turn.get_extra_info("sockname")
                assert relayed in srv.sockets
                for i, size in enumerate((1, 6, 300, 1203)):  # odd sizes: ChannelData padding on the stream
                    payload = bytes([i]) * size
                    turn.sendto(payload, peer.getsockname())
                    data, src = await asyncio.wait_for(loop.sock_recvfrom(peer, 4096), 5)
                    assert data == payload and src == relayed
                    await loop.sock_sendto(peer, payload[::-1] + b"!", src)
                    got, frm = await asyncio.wait_for(proto.queue.get(), 5)
                    assert got == payload[::-1] + b"!" and frm == peer.getsockname()
                assert any(a.channels for a in server.allocations.values())
                assert all(getattr(c, "transport", None) == transport for c in server.allocations)
            finally:
                turn.close()
                await asyncio.sleep(0.3)
                peer.close()
                listener.close()
            assert server.allocations == {} and relayed not in srv.sockets
            assert server.stats["bad-stream"] == 0

    asyncio.run(main())
