"""Interoperability with aioice (the ICE library of aiortc): its STUN and TURN clients against
p2plab's servers on 127.0.0.1, its codec against p2plab's, and aioice as a full ICE peer of
p2plab's IceAgent (both roles, relay-only, trickle, application data, close)."""

from __future__ import annotations

import asyncio
import random
import socket

import aioice  # a test dependency: missing means a broken install, so no skip
import aioice.ice
import pytest
from aioice import stun as astun
from aioice.turn import create_turn_endpoint

from p2plab.aio import Driver
from p2plab.ice import Candidate, IceAgent, IceConfig
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


# -- aioice as a full ICE peer of p2plab's IceAgent, on loopback ----------------------------------------------
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def _to_aioice(c: Candidate) -> aioice.Candidate:
    return aioice.Candidate.from_sdp(c.to_sdp().removeprefix("candidate:"))


def _from_aioice(c: aioice.Candidate) -> Candidate:
    related = (c.related_address, c.related_port) if c.related_address else None
    return Candidate.make(c.type, (c.host, c.port), component=c.component, priority=c.priority,
                          foundation=c.foundation, related=related, origin="sent by aioice")


async def _until(driver: Driver, kinds: tuple[str, ...], timeout: float = 15.0):
    """The first event of one of ``kinds`` the driver has seen (already, or within ``timeout``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        ev = next((e for e in driver.events if e.kind in kinds), None)
        if ev is not None:
            return ev
        if loop.time() > end:
            raise TimeoutError(f"no {kinds} event within {timeout} s; events: {[e.kind for e in driver.events]}")
        await asyncio.sleep(0.01)


@pytest.fixture
def loopback_only(monkeypatch):
    """aioice gathers host candidates on every interface but 127.0.0.1: keep its traffic on loopback."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.mark.parametrize("ours_controlling", [True, False], ids=["p2plab-controlling", "aioice-controlling"])
@pytest.mark.parametrize("relay_only", [False, True], ids=["all", "aioice-relay-only"])
def test_aioice_peer_connects_and_exchanges_data(loopback_only, ours_controlling: bool, relay_only: bool) -> None:
    async def main() -> None:
        server = TurnServer(dict(USERS), allowed_peers=["127.0.0.0/8"])
        async with Driver(server, ("127.0.0.1", 0)) as srv:
            agent = IceAgent("p2plab", controlling=ours_controlling, turn_server=srv.local_addr,
                             turn_username="alice", turn_password=USERS["alice"], rng=random.Random(1))
            policy = aioice.TransportPolicy.RELAY if relay_only else aioice.TransportPolicy.ALL
            conn = aioice.Connection(ice_controlling=not ours_controlling, components=1, use_ipv6=False,
                                     turn_server=srv.local_addr, turn_username="bob",
                                     turn_password=USERS["bob"], transport_policy=policy)
            async with Driver(agent, ("127.0.0.1", 0)) as d:
                await _until(d, ("gathering-complete",))
                await conn.gather_candidates()
                theirs = [_from_aioice(c) for c in conn.local_candidates]
                assert {c.type for c in theirs} == ({"relay"} if relay_only else {"host", "relay"})
                d.call(agent.set_remote, conn.local_username, conn.local_password, theirs)
                conn.remote_username, conn.remote_password = agent.ufrag, agent.password
                for c in agent.local_candidates:
                    await conn.add_remote_candidate(_to_aioice(c))
                await conn.add_remote_candidate(None)
                await asyncio.wait_for(conn.connect(), 15)
                done = await _until(d, ("completed", "failed"))
                assert done.kind == "completed", done.data
                if relay_only:
                    assert agent.selected.remote.type == "relay"
                assert agent.role == ("controlling" if ours_controlling else "controlled")
                # application data, both ways, through whatever pair was selected
                d.call(agent.send_data, b"hello aioice")
                data, component = await asyncio.wait_for(conn.recvfrom(), 5)
                assert (data, component) == (b"hello aioice", 1)
                await conn.send(b"hello p2plab")
                got = await _until(d, ("data",), 5)
                assert got.data["data"] == b"hello p2plab" and got.on_selected
                assert len(server.allocations) == 2
                await conn.close()
                d.call(agent.close)
                released = await _until(d, ("released",), 5)
                assert released.ok, released.why
                assert agent.next_timer() is None
            assert server.allocations == {}  # aioice and p2plab both deleted theirs

    asyncio.run(main())


