"""IceAgent reaching its TURN server over TCP or TLS (networks that block UDP), and the udp-blocked preset.

Sans-I/O first: the agent's messages for a stream go out addressed to a ``StreamClient``, are framed
and cut as on a real stream, and the real ``TurnServer`` answers them; then the same agent on real
loopback sockets with ``IceDriver`` and a TLS listener; then the simulator's udp-blocked router.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from p2plab.errors import ConfigurationError
from p2plab.ice import run_ice
from p2plab.ice.agent import RELAY_LOCAL_PREFERENCE, IceAgent, IceConfig, parse_turn_url
from p2plab.ice.candidates import RELAY, SRFLX
from p2plab.matrix import DEFAULT_PRESETS
from p2plab.nat import FIREWALLED, PRESETS, preset
from p2plab.netns import nftables
from p2plab.turn.server import TurnServer
from p2plab.turn.stream import StreamClient, StreamFramer, frame_for_stream

# isort: off
from conftest import need
# isort: on

SERVER = ("192.0.2.1", 443)
AGENT = ("192.168.1.10", 5000)
CLIENT = StreamClient("203.0.113.10", 40000, "tls")  # how the server sees the agent's connection


# -- TURN URIs (RFC 7065) ------------------------------------------------------------------------
@pytest.mark.parametrize("url, expected", [
    ("turn:192.0.2.1", ("udp", ("192.0.2.1", 3478))),
    ("turn:192.0.2.1:3479?transport=tcp", ("tcp", ("192.0.2.1", 3479))),
    ("turn:192.0.2.1:3479?transport=udp", ("udp", ("192.0.2.1", 3479))),
    ("turns:192.0.2.1:443", ("tls", ("192.0.2.1", 443))),
    ("turns:192.0.2.1", ("tls", ("192.0.2.1", 5349))),
    ("TURNS:192.0.2.1:443?transport=tcp", ("tls", ("192.0.2.1", 443))),
    ("turn:[2001:db8::1]:3478", ("udp", ("2001:db8::1", 3478))),
])
def test_turn_uris_parse(url, expected):
    assert parse_turn_url(url) == expected


@pytest.mark.parametrize("url, words", [
    ("stun:192.0.2.1", "not a TURN URI"),
    ("turns:192.0.2.1?transport=udp", "DTLS"),
    ("turn:192.0.2.1?transport=sctp", "transport=udp or"),
    ("turn:turn.example.org", "IP address"),
    ("turn:192.0.2.1:99999", "1-65535"),
])
def test_bad_turn_uris_say_what_is_wrong(url, words):
    with pytest.raises(ConfigurationError, match=words):
        parse_turn_url(url)


def test_bad_turn_transport_is_refused():
    with pytest.raises(ConfigurationError, match="'udp', 'tcp' or 'tls'"):
        IceAgent("alice", turn_server=SERVER, turn_transport="quic", turn_username="a", turn_password="p")


# -- sans-I/O: the agent over a stream -------------------------------------------------------------
def _agent(**kw) -> IceAgent:
    kw.setdefault("turn_servers", [f"turns:{SERVER[0]}:{SERVER[1]}"])
    return IceAgent("alice", True, turn_username="alice", turn_password="secret", rng=random.Random(7),
                    config=IceConfig(gather_rc=2, gather_rm=2), **kw)


def _stream_pump(agent: IceAgent, server: TurnServer, now: float, to_server: StreamFramer,
                 to_agent: StreamFramer) -> list:
    """Carry what each side queued over one framed 'connection'; returns the agent's UDP datagrams."""
    udp = []
    for _ in range(20):
        moved = False
        for data, dest in agent.datagrams_to_send():
            if isinstance(dest, StreamClient):
                assert dest.transport == "tls" and tuple(dest) == SERVER
                for frame in to_server.feed(frame_for_stream(data)):
                    server.datagram_received(frame, CLIENT, now)
                moved = True
            else:
                udp.append((data, dest))
        for entry in server.datagrams_to_send():
            data, dest = entry[0], entry[1]
            if dest == CLIENT:
                for frame in to_agent.feed(frame_for_stream(data)):
                    agent.datagram_received(frame, StreamClient(*SERVER, "tls"), now)
                moved = True
        if not moved:
            break
    return udp


