"""TURN server (RFC 8656) behaviour and security rules, sans-I/O on a fake clock."""

from __future__ import annotations

import random

import pytest

from p2plab.stun import message as m
from p2plab.stun.message import ChannelData, StunMessage, long_term_key
from p2plab.turn import TurnClient, TurnServer

S = ("198.51.100.1", 3478)
C = ("10.0.0.2", 5000)
PEER = ("203.0.113.9", 7000)
KEY = long_term_key("alice", "p2plab", "secret")


def server(**kw) -> TurnServer:
    s = TurnServer({"alice": "secret", "bob": "hunter2"}, rng=random.Random(1), **kw)
    s.start(0.0, S)
    return s


def ask(s: TurnServer, msg: StunMessage, key: bytes | None = None, src=C, now: float = 0.0) -> StunMessage:
    s.datagram_received(msg.encode(key=key, fingerprint=True), src, now)
    out = s.datagrams_to_send()
    assert len(out) == 1, out
    return StunMessage.decode(out[0][0])


def nonce(s: TurnServer, now: float = 0.0) -> str:
    return ask(s, StunMessage(m.ALLOCATE, m.REQUEST, attributes=[("REQUESTED-TRANSPORT", 17)]), now=now).get("NONCE")


def authed(method: int, s: TurnServer, attrs: list, user="alice", password="secret", realm="p2plab",
           n: str | None = None, now: float = 0.0, src=C) -> StunMessage:
    n = n or nonce(s, now)
    msg = StunMessage(method, m.REQUEST, attributes=attrs + [("USERNAME", user), ("REALM", realm), ("NONCE", n)])
    return ask(s, msg, long_term_key(user, realm, password), src=src, now=now)


def allocate(s: TurnServer, src=C, user="alice", password="secret", now: float = 0.0) -> StunMessage:
    return authed(m.ALLOCATE, s, [("REQUESTED-TRANSPORT", 17)], user=user, password=password, src=src, now=now)


def test_unauthenticated_allocate_gets_401_with_realm_and_nonce() -> None:
    s = server()
    resp = ask(s, StunMessage(m.ALLOCATE, m.REQUEST, attributes=[("REQUESTED-TRANSPORT", 17)]))
    assert resp.error[0] == 401 and resp.get("REALM") == "p2plab" and resp.get("NONCE")
    assert not resp.has_integrity and s.allocations == {}


def test_allocate_success() -> None:
    s = server()
    resp = allocate(s)
    assert resp.cls == m.SUCCESS and resp.check_integrity(KEY)
    relay = resp.get("XOR-RELAYED-ADDRESS")
    assert relay[0] == S[0] and 49152 <= relay[1] <= 65535
    assert resp.get("XOR-MAPPED-ADDRESS") == C and resp.get("LIFETIME") == 600
    assert s.local_addresses() == {relay}


def test_wrong_password_is_401() -> None:
    s = server()
    resp = allocate(s, password="guess")
    assert resp.error[0] == 401 and resp.get("NONCE") and s.allocations == {}
    resp = allocate(s, user="mallory", password="x")
    assert resp.error[0] == 401


def test_stale_nonce_is_438() -> None:
    s = server(nonce_lifetime=60)
    old = nonce(s, now=0.0)
    resp = authed(m.ALLOCATE, s, [("REQUESTED-TRANSPORT", 17)], n=old, now=100.0)
    assert resp.error[0] == 438 and resp.get("NONCE") != old
    forged = authed(m.ALLOCATE, s, [("REQUESTED-TRANSPORT", 17)], n="0-0000000000000000", now=100.0)
    assert forged.error[0] == 438


def test_missing_transport_and_wrong_transport() -> None:
    s = server()
    assert authed(m.ALLOCATE, s, []).error[0] == 400
    assert authed(m.ALLOCATE, s, [("REQUESTED-TRANSPORT", 6)]).error[0] == 442


def test_second_allocate_is_437_but_retransmission_gets_same_answer() -> None:
    s = server()
    n = nonce(s)
    req = StunMessage(m.ALLOCATE, m.REQUEST, attributes=[("REQUESTED-TRANSPORT", 17), ("USERNAME", "alice"),
                                                         ("REALM", "p2plab"), ("NONCE", n)])
    first = ask(s, req, KEY)
    again = ask(s, req, KEY)
    assert first.cls == again.cls == m.SUCCESS and first.get("XOR-RELAYED-ADDRESS") == again.get("XOR-RELAYED-ADDRESS")
    assert allocate(s).error[0] == 437