def test_aioice_trickles_candidates_to_a_checking_agent(loopback_only) -> None:
    """RFC 8838: aioice's candidates arrive one by one after our checks began."""
    async def main() -> None:
        agent = IceAgent("p2plab", controlling=True, rng=random.Random(2), config=IceConfig(trickle=True))
        conn = aioice.Connection(ice_controlling=False, components=1, use_ipv6=False)
        async with Driver(agent, ("127.0.0.1", 0)) as d:
            await _until(d, ("gathering-complete",))
            await conn.gather_candidates()
            d.call(agent.set_remote, conn.local_username, conn.local_password, [])
            assert agent.state == "checking" and len(agent.checklist) == 0
            conn.remote_username, conn.remote_password = agent.ufrag, agent.password
            for c in agent.local_candidates:
                await conn.add_remote_candidate(_to_aioice(c))
            await conn.add_remote_candidate(None)
            connecting = asyncio.ensure_future(conn.connect())
            await asyncio.sleep(0.2)
            for c in conn.local_candidates:
                d.call(agent.add_remote_candidate, _from_aioice(c))
            d.call(agent.end_of_candidates)
            await asyncio.wait_for(connecting, 15)
            done = await _until(d, ("completed", "failed"))
            assert done.kind == "completed", done.data
            trickled = [e for e in d.events if e.kind == "remote-candidate"]
            assert trickled and all(e.candidate.type == "host" for e in trickled)
            assert agent.selected.remote.type == "host"  # a prflx found first was replaced (RFC 8838 11.4)
            await conn.close()
            d.call(agent.close)

    asyncio.run(main())


def _agent_pair_session(srv_addr, seed: int, close: bool):
    """Two IceAgents with relayed candidates on loopback; returns after both completed (and closed)."""
    async def main():
        agents = [IceAgent(name, controlling=(name == "alice"), turn_server=srv_addr, turn_username=name,
                           turn_password=USERS[name], rng=random.Random(f"{seed}-{name}"),
                           config=IceConfig(nomination_wait=0.1)) for name in ("alice", "bob")]
        async with Driver(agents[0], ("127.0.0.1", 0)) as da, Driver(agents[1], ("127.0.0.1", 0)) as db:
            for d in (da, db):
                await _until(d, ("gathering-complete",))
            for (d, me), other in zip(((da, agents[0]), (db, agents[1])), (agents[1], agents[0])):
                d.call(me.set_remote, other.ufrag, other.password, other.local_candidates)
            for d in (da, db):
                assert (await _until(d, ("completed", "failed"))).kind == "completed"
            types = [{c.type for c in a.local_candidates} for a in agents]
            if close:
                for d, a in ((da, agents[0]), (db, agents[1])):
                    d.call(a.close)
                for d in (da, db):
                    assert (await _until(d, ("released",), 5)).ok
            else:  # a crashed client: nothing runs close(), not even the Driver on its way out
                for a in agents:
                    a.close = lambda *args, **kwargs: None
            return types, [a.notes for a in agents]
    return main()


def test_repeated_sessions_leave_no_allocations_behind(loopback_only) -> None:
    """Issue 16: sessions that never deleted their allocations hit the per-user quota (10) -> 486."""
    async def main() -> None:
        server = TurnServer(dict(USERS), allowed_peers=["127.0.0.0/8"])
        assert server.max_per_user == 10
        async with Driver(server, ("127.0.0.1", 0)) as srv:
            for seed in range(12):
                types, notes = await _agent_pair_session(srv.local_addr, seed, close=True)
                assert all("relay" in t for t in types), notes
                assert server.allocations == {}, f"session {seed} left {len(server.allocations)} allocations"
            # the same sessions without close(): the quota runs out, which is what close() prevents
            for seed in range(10):
                await _agent_pair_session(srv.local_addr, seed, close=False)
            assert len(server.allocations) == 20  # 10 for alice, 10 for bob
            types, notes = await _agent_pair_session(srv.local_addr, 99, close=False)
            assert all("relay" not in t for t in types)
            assert all(any("486" in n for n in ns) for ns in notes)

    asyncio.run(main())


def test_consent_freshness_with_aioice_both_ways(loopback_only, monkeypatch) -> None:
    """Both sides check consent (RFC 7675) on the selected pair and answer each other; when aioice
    goes away, the agent notices once no answer came for consent_timeout. Timers shortened."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)

    async def main() -> None:
        cfg = IceConfig(consent_interval=0.2, consent_timeout=1.5)
        agent = IceAgent("p2plab", controlling=True, rng=random.Random(4), config=cfg)
        conn = aioice.Connection(ice_controlling=False, components=1, use_ipv6=False)
        async with Driver(agent, ("127.0.0.1", 0)) as d:
            await _until(d, ("gathering-complete",))
            await conn.gather_candidates()
            d.call(agent.set_remote, conn.local_username, conn.local_password,
                   [_from_aioice(c) for c in conn.local_candidates])
            conn.remote_username, conn.remote_password = agent.ufrag, agent.password
            for c in agent.local_candidates:
                await conn.add_remote_candidate(_to_aioice(c))
            await conn.add_remote_candidate(None)
            await asyncio.wait_for(conn.connect(), 15)
            await _until(d, ("completed",))
            received_before = agent.stats["checks-received"]
            await asyncio.sleep(2.0)
            assert agent.stats["consent-answers"] >= 5  # aioice answered our consent checks
            assert agent.stats["checks-received"] - received_before >= 5  # and we answered aioice's
            assert agent.state == "completed" and not agent.consent_lost
            await conn.close()
            t_closed = d.now()
            lost = await _until(d, ("consent-lost",), 5)
            assert 1.0 <= lost.time - t_closed <= 1.6 + 0.3
            assert agent.state == "failed"

    asyncio.run(main())
