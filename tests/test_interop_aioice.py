"""Interoperability with aioice (the ICE library of aiortc): its STUN and TURN clients against
p2plab's servers on 127.0.0.1, and its codec against p2plab's."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aioice import stun as astun  # a test dependency: missing means a broken install, so no skip
from aioice.turn import create_turn_endpoint

from p2plab.aio import Driver
from p2plab.stun import StunServer
from p2plab.stun import message as m
from p2plab.stun.message import StunMessage
from p2plab.turn import TurnServer

pytestmark = pytest.mark.timeout(60)


class AioiceStunClient(asyncio.DatagramProtocol):
    """aioice's own transaction machinery (retransmissions, matching) on a plain socket."""

    def __init__(self) -> None:
        self.transactions: dict[bytes, astun.Transaction] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send_stun(self, message, addr) -> None:
        self.transport.sendto(bytes(message), addr)

    def datagram_received(self, data, addr) -> None:
        msg = astun.parse_message(data)
        tx = self.transactions.get(msg.transaction_id)
        if tx:
            tx.response_received(msg, addr)

    async def request(self, message, addr):
        tx = astun.Transaction(message, addr, self)
        self.transactions[message.transaction_id] = tx
        return await tx.run()


def test_aioice_stun_client_against_p2plab_server() -> None:
    async def main() -> None:
        async with Driver(StunServer(), ("127.0.0.1", 0)) as srv:
            loop = asyncio.get_running_loop()
            transport, proto = await loop.create_datagram_endpoint(AioiceStunClient, local_addr=("127.0.0.1", 0))
            try:
                req = astun.Message(message_method=astun.Method.BINDING, message_class=astun.Class.REQUEST)
                req.add_fingerprint()
                resp, addr = await asyncio.wait_for(proto.request(req, srv.local_addr), 10)
                assert resp.attributes["XOR-MAPPED-ADDRESS"] == transport.get_extra_info("sockname")
                assert addr == srv.local_addr
            finally:
                transport.close()

    asyncio.run(main())


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait((data, addr))


@pytest.mark.parametrize("messages", [1, 5])
def test_aioice_turn_client_against_p2plab_server(messages: int) -> None:
    async def main() -> None:
        server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"])
        async with Driver(server, ("127.0.0.1", 0)) as srv:
            peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer.bind(("127.0.0.1", 0))
            peer.setblocking(False)
            loop = asyncio.get_running_loop()
            transport, proto = await asyncio.wait_for(
                create_turn_endpoint(Collector, srv.local_addr, "alice", "secret", lifetime=600), 10)
            try:
                relayed = transport.get_extra_info("sockname")
                assert relayed in srv.sockets  # our driver opened that relay socket
                for i in range(messages):
                    transport.sendto(f"hello {i}".encode(), peer.getsockname())
                    data, src = await asyncio.wait_for(loop.sock_recvfrom(peer, 2048), 5)
                    assert data == f"hello {i}".encode() and src == relayed
                    await loop.sock_sendto(peer, f"reply {i}".encode(), src)
                    got, frm = await asyncio.wait_for(proto.queue.get(), 5)
                    assert got == f"reply {i}".encode() and frm == peer.getsockname()
                # aioice binds a channel (0x4000) and then uses ChannelData
                assert any(a.channels for a in server.allocations.values())
            finally:
                transport.close()
                await asyncio.sleep(0.2)  # aioice deletes the allocation (Refresh LIFETIME 0)
                peer.close()
            assert server.allocations == {} and relayed not in srv.sockets

    asyncio.run(main())


def test_aioice_and_p2plab_codecs_agree() -> None:
    key = m.long_term_key("alice", "p2plab", "secret")
    ours = StunMessage(m.ALLOCATE, m.REQUEST, attributes=[
        ("REQUESTED-TRANSPORT", 17), ("LIFETIME", 600), ("USERNAME", "alice"), ("REALM", "p2plab"),
        ("NONCE", "abc"), ("XOR-PEER-ADDRESS", ("192.0.2.1", 1234))])
    raw = ours.encode(key=key, fingerprint=True)
    theirs = astun.parse_message(raw)
    assert theirs.check_message_integrity(key)
    assert theirs.attributes["LIFETIME"] == 600 and theirs.attributes["XOR-PEER-ADDRESS"] == ("192.0.2.1", 1234)
    built = astun.Message(message_method=astun.Method.BINDING, message_class=astun.Class.RESPONSE,
                          transaction_id=bytes(range(12)))
    built.attributes["XOR-MAPPED-ADDRESS"] = ("2001:db8::7", 9)
    built.add_message_integrity(b"pw")
    built.add_fingerprint()
    back = StunMessage.decode(bytes(built))
    assert back.get("XOR-MAPPED-ADDRESS") == ("2001:db8::7", 9)
    assert back.check_integrity(b"pw") and back.check_fingerprint()