def test_agent_allocates_over_tls_and_its_relay_is_a_udp_candidate_reached_over_tls():
    agent = _agent()
    server = TurnServer({"alice": "secret"}, relay_ip="192.0.2.1", rng=random.Random(1))
    server.start(0.0, SERVER)
    agent.start(0.0, AGENT)
    agent.handle_timer(agent.next_timer())  # the TURN gathering starts Ta after STUN (none here: at once)
    to_server, to_agent = StreamFramer(), StreamFramer()
    udp = _stream_pump(agent, server, 0.01, to_server, to_agent)
    assert not udp  # nothing for the TURN server went out as a UDP datagram
    relay = agent.relay
    assert relay is not None and relay.type == RELAY and relay.transport == "udp"
    assert relay.relay_protocol == "tls" and relay.server == SERVER
    assert relay.local_preference == RELAY_LOCAL_PREFERENCE["tls"]
    assert "TURN over TLS to 192.0.2.1:443" in str(relay)
    # the TCP mapping the server saw is no UDP server-reflexive candidate
    assert not [c for c in agent.local_candidates if c.type == SRFLX]
    assert agent.turn_attempts[-1]["ok"] is True and agent.turn_attempts[-1]["transport"] == "tls"
    # closing deletes the allocation over the same connection
    agent.close(0.5)
    _stream_pump(agent, server, 0.5, to_server, to_agent)
    assert agent.released and not server.allocations


def test_relays_over_udp_rank_above_tcp_above_tls():
    assert RELAY_LOCAL_PREFERENCE["udp"] > RELAY_LOCAL_PREFERENCE["tcp"] > RELAY_LOCAL_PREFERENCE["tls"]


def test_fallback_waits_out_udp_then_skips_a_failed_connection_at_once():
    agent = _agent(turn_servers=["turn:192.0.2.1:3479", "turn:192.0.2.1:3479?transport=tcp", "turns:192.0.2.1:443"])
    agent.start(0.0, AGENT)
    events = []
    now = 0.0
    while agent.turn_transport == "udp" and now < 60:  # the UDP Allocate goes unanswered (UDP is blocked)
        now = agent.next_timer()
        agent.handle_timer(now)
        agent.datagrams_to_send()
        events += agent.events()
    assert agent.turn_attempts[0]["ok"] is False and "never answered" in agent.turn_attempts[0]["why"]
    assert 1.0 < agent.turn_attempts[0]["ended"] < 5.0  # 2 requests, RTO 0.5 s, then 2 x RTO
    agent.handle_timer(agent.next_timer())
    out = agent.datagrams_to_send()
    assert out and all(isinstance(d, StreamClient) and d.transport == "tcp" for _, d in out)
    agent.stream_failed(StreamClient("192.0.2.1", 3479, "tcp"), "no answer within 3 s", now + 3)
    assert agent.turn_transport == "tls" and agent.turn_attempts[1]["ok"] is False
    assert agent.next_timer() == pytest.approx(now + 3)  # the next server is tried at once, not after 39.5 s
    agent.handle_timer(now + 3)
    assert all(d.transport == "tls" for _, d in agent.datagrams_to_send())
    kinds = [e.kind for e in events + agent.events()]
    assert kinds.count("turn-attempt-failed") == 2
    assert any("trying the next TURN server" in n for n in agent.notes)


def test_when_every_turn_server_fails_gathering_completes_without_a_relay():
    agent = _agent(turn_servers=["turn:192.0.2.1:3479?transport=tcp"])
    agent.start(0.0, AGENT)
    agent.handle_timer(agent.next_timer())
    agent.datagrams_to_send()
    agent.stream_failed(StreamClient("192.0.2.1", 3479, "tcp"), "connection refused", 0.2)
    done = [e for e in agent.events() if e.kind == "gathering-complete"]
    assert done and [c.type for c in done[0].candidates] == ["host"]
    assert "no relayed candidate" in agent.notes[-1] and "connection refused" in agent.notes[-1]


def test_stream_failure_of_another_server_is_ignored():
    agent = _agent()
    agent.start(0.0, AGENT)
    agent.handle_timer(agent.next_timer())
    agent.stream_failed(StreamClient("192.0.2.99", 443, "tls"), "not ours", 0.1)
    agent.stream_failed(("192.0.2.1", 443), "udp is not a stream", 0.1)
    assert agent.turn_attempts[-1]["ok"] is None and agent.state == "gathering"


