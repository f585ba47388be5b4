"""Fire >= 100,000 random and mutated datagrams at running STUN and TURN servers on 127.0.0.1.

Bounded in count and time; afterwards the servers still answer, nothing raised, memory stayed
bounded (allocations, events and the process's size)."""

from __future__ import annotations

import asyncio
import random
import resource
import socket
import time

import pytest

from p2plab.aio import Driver
from p2plab.stun import StunClient, StunServer
from p2plab.stun import message as m
from p2plab.stun.message import ChannelData, StunMessage, long_term_key
from p2plab.turn import TurnClient, TurnServer

# test helpers next to this file (ruff cannot tell what kind of import they are)
# isort: off
from _servers import ServerThread
# isort: on

pytestmark = pytest.mark.timeout(120)

PER_SERVER = 60_000
TIME_BUDGET = 25.0  # seconds per server, at most


def corpus(rng: random.Random) -> list[bytes]:
    key = long_term_key("alice", "p2plab", "secret")
    peer = ("127.0.0.1", 9)
    return [
        StunMessage(rng=rng).encode(),
        StunMessage(rng=rng, attributes=[("CHANGE-REQUEST", 6)]).encode(fingerprint=True),
        StunMessage(m.ALLOCATE, m.REQUEST, rng=rng, attributes=[("REQUESTED-TRANSPORT", 17)]).encode(),
        StunMessage(m.ALLOCATE, m.REQUEST, rng=rng, attributes=[
            ("REQUESTED-TRANSPORT", 17), ("USERNAME", "alice"), ("REALM", "p2plab"), ("NONCE", "0-abc")]).encode(
            key=key, fingerprint=True),
        StunMessage(m.REFRESH, m.REQUEST, rng=rng, attributes=[("LIFETIME", 0)]).encode(key=key),
        StunMessage(m.CHANNEL_BIND, m.REQUEST, rng=rng, attributes=[
            ("CHANNEL-NUMBER", 0x4000), ("XOR-PEER-ADDRESS", peer)]).encode(key=key),
        StunMessage(m.SEND, m.INDICATION, rng=rng, attributes=[("XOR-PEER-ADDRESS", peer), ("DATA", b"x" * 40)]).encode(),
        ChannelData(0x4000, b"y" * 30).encode(),
        ChannelData(0x7ABC, b"z" * 30, rfc5766=True).encode(),
        StunMessage(m.ALLOCATE, m.REQUEST, rng=rng, attributes=[
            ("REQUESTED-TRANSPORT", 17), ("EVEN-PORT", 0x80), ("RESERVATION-TOKEN", b"12345678"),
            ("REQUESTED-ADDRESS-FAMILY", 2), ("ADDITIONAL-ADDRESS-FAMILY", 2), ("DONT-FRAGMENT", None),
            ("USERNAME", "alice"), ("REALM", "p2plab"), ("NONCE", "0-abc")]).encode(key=key, fingerprint=True),
    ]


def junk(rng: random.Random, templates: list[bytes]) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return rng.randbytes(rng.randint(0, 300))
    data = bytearray(rng.choice(templates))
    if kind < 0.8:
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind < 0.9:
        del data[rng.randint(0, len(data)):]
    else:
        pos = rng.randint(20, len(data)) if len(data) > 20 else 0
        data[pos:pos] = rng.randbytes(rng.choice((4, 8, 12)))
    return bytes(data)


def flood(addr: tuple[str, int], seed: int) -> tuple[int, float]:
    rng = random.Random(seed)
    templates = corpus(rng)
    datagrams = [junk(rng, templates) for _ in range(2000)] + templates
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    sent = 0
    t0 = time.monotonic()
    try:
        while sent < PER_SERVER and time.monotonic() - t0 < TIME_BUDGET:
            data = datagrams[sent % len(datagrams)] if sent % 3 else junk(rng, templates)
            try:
                socks[sent % 4].sendto(data, addr)
            except BlockingIOError:
                time.sleep(0.001)
            sent += 1
            if sent % 100 == 0:
                time.sleep(0.002)  # let the server thread keep up (the kernel drops what overflows)
            if sent % 2000 == 0:
                for s in socks:  # drain replies so they do not pile up in our buffers
                    try:
                        while True:
                            s.recvfrom(4096)
                    except BlockingIOError:
                        pass
    finally:
        for s in socks:
            s.close()
    return sent, time.monotonic() - t0


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def still_answers_stun(addr) -> bool:
    async def main() -> bool:
        async with Driver(StunClient(addr), ("127.0.0.1", 0)) as c:
            return (await c.wait_for(("mapped", "timeout"), 10)).kind == "mapped"

    return asyncio.run(main())


def still_allocates(addr) -> bool:
    async def main() -> bool:
        async with Driver(TurnClient(addr, "alice", "secret"), ("127.0.0.1", 0)) as c:
            return (await c.wait_for(("allocated", "error", "timeout"), 10)).kind == "allocated"

    return asyncio.run(main())


def test_flood_stun_and_turn_servers() -> None:
    before = rss_mb()
    stun = StunServer(alt_ip="127.0.0.2", alt_port=_free_port("127.0.0.2"))
    turn = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"], max_allocations_per_user=5)
    total = 0
    with ServerThread(stun) as s1, ServerThread(turn) as s2:
        for srv, seed in ((s1, 1), (s2, 2)):
            sent, took = flood(srv.addr, seed)
            total += sent
            print(f"{sent} datagrams to {srv.addr} in {took:.1f} s")
        time.sleep(0.5)
        assert still_answers_stun(s1.addr)
        assert still_allocates(s2.addr)
        stun_stats = s1.call(lambda: dict(stun.stats))
        turn_stats = s2.call(lambda: dict(turn.stats))
        assert len(turn.allocations) <= 5 + 1
        assert len(s1.driver.events) <= s1.driver.events.maxlen
    assert total >= 100_000
    print("STUN server:", stun_stats, "\nTURN server:", turn_stats)
    assert stun_stats["datagrams"] > 0.5 * PER_SERVER, stun_stats  # most really reached the server
    assert stun_stats["bad"] > 1000 and stun_stats["responses"] > 1000, stun_stats
    assert turn_stats["bad"] > 1000, turn_stats
    assert rss_mb() - before < 150, f"memory grew by {rss_mb() - before:.0f} MB"


def _free_port(ip: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]