def test_quota_per_user() -> None:
    s = server(max_allocations_per_user=2)
    assert allocate(s, src=("10.0.0.2", 1)).cls == m.SUCCESS
    assert allocate(s, src=("10.0.0.2", 2)).cls == m.SUCCESS
    assert allocate(s, src=("10.0.0.2", 3)).error[0] == 486
    assert allocate(s, src=("10.0.0.2", 4), user="bob", password="hunter2").cls == m.SUCCESS


@pytest.mark.parametrize("peer", [("127.0.0.1", 80), ("0.0.0.0", 1), ("224.0.0.1", 5), S, ("198.51.100.1", 9)])
def test_forbidden_peers_403(peer) -> None:
    s = server()
    allocate(s)
    assert authed(m.CREATE_PERMISSION, s, [("XOR-PEER-ADDRESS", peer)]).error[0] == 403
    assert authed(m.CHANNEL_BIND, s, [("CHANNEL-NUMBER", 0x4000), ("XOR-PEER-ADDRESS", peer)]).error[0] == 403


def test_allow_list() -> None:
    s = server(allowed_peers=["127.0.0.0/8"])
    allocate(s)
    assert authed(m.CREATE_PERMISSION, s, [("XOR-PEER-ADDRESS", ("127.0.0.1", 80))]).cls == m.SUCCESS
    assert authed(m.CREATE_PERMISSION, s, [("XOR-PEER-ADDRESS", PEER)]).error[0] == 403


def relay_of(s: TurnServer) -> tuple:
    return s.allocations[C].relay


def test_permission_gates_peer_data_by_ip_only() -> None:
    s = server()
    allocate(s)
    relay = relay_of(s)
    # no permission yet: peer data is dropped, Send indications too
    s.datagram_received_on(b"sneaky", PEER, relay, 1.0)
    s.datagram_received(StunMessage(m.SEND, m.INDICATION, attributes=[("XOR-PEER-ADDRESS", PEER),
                                                                     ("DATA", b"x")]).encode(), C, 1.0)
    assert s.datagrams_to_send() == []
    assert authed(m.CREATE_PERMISSION, s, [("XOR-PEER-ADDRESS", PEER)], now=2.0).cls == m.SUCCESS
    # another port of the same IP may now send (permissions are per IP address)
    s.datagram_received_on(b"hi", (PEER[0], 9999), relay, 3.0)
    (data, dest), = s.datagrams_to_send()
    ind = StunMessage.decode(data)
    assert dest == C and ind.method == m.DATA and ind.get("DATA") == b"hi" and ind.get("XOR-PEER-ADDRESS") == (PEER[0], 9999)
    # client to peer goes out from the relay address
    s.datagram_received(StunMessage(m.SEND, m.INDICATION, attributes=[("XOR-PEER-ADDRESS", PEER),
                                                                     ("DATA", b"yo")]).encode(), C, 3.0)
    (out,) = s.datagrams_to_send()
    assert tuple(out) == (b"yo", PEER) and out.via == relay
    # a different IP is still refused, and the permission expires after 300 s
    s.datagram_received_on(b"x", ("203.0.113.10", 7000), relay, 4.0)
    assert s.datagrams_to_send() == []
    s.datagram_received_on(b"late", PEER, relay, 2.0 + 300.0)
    assert s.datagrams_to_send() == []