def test_agent_ignores_garbage_on_the_stream_and_still_allocates():
    """Fuzz-ish: random frames (and random bytes) from the TURN server's connection, or from a
    connection the agent no longer uses, neither crash the agent nor become peer data."""
    rng = random.Random(2024)
    agent = _agent()
    server = TurnServer({"alice": "secret"}, relay_ip="192.0.2.1", rng=random.Random(1))
    server.start(0.0, SERVER)
    agent.start(0.0, AGENT)
    agent.handle_timer(agent.next_timer())
    stale = StreamClient("192.0.2.1", 3479, "tcp")
    for i in range(400):
        n = rng.choice([1, 4, 19, 20, 24, 36, 100, 600])
        junk = bytearray(rng.randbytes(n))
        if i % 3 == 0 and n >= 20:  # STUN-shaped: the magic cookie in place, the rest random
            junk[0] &= 0x3F
            junk[4:8] = b"\x21\x12\xa4\x42"
        elif i % 3 == 1 and n >= 4:  # ChannelData-shaped
            junk[0] = 0x40 | (junk[0] & 0x0F)
        agent.datagram_received(bytes(junk), StreamClient(*SERVER, "tls"), 0.001 * i)
        agent.datagram_received(bytes(junk), stale, 0.001 * i)
    assert not [e for e in agent.events() if e.kind == "data"]
    assert agent.state == "gathering" and agent.relay is None
    udp = _stream_pump(agent, server, 0.5, StreamFramer(), StreamFramer())
    assert not udp and agent.relay is not None and agent.relay.relay_protocol == "tls"


# -- real sockets on loopback: IceDriver holds the TLS connection -----------------------------------
@pytest.mark.timeout(60)
def test_agents_connect_on_loopback_with_udp_and_tcp_turn_failing_and_tls_winning(tmp_path):
    need("openssl")
    from p2plab.aio import Driver
    from p2plab.ice.streams import IceDriver
    from p2plab.turn.stream import lab_certificate, serve_streams, server_ssl_context

    cert, key = lab_certificate(tmp_path, hosts=("127.0.0.1",))

    async def main():
        turn = TurnServer({"alice": "a", "bob": "b"}, allowed_peers=["127.0.0.0/8"])
        async with Driver(turn, ("127.0.0.1", 0)) as td:
            tls = await serve_streams(td, "127.0.0.1", 0, server_ssl_context(cert, key))
            port = tls.sockets[0].getsockname()[1]
            closed = Driver(TurnServer({"x": "y"}), ("127.0.0.1", 0))  # a UDP port where nothing answers
            await closed.start()
            silent_udp = closed.local_addr
            closed.close()
            cfg = IceConfig(gather_rc=2, gather_rm=2)
            a = IceAgent("alice", True, turn_username="alice", turn_password="a", rng=random.Random(1), config=cfg,
                         turn_servers=[f"turn:127.0.0.1:{silent_udp[1]}", "turn:127.0.0.1:9?transport=tcp",
                                       f"turns:127.0.0.1:{port}"])
            b = IceAgent("bob", False, turn_server=td.local_addr, turn_username="bob", turn_password="b",
                         rng=random.Random(2), config=cfg)
            async with IceDriver(a, ("127.0.0.1", 0), cafile=cert) as da, IceDriver(b, ("127.0.0.1", 0)) as db:
                if a.gathered_at is None:
                    await da.wait_for("gathering-complete", 20)
                if b.gathered_at is None:
                    await db.wait_for("gathering-complete", 20)
                db.call(b.set_remote, a.ufrag, a.password, a.local_candidates)
                da.call(a.set_remote, b.ufrag, b.password, b.local_candidates)
                done = await da.wait_for(("completed", "failed"), 20)
                da.call(a.close)
                await da.wait_for("released", 5)
                db.call(b.close)
                await db.wait_for("released", 5)
            tls.close()
            return a, da, done, turn

    a, da, done, turn = asyncio.run(main())
    assert done.kind == "completed"
    assert [(t["transport"], t["ok"]) for t in a.turn_attempts] == [("udp", False), ("tcp", False), ("tls", True)]
    assert da.connections[0]["transport"] == "tcp" and da.connections[0]["connected"] is None
    assert da.connections[1]["transport"] == "tls" and da.connections[1]["connected"] is not None
    assert a.relay is not None and a.relay.relay_protocol == "tls"
    rows = [r for r in a.report() if r["local_type"] == RELAY]
    assert rows and {r["relay_protocol"] for r in rows} == {"tls"}
    assert not turn.allocations  # both agents deleted theirs (alice over TLS)


# -- the udp-blocked preset ---------------------------------------------------------------------------
def test_udp_blocked_is_a_preset_but_not_one_of_the_classic_five():
    b = preset("udp-blocked")
    assert b.egress_only == (("tcp", 443),) and b.classic_name == "port-restricted cone"
    assert "udp-blocked" in FIREWALLED and "udp-blocked" not in PRESETS
    assert len(PRESETS) == 5 and "udp-blocked" not in DEFAULT_PRESETS
    assert b.egress_blocked(6, 443) is None
    assert b.egress_blocked(17, 3478) == "udp-blocked firewall: only TCP to port 443 may leave (UDP to port 3478 dropped)"
    assert "TCP to port 80 dropped" in b.egress_blocked(6, 80)
    with pytest.raises(ConfigurationError, match="egress_only"):
        preset("port-restricted-cone", egress_only=(("icmp", 0),))


