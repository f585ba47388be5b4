from p2plab import punch
from p2plab.checks import capstone as C

from _lab_solutions import solution

S = solution("08-capstone")
connect = S["connect"]
first = S["first"]
SMALL = ["full-cone", "port-restricted-cone", "symmetric"]


def test_right_answer_passes():
    r = C.check_connect(connect, quiet=True)
    assert r.passed and "20 direct, 5 through the relay" in r.message


def test_stub_not_started():
    def stub(w):
        raise NotImplementedError()

    assert C.check_connect(stub, quiet=True).not_started
    assert C.table(stub) is None and C.try_pair(stub, "symmetric", "symmetric") is None


def test_delivery_is_observed_in_the_network():
    out = C.attempt(connect, "symmetric", "symmetric")
    assert out["path"] == "relay" and [C.path_of(s) for s in out["delivered"]] == ["relay"]
    out = C.attempt(connect, "full-cone", "symmetric")
    assert out["path"] == "direct" and out["delivered"] == [("203.0.113.10", 5000)]
    assert C.punch_works("restricted-cone", "symmetric") and not C.punch_works("symmetric", "port-restricted-cone")


def _punch(w, give_up=5.0):
    cfg = punch.PunchConfig(give_up_after=give_up)
    a = w.net.run_protocol("alice", punch.PunchPeer("alice", "bob", w.rendezvous, cfg), 5000)
    b = w.net.run_protocol("bob", punch.PunchPeer("bob", "alice", w.rendezvous, cfg), 5000)
    w.run(6.0)
    return a, b


def always_relay(w):
    _punch(w, give_up=0.0)
    return relay_part(w)


def relay_part(w, permission=True, bob_first=True):
    from p2plab.turn import TurnClient

    bob_public = ("198.51.100.20", 5000)  # what the rendezvous server saw (port aside: permissions are per IP)
    turn = TurnClient(w.turn_server, *w.credentials["alice"])
    relay = w.net.run_protocol("alice", turn, 0)
    w.run(1.0)
    if permission:
        turn.create_permission(bob_public)
        relay.poke()
        w.run(1.0)
    target = bob_public
    if bob_first:
        sock = w.bob.udp_socket()
        sock.sendto(b"hi", turn.relayed)
        w.run(1.0)
        hello = first(relay, "data")
        if hello is not None:
            target = hello.peer
    turn.send_to(w.message, target)
    relay.poke()
    w.run(1.0)
    return "relay"


def never_relays(w):
    _punch(w)
    return "direct"


def direct_without_sending(w):
    a, b = _punch(w)
    if first(a, "connected") and first(b, "connected"):
        return "direct"
    return relay_part(w)


def no_permission(w):
    a, b = _punch(w)
    if first(a, "connected") and first(b, "connected"):
        return connect_direct(w, a)
    return relay_part(w, permission=False)


def bob_never_writes(w):
    a, b = _punch(w)
    if first(a, "connected") and first(b, "connected"):
        return connect_direct(w, a)
    return relay_part(w, bob_first=False)


def connect_direct(w, a):
    a.protocol.send(w.message, a.protocol.connected)
    a.poke()
    w.run(1.0)
    return "direct"


def says_relay_goes_direct(w):
    a, b = _punch(w)
    if first(a, "connected") and first(b, "connected"):
        connect_direct(w, a)
        return "relay"
    return relay_part(w)


def test_typical_mistakes_get_their_hints():
    cases = {
        always_relay: "hole punching works for this pair",
        never_relays: "never reached Bob",
        direct_without_sending: "never reached Bob",
        no_permission: "permission",
        bob_never_writes: "send a packet to Alice's relay address first",
        says_relay_goes_direct: "Report the path you actually used",
        (lambda w: "p2p"): "return 'direct' or 'relay'",
    }
    for fn, hint in cases.items():
        r = C.check_connect(fn, presets=SMALL, quiet=True)
        assert not r.passed and hint in r.message, (getattr(fn, "__name__", fn), r.message)