def test_channels() -> None:
    s = server()
    allocate(s)
    relay = relay_of(s)
    assert authed(m.CHANNEL_BIND, s, [("CHANNEL-NUMBER", 0x3FFF), ("XOR-PEER-ADDRESS", PEER)]).error[0] == 400
    assert authed(m.CHANNEL_BIND, s, [("CHANNEL-NUMBER", 0x8000), ("XOR-PEER-ADDRESS", PEER)]).error[0] == 400
    assert authed(m.CHANNEL_BIND, s, [("CHANNEL-NUMBER", 0x4001), ("XOR-PEER-ADDRESS", PEER)]).cls == m.SUCCESS
    # same channel to another peer, or same peer on another channel: 400
    assert authed(m.CHANNEL_BIND, s, [("CHANNEL-NUMBER", 0x4001),
                                      ("XOR-PEER-ADDRESS", ("203.0.113.9", 1))]).error[0] == 400
    assert authed(m.CHANNEL_BIND, s, [("CHANNEL-NUMBER", 0x4002), ("XOR-PEER-ADDRESS", PEER)]).error[0] == 400
    s.datagram_received(ChannelData(0x4001, b"fast").encode(), C, 1.0)
    (out,) = s.datagrams_to_send()
    assert tuple(out) == (b"fast", PEER) and out.via == relay
    s.datagram_received_on(b"back", PEER, relay, 1.0)
    (data, dest), = s.datagrams_to_send()
    assert ChannelData.decode(data) == ChannelData(0x4001, b"back") and dest == C
    # unbound channel: dropped
    s.datagram_received(ChannelData(0x4002, b"?").encode(), C, 1.0)
    assert s.datagrams_to_send() == []


def test_refresh_and_delete_free_the_relay_port() -> None:
    s = server()
    allocate(s)
    resp = authed(m.REFRESH, s, [("LIFETIME", 1200)], now=10.0)
    assert resp.get("LIFETIME") == 1200
    resp = authed(m.REFRESH, s, [("LIFETIME", 0)], now=20.0)
    assert resp.cls == m.SUCCESS and resp.get("LIFETIME") == 0
    assert s.allocations == {} and s.local_addresses() == set()
    assert authed(m.REFRESH, s, [], now=30.0).error[0] == 437


def test_expiry_frees_relay_port_on_timer() -> None:
    s = server()
    allocate(s)
    assert s.local_addresses()
    t = s.next_timer()
    while t is not None and t <= 601:
        s.handle_timer(t)
        t = s.next_timer()
    assert s.allocations == {} and s.local_addresses() == set()
    assert any(e.kind == "expired" for e in s.events())


def test_other_users_cannot_refresh() -> None:
    s = server()
    allocate(s)
    assert authed(m.REFRESH, s, [], user="bob", password="hunter2").error[0] == 441


def test_unknown_comprehension_required_attribute_420() -> None:
    s = server()
    resp = authed(m.ALLOCATE, s, [("REQUESTED-TRANSPORT", 17), (0x7FF0, b"whatever")])
    assert resp.error[0] == 420 and 0x7FF0 in resp.get("UNKNOWN-ATTRIBUTES")


def test_reserve_port_hook_is_used() -> None:
    s = server(relay_ports=(50000, 50003))
    tried = []

    def reserve(ip: str, port: int) -> bool:
        tried.append(port)
        return port == 50002

    s.reserve_port = reserve
    resp = allocate(s)
    assert resp.get("XOR-RELAYED-ADDRESS") == (S[0], 50002)
    s.reserve_port = lambda ip, port: False
    assert allocate(s, src=("10.0.0.3", 1)).error[0] == 508


def test_client_and_server_in_memory() -> None:
    s = server()
    c = TurnClient(S, "alice", "secret", rng=random.Random(3))
    c.start(0.0, C)

    def pump(t: float) -> list:
        relayed = []
        for _ in range(10):
            for data, _ in c.datagrams_to_send():
                s.datagram_received(data, C, t)
            out = s.datagrams_to_send()
            if not out:
                break
            for entry in out:
                if entry.via:
                    relayed.append(tuple(entry))
                else:
                    c.datagram_received(entry[0], S, t)
        return relayed

    pump(0.0)
    kinds = [e.kind for e in c.events()]
    assert kinds == ["allocated"]
    c.create_permission(PEER)
    pump(0.1)
    c.send_to(b"one", PEER)
    assert pump(0.2) == [(b"one", PEER)]
    c.channel_bind(PEER)
    pump(0.3)
    c.send_to(b"two", PEER)
    assert pump(0.4) == [(b"two", PEER)]
    s.datagram_received_on(b"three", PEER, c.relayed, 0.5)
    pump(0.5)
    evs = c.events()
    assert [e.kind for e in evs] == ["permission", "channel-bound", "data"] and evs[-1].data["data"] == b"three"
    # the client refreshes by itself before the 600 s lifetime runs out (and its permission and
    # channel before their 300 s, quietly)
    t = c.next_timer()
    assert t is not None and t < 300
    c.handle_timer(545.0)
    pump(545.0)
    assert [e.kind for e in c.events()] == ["refreshed"]