def test_nftables_forward_chain_lets_only_tcp_443_out():
    r = nftables.nat_ruleset(preset("udp-blocked"), "wan0", "lan0", ["203.0.113.10"], "192.168.1.0/24")
    assert r.startswith("table ip p2plab-")
    forward = r[r.index("chain forward"):].split("}")[0]
    assert 'iifname "lan0" oifname "wan0" tcp dport 443 accept' in forward
    assert 'iifname "lan0" oifname "wan0" counter drop comment "udp-blocked firewall: only TCP to port 443' in forward
    assert 'iifname "lan0" oifname "wan0" accept' not in forward
    assert forward.index("established,related accept") < forward.index("tcp dport 443")
    plain = nftables.nat_ruleset(preset("port-restricted-cone"), "wan0", "lan0", ["203.0.113.10"], "192.168.1.0/24")
    assert 'iifname "lan0" oifname "wan0" accept' in plain and "dport 443" not in plain


def test_sim_udp_blocked_fails_and_says_why_and_where_the_fallback_runs():
    r = run_ice("udp-blocked", "port-restricted-cone")
    assert not r.success
    assert "UDP is blocked" in r.reason and "--world netns" in r.reason
    drops = r.trace.df.query("action == 'dropped' and node == 'nat-a'")
    assert drops["reason"].str.startswith("udp-blocked firewall: only TCP to port 443 may leave").all()
    assert len(drops) > 0
    ok = run_ice("port-restricted-cone", "port-restricted-cone")
    assert ok.success and "UDP is blocked" not in ok.reason


def test_the_simulator_refuses_stream_traffic_with_a_clear_message():
    from p2plab import sim
    from p2plab import topology as t

    net = sim.Network.build(t.punch("udp-blocked", "port-restricted-cone"), seed=0)
    agent = IceAgent("alice", True, turn_server=(t.SERVER_IP, 443), turn_transport="tls", turn_username="alice",
                     turn_password="secret", rng=random.Random(1))
    with pytest.raises(ConfigurationError, match="only UDP datagrams.*real lab"):
        net.run_protocol("alice", agent, 5000)
        net.run(until=1.0)


@pytest.mark.timeout(60)
def test_a_tcp_server_that_answers_garbage_is_dropped_and_the_next_turn_server_tried():
    """IceDriver cuts the stream with StreamFramer: bytes that cannot be TURN (here a TLS record where
    STUN or ChannelData must come) close that connection, and the agent moves on at once."""
    from p2plab.aio import Driver
    from p2plab.ice.streams import IceDriver
    from p2plab.turn.stream import serve_streams

    async def main():
        async def garbage(reader, writer):
            await reader.read(100)
            writer.write(b"\x16\x03\x01\x00\x50" + bytes(range(80)))
            await writer.drain()
            await asyncio.sleep(2)
            writer.close()

        bad = await asyncio.start_server(garbage, "127.0.0.1", 0)
        bad_port = bad.sockets[0].getsockname()[1]
        turn = TurnServer({"alice": "a"}, allowed_peers=["127.0.0.0/8"])
        async with Driver(turn, ("127.0.0.1", 0)) as td:
            good = await serve_streams(td, "127.0.0.1", 0)
            good_port = good.sockets[0].getsockname()[1]
            a = IceAgent("alice", True, turn_username="alice", turn_password="a", rng=random.Random(1),
                         turn_servers=[f"turn:127.0.0.1:{bad_port}?transport=tcp",
                                       f"turn:127.0.0.1:{good_port}?transport=tcp"])
            async with IceDriver(a, ("127.0.0.1", 0)) as da:
                if a.gathered_at is None:
                    await da.wait_for("gathering-complete", 10)
                da.call(a.close)
                await da.wait_for("released", 5)
            good.close()
        bad.close()
        return a

    a = asyncio.run(main())
    first, second = a.turn_attempts
    assert first["ok"] is False and "is not TURN" in first["why"] and "magic cookie" in first["why"]
    assert first["ended"] < 1.0  # at once, not after the 39.5 s transaction timeout
    assert second["ok"] is True and a.relay is not None and a.relay.relay_protocol == "tcp"


def test_recorded_facts_name_the_relay_transport_only_where_one_was_recorded():
    from p2plab import recorded

    for name in recorded.SCENARIOS:
        facts = recorded.real_run(name, live=False).facts().splitlines()
        assert sum(line.startswith(("direct path", "worked as")) for line in facts) == 1, facts
        assert any(line.startswith("alice reached her TURN relay") for line in facts) == (name == "ice-udp-blocked")
    last = recorded.real_run("ice-udp-blocked", live=False).facts().splitlines()[-1]
    assert last == "alice reached her TURN relay over TLS"
