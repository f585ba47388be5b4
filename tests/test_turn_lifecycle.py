"""TURN allocation lifecycle: clients give back what they allocate (Refresh LIFETIME=0) on close,
also when the code using them fails; the server frees what a crashed client left behind."""

from __future__ import annotations

import asyncio
import random

import pytest

from p2plab.aio import Driver
from p2plab.turn import TurnClient, TurnServer

# test helpers next to this file (ruff cannot tell what kind of import they are)
# isort: off
from _servers import ServerThread
# isort: on

S = ("198.51.100.1", 3478)
C = ("10.0.0.2", 5000)

pytestmark = pytest.mark.timeout(60)


def wire(s: TurnServer, c: TurnClient, t: float) -> None:
    """Carry datagrams both ways until both sides are quiet."""
    for _ in range(10):
        for data, _ in c.datagrams_to_send():
            s.datagram_received(data, C, t)
        out = s.datagrams_to_send()
        if not out:
            return
        for data, _ in out:
            c.datagram_received(data, S, t)


def make() -> tuple[TurnServer, TurnClient]:
    s = TurnServer({"alice": "secret"}, rng=random.Random(1), max_allocations_per_user=1)
    s.start(0.0, S)
    c = TurnClient(S, "alice", "secret", rng=random.Random(2))
    c.start(0.0, C)
    return s, c


def test_close_deletes_the_allocation_and_frees_quota_and_port() -> None:
    s, c = make()
    wire(s, c, 0.0)
    relay = c.relayed
    assert relay in s.local_addresses() and [e.kind for e in c.events()] == ["allocated"]
    c.close()
    wire(s, c, 1.0)
    assert s.allocations == {} and s.local_addresses() == set()
    assert [e.kind for e in c.events()] == ["deallocated"] and c.relayed is None
    assert c.next_timer() is None  # no refresh left behind
    c.close()  # twice is fine
    assert c.datagrams_to_send() == []


def test_close_while_allocate_is_in_flight_deletes_it_when_the_answer_comes() -> None:
    s, c = make()
    # carry the 401 and the authenticated Allocate, but close before the success arrives
    for data, _ in c.datagrams_to_send():
        s.datagram_received(data, C, 0.0)
    for data, _ in s.datagrams_to_send():
        c.datagram_received(data, S, 0.0)
    for data, _ in c.datagrams_to_send():
        s.datagram_received(data, C, 0.0)
    assert len(s.allocations) == 1
    c.close()
    wire_back = s.datagrams_to_send()
    for data, _ in wire_back:
        c.datagram_received(data, S, 0.1)
    wire(s, c, 0.1)
    assert s.allocations == {} and "allocated" not in [e.kind for e in c.events()]


def test_deallocate_without_an_allocation_sends_nothing() -> None:
    c = TurnClient(S, "alice", "secret", auto_allocate=False)
    c.start(0.0, C)
    assert c.deallocate() is None and c.datagrams_to_send() == []


def test_refresh_of_a_vanished_allocation_forgets_it() -> None:
    s, c = make()
    wire(s, c, 0.0)
    s.handle_timer(600.0)  # the server expired it (e.g. the client slept through its refresh)
    assert s.allocations == {}
    c.refresh()
    wire(s, c, 601.0)
    evs = c.events()
    assert evs[-1].kind == "error" and evs[-1].code == 437 and c.relayed is None
    assert c.next_timer() is None


def test_driver_deletes_the_allocation_when_the_code_inside_fails() -> None:
    """`async with Driver(TurnClient(...))` gives the allocation back even after an exception,
    so repeated failing runs do not pile up allocations against the quota (486)."""
    server = TurnServer({"alice": "secret"}, max_allocations_per_user=1)

    async def failing_run(addr) -> None:
        async with Driver(TurnClient(addr, "alice", "secret"), ("127.0.0.1", 0)) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "allocated", ev
            raise RuntimeError("the application failed")

    with ServerThread(server) as srv:
        for _ in range(3):  # with a quota of 1, the second run would get 486 if the first leaked
            with pytest.raises(RuntimeError, match="application failed"):
                asyncio.run(failing_run(srv.addr))
            for _ in range(50):
                if srv.call(lambda: len(server.allocations)) == 0:
                    break
                asyncio.run(asyncio.sleep(0.02))
            assert srv.call(lambda: len(server.allocations)) == 0
        assert srv.call(lambda: server.stats["error-486"]) == 0


def test_permissions_and_channels_are_kept_alive_while_the_allocation_lives() -> None:
    """Permissions last 300 s on the server: the client refreshes them (and its channel bindings)
    so relaying keeps working for as long as the allocation does - and stops refreshing on close."""
    s, c = make()
    wire(s, c, 0.0)
    peer_a, peer_b = ("203.0.113.9", 7000), ("203.0.113.10", 7000)
    c.create_permission(peer_a)
    c.channel_bind(peer_b)
    wire(s, c, 0.0)
    assert [e.kind for e in c.events()] == ["allocated", "permission", "channel-bound"]
    t = 0.0
    while t < 1000.0:
        t = c.next_timer()
        c.handle_timer(t)
        wire(s, c, t)
    relay = c.relayed
    for peer in (peer_a, peer_b):  # both still let through by the server after 1,000 s
        s.datagram_received_on(b"late", peer, relay, t)
        assert s.datagrams_to_send(), f"{peer} lost its permission"
    assert [e.kind for e in c.events() if e.kind != "refreshed"] == []  # refreshes are quiet
    c.close()
    wire(s, c, t + 1)
    assert c.next_timer() is None and s.allocations == {}