def test_client_recovers_from_stale_nonce() -> None:
    s = server(nonce_lifetime=60)
    c = TurnClient(S, "alice", "secret", rng=random.Random(4))
    c.start(0.0, C)
    for t in (0.0, 0.0, 0.0):
        for data, _ in c.datagrams_to_send():
            s.datagram_received(data, C, t)
        for data, _ in s.datagrams_to_send():
            c.datagram_received(data, S, t)
    assert [e.kind for e in c.events()] == ["allocated"]
    c.create_permission(PEER)  # uses the old nonce, now stale -> 438 -> retried with the new one
    for _ in range(3):
        for data, _ in c.datagrams_to_send():
            s.datagram_received(data, C, 100.0)
        for data, _ in s.datagrams_to_send():
            c.datagram_received(data, S, 100.0)
    assert [e.kind for e in c.events()] == ["permission"]


def test_client_reports_wrong_password() -> None:
    s = server()
    c = TurnClient(S, "alice", "nope", rng=random.Random(5))
    c.start(0.0, C)
    for _ in range(4):
        for data, _ in c.datagrams_to_send():
            s.datagram_received(data, C, 0.0)
        for data, _ in s.datagrams_to_send():
            c.datagram_received(data, S, 0.0)
    (ev,) = c.events()
    assert ev.kind == "error" and ev.code == 401


# -- Allocate options (RFC 8656 section 7.2) -------------------------------------------------------
def alloc_with(s: TurnServer, attrs: list, src=C, now: float = 0.0) -> StunMessage:
    return authed(m.ALLOCATE, s, [("REQUESTED-TRANSPORT", 17)] + attrs, src=src, now=now)


def test_even_port_with_r_bit_reserves_the_next_port_and_returns_a_token() -> None:
    s = server()
    resp = alloc_with(s, [("EVEN-PORT", 0x80)])
    ip, port = resp.get("XOR-RELAYED-ADDRESS")
    token = resp.get("RESERVATION-TOKEN")
    assert resp.cls == m.SUCCESS and port % 2 == 0 and len(token) == 8
    assert s.local_addresses() == {(ip, port), (ip, port + 1)}  # N+1 held open
    # the RTCP allocation, from another client port, takes the reserved N+1
    second = alloc_with(s, [("RESERVATION-TOKEN", token)], src=("10.0.0.2", 5001))
    assert second.cls == m.SUCCESS and second.get("XOR-RELAYED-ADDRESS") == (ip, port + 1)
    assert second.get("RESERVATION-TOKEN") is None
    # a token is good once
    again = alloc_with(s, [("RESERVATION-TOKEN", token)], src=("10.0.0.2", 5002))
    assert again.error[0] == 508 and "RESERVATION-TOKEN" in again.error[1]


def test_even_port_without_r_bit_gives_an_even_port_and_no_token() -> None:
    s = server()
    for i in range(10):
        resp = alloc_with(s, [("EVEN-PORT", 0)], src=("10.0.0.2", 6000 + i))
        assert resp.get("XOR-RELAYED-ADDRESS")[1] % 2 == 0 and resp.get("RESERVATION-TOKEN") is None
    assert len(s.local_addresses()) == 10


def test_reservation_token_errors() -> None:
    s = server()
    assert alloc_with(s, [("RESERVATION-TOKEN", b"12345678")]).error[0] == 508
    token = alloc_with(s, [("EVEN-PORT", 0x80)], src=("10.0.0.2", 1)).get("RESERVATION-TOKEN")
    for extra in [("EVEN-PORT", 0), ("REQUESTED-ADDRESS-FAMILY", 1), ("ADDITIONAL-ADDRESS-FAMILY", 2)]:
        resp = alloc_with(s, [("RESERVATION-TOKEN", token), extra], src=("10.0.0.2", 2))
        assert resp.error[0] == 400 and "RESERVATION-TOKEN cannot be combined" in resp.error[1]
    assert alloc_with(s, [("EVEN-PORT", 0x80), ("ADDITIONAL-ADDRESS-FAMILY", 2)], src=("10.0.0.2", 3)).error[0] == 400


def test_reservation_expires_after_30_s_and_frees_the_port() -> None:
    s = server()
    resp = alloc_with(s, [("EVEN-PORT", 0x80)])
    ip, port = resp.get("XOR-RELAYED-ADDRESS")
    token = resp.get("RESERVATION-TOKEN")
    assert s.next_timer() == pytest.approx(30.0)
    s.handle_timer(30.0)
    assert s.reservations == {} and s.local_addresses() == {(ip, port)}
    late = alloc_with(s, [("RESERVATION-TOKEN", token)], src=("10.0.0.2", 7), now=30.5)
    assert late.error[0] == 508


def test_datagrams_to_a_reserved_port_are_dropped_not_taken_for_client_traffic() -> None:
    s = server()
    resp = alloc_with(s, [("EVEN-PORT", 0x80)])
    ip, port = resp.get("XOR-RELAYED-ADDRESS")
    frame = StunMessage(m.ALLOCATE, m.REQUEST, attributes=[("REQUESTED-TRANSPORT", 17)]).encode()
    s.datagram_received_on(frame, PEER, (ip, port + 1), 1.0)
    assert s.datagrams_to_send() == [] and s.stats["dropped"] == 1


def test_requested_address_family() -> None:
    s = server()
    resp = alloc_with(s, [("REQUESTED-ADDRESS-FAMILY", 2)])
    assert resp.error[0] == 440 and "no IPv6 relay address" in resp.error[1]
    assert alloc_with(s, [("REQUESTED-ADDRESS-FAMILY", 7)]).error[0] == 440
    assert alloc_with(s, [("REQUESTED-ADDRESS-FAMILY", 1)]).get("XOR-RELAYED-ADDRESS")[0] == S[0]
    s6 = server(relay_ip6="2001:db8::1")
    relay = alloc_with(s6, [("REQUESTED-ADDRESS-FAMILY", 2)]).get("XOR-RELAYED-ADDRESS")
    assert relay[0] == "2001:db8::1"
    # an IPv6 relay only talks to IPv6 peers: 443 for an IPv4 one
    assert authed(m.CREATE_PERMISSION, s6, [("XOR-PEER-ADDRESS", PEER)]).error[0] == 443
    assert authed(m.CREATE_PERMISSION, s6, [("XOR-PEER-ADDRESS", ("2001:db8::9", 5))]).cls == m.SUCCESS
    # Refresh naming the other family: 443
    assert authed(m.REFRESH, s6, [("REQUESTED-ADDRESS-FAMILY", 1)]).error[0] == 443


def test_ipv6_only_server_needs_requested_address_family() -> None:
    s = TurnServer({"alice": "secret"}, rng=random.Random(1))
    s.start(0.0, ("2001:db8::1", 3478))
    resp = alloc_with(s, [])
    assert resp.error[0] == 440 and "REQUESTED-ADDRESS-FAMILY" in resp.error[1]
    assert alloc_with(s, [("REQUESTED-ADDRESS-FAMILY", 2)]).get("XOR-RELAYED-ADDRESS")[0] == "2001:db8::1"


def test_additional_address_family_dual_allocation() -> None:
    s = server(relay_ip6="2001:db8::1")
    resp = alloc_with(s, [("ADDITIONAL-ADDRESS-FAMILY", 2)])
    v4, v6 = resp.get_all("XOR-RELAYED-ADDRESS")
    assert v4[0] == S[0] and v6[0] == "2001:db8::1" and s.local_addresses() == {v4, v6}
    peer6 = ("2001:db8::9", 5)
    assert authed(m.CREATE_PERMISSION, s, [("XOR-PEER-ADDRESS", PEER), ("XOR-PEER-ADDRESS", peer6)]).cls == m.SUCCESS
    send = StunMessage(m.SEND, m.INDICATION, attributes=[("XOR-PEER-ADDRESS", peer6), ("DATA", b"v6")])
    s.datagram_received(send.encode(), C, 1.0)
    (out,) = s.datagrams_to_send()
    assert tuple(out) == (b"v6", peer6) and out.via == v6
    # Refresh LIFETIME=0 with a family deletes only that relay
    assert authed(m.REFRESH, s, [("LIFETIME", 0), ("REQUESTED-ADDRESS-FAMILY", 2)]).cls == m.SUCCESS
    assert s.local_addresses() == {v4}
    # errors: both family attributes, or an additional IPv4
    assert alloc_with(s, [("ADDITIONAL-ADDRESS-FAMILY", 1)], src=("10.0.0.2", 9)).error[0] == 400
    assert alloc_with(s, [("ADDITIONAL-ADDRESS-FAMILY", 2), ("REQUESTED-ADDRESS-FAMILY", 1)],
                      src=("10.0.0.2", 9)).error[0] == 400


def test_additional_address_family_without_ipv6_is_a_partial_success() -> None:
    s = server()
    resp = alloc_with(s, [("ADDITIONAL-ADDRESS-FAMILY", 2)])
    assert resp.cls == m.SUCCESS and len(resp.get_all("XOR-RELAYED-ADDRESS")) == 1
    assert resp.get("ADDRESS-ERROR-CODE") == (2, 440, "Address Family not Supported")


def test_dont_fragment() -> None:
    s = server()
    assert alloc_with(s, [("DONT-FRAGMENT", None)]).cls == m.SUCCESS
    authed(m.CREATE_PERMISSION, s, [("XOR-PEER-ADDRESS", PEER)])
    for df in (True, False):
        attrs = [("XOR-PEER-ADDRESS", PEER), ("DATA", b"x")] + ([("DONT-FRAGMENT", None)] if df else [])
        s.datagram_received(StunMessage(m.SEND, m.INDICATION, attributes=attrs).encode(), C, 1.0)
        (out,) = s.datagrams_to_send()
        assert tuple(out) == (b"x", PEER) and getattr(out, "df", False) is df
    # a server that cannot set DF treats the attribute as unknown (RFC 8656 section 7.2 step 4)
    s2 = server()
    s2.can_dont_fragment = False
    resp = alloc_with(s2, [("DONT-FRAGMENT", None)])
    assert resp.error[0] == 420 and resp.get("UNKNOWN-ATTRIBUTES") == (0x001A,)


def test_software_in_every_response() -> None:
    s = server()
    assert allocate(s).get("SOFTWARE") == "p2plab"
    assert authed(m.REFRESH, s, [("LIFETIME", 600)]).get("SOFTWARE") == "p2plab"
    assert alloc_with(s, [], src=("10.0.0.2", 3)).get("SOFTWARE") == "p2plab"


def test_rfc5766_channel_numbers_are_accepted_for_compatibility() -> None:
    s = server()
    allocate(s)
    relay = relay_of(s)
    assert authed(m.CHANNEL_BIND, s, [("CHANNEL-NUMBER", 0x7ABC), ("XOR-PEER-ADDRESS", PEER)]).cls == m.SUCCESS
    s.datagram_received(ChannelData(0x7ABC, b"old", rfc5766=True).encode(), C, 1.0)
    (out,) = s.datagrams_to_send()
    assert tuple(out) == (b"old", PEER)
    s.datagram_received_on(b"back", PEER, relay, 1.0)
    ((data, dest),) = s.datagrams_to_send()
    assert ChannelData.decode(data, rfc5766=True) == ChannelData(0x7ABC, b"back", rfc5766=True) and dest == C
    strict = server(rfc5766_channels=False)
    allocate(strict)
    resp = authed(m.CHANNEL_BIND, strict, [("CHANNEL-NUMBER", 0x5000), ("XOR-PEER-ADDRESS", PEER)])
    assert resp.error[0] == 400 and "0x4000-0x4FFF" in resp.error[1]


def test_quota_error_names_the_quota_and_how_to_raise_it() -> None:
    s = server(max_allocations_per_user=1)
    assert allocate(s, src=("10.0.0.2", 1)).cls == m.SUCCESS
    code, reason = allocate(s, src=("10.0.0.2", 2)).error
    assert code == 486 and "quota is 1" in reason and "--max-allocations" in reason
    assert len(reason) < 128  # RFC 8489 section 14.8


def test_expired_allocation_frees_quota_and_port() -> None:
    s = server(max_allocations_per_user=1)
    relay = allocate(s, src=("10.0.0.2", 1)).get("XOR-RELAYED-ADDRESS")  # the client then "crashes"
    assert allocate(s, src=("10.0.0.2", 2), now=599.0).error[0] == 486
    assert s.next_timer() == pytest.approx(600.0)
    s.handle_timer(600.0)
    assert s.allocations == {} and relay not in s.local_addresses()
    assert allocate(s, src=("10.0.0.2", 2), now=600.5).cls == m.SUCCESS


def test_client_options_are_checked() -> None:
    from p2plab.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="transport must be 'udp', 'tcp' or 'tls'"):
        TurnClient(S, "alice", "secret", transport="sctp")
    with pytest.raises(ConfigurationError, match="family must be 4 or 6"):
        TurnClient(S, "alice", "secret", family=5)
    c = TurnClient(S, "alice", "secret", transport="tcp", family=6, auto_allocate=False)
    assert (c.rc, c.rm) == (1, 1)  # no retransmissions on a reliable transport (RFC 8489 6.2.2)
    c.start(0.0, C)
    c.allocate()
    (data, _), = c.datagrams_to_send()
    assert StunMessage.decode(data).get("REQUESTED-ADDRESS-FAMILY") == 2
    assert c.next_timer() == pytest.approx(39.5)  # Ti, then give up


# -- plain STUN on the TURN port (RFC 8656 section 5: TURN runs on STUN's ports) ---------------------
def test_binding_request_is_answered_like_a_stun_server_without_credentials() -> None:
    s = server()
    req = StunMessage(m.BINDING, m.REQUEST)
    resp = ask(s, req)
    assert (resp.method, resp.cls) == (m.BINDING, m.SUCCESS) and resp.transaction_id == req.transaction_id
    assert resp.get("XOR-MAPPED-ADDRESS") == C and resp.check_fingerprint() and not resp.has_integrity
    assert s.allocations == {} and s.local_addresses() == set()  # a Binding holds nothing
    assert [e.kind for e in s.events()] == ["binding"]
    # the same client can go on to allocate on the same 5-tuple
    assert allocate(s).cls == m.SUCCESS


def test_binding_next_to_an_allocation_and_from_an_ipv6_client() -> None:
    s = server()
    relay = allocate(s).get("XOR-RELAYED-ADDRESS")
    assert ask(s, StunMessage(m.BINDING, m.REQUEST)).get("XOR-MAPPED-ADDRESS") == C
    assert set(s.allocations) == {C} and s.local_addresses() == {relay}  # untouched
    v6 = ("2001:db8::7", 6000)
    assert ask(s, StunMessage(m.BINDING, m.REQUEST), src=v6).get("XOR-MAPPED-ADDRESS") == v6


def test_binding_with_an_unknown_comprehension_required_attribute_gets_420() -> None:
    s = server()
    req = StunMessage(m.BINDING, m.REQUEST, attributes=[(0x0031, b"\0\0\0\0")])  # unknown, < 0x8000
    resp = ask(s, req)
    assert resp.error[0] == 420 and resp.get("UNKNOWN-ATTRIBUTES") == (0x0031,)


def test_binding_with_change_request_gets_420_the_server_has_no_alternate_address() -> None:
    """RFC 5780 section 6.1: a server without an alternate address answers CHANGE-REQUEST with 420;
    the TURN server answers like p2plab's plain StunServer (420 naming it), and a CHANGE-REQUEST
    asking for no change is just a Binding."""
    s = server()
    resp = ask(s, StunMessage(m.BINDING, m.REQUEST, attributes=[("CHANGE-REQUEST", 0x06)]))
    assert resp.error[0] == 420 and resp.get("UNKNOWN-ATTRIBUTES") == (m.CHANGE_REQUEST,)
    resp = ask(s, StunMessage(m.BINDING, m.REQUEST, attributes=[("CHANGE-REQUEST", 0)]))
    assert resp.cls == m.SUCCESS and resp.get("XOR-MAPPED-ADDRESS") == C


def test_binding_indication_and_binding_answers_are_ignored() -> None:
    s = server()
    s.datagram_received(StunMessage(m.BINDING, m.INDICATION).encode(), C, 0.0)
    s.datagram_received(StunMessage(m.BINDING, m.SUCCESS, attributes=[("XOR-MAPPED-ADDRESS", C)]).encode(), C, 0.0)
    assert s.datagrams_to_send() == [] and s.stats["ignored"] == 2
