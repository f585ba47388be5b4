from p2plab.checks import turn_relay as T
from p2plab.stun.message import (
    CREATE_PERMISSION,
    DATA_ATTR,
    INDICATION,
    NONCE,
    REALM,
    SEND,
    USERNAME,
    XOR_MAPPED_ADDRESS,
    XOR_PEER_ADDRESS,
    StunMessage,
    long_term_key,
    short_term_key,
)

from _lab_solutions import solution

S = solution("06-turn-relay")
RelayClient = S["RelayClient"]


def test_right_answers_pass():
    assert T.check_authenticate(S["authenticate"], quiet=True).passed
    assert T.check_relay_client(RelayClient, quiet=True).passed
    assert T.check_relay_bill(S["relay_bill"], quiet=True).passed


def test_relay_bill_example_uses_the_course_price():
    """The course assumes $0.05/GB (notebooks 01 and 09: 1000 users x 2 Mbit/s = $32,400 a month)."""
    msg = T.check_relay_bill(S["relay_bill"], quiet=True).message
    assert "$0.05/GB" in msg and "$32,400" in msg and "0.08" not in msg


def test_stubs_not_started():
    def stub(*a, **k):
        raise NotImplementedError()

    class Stub(RelayClient):
        def datagram_received(self, data, addr, now):
            raise NotImplementedError()

    assert T.check_authenticate(stub, quiet=True).not_started
    assert T.check_relay_client(Stub, quiet=True).not_started
    assert T.check_relay_bill(stub, quiet=True).not_started
    assert T.relay_with(Stub) is None


def test_relay_really_carries_the_data():
    out = T.run(RelayClient, b"xyz")
    relay = out["relays"][0]
    assert [(d, s) for _, d, s in out["bob_got"]] == [(b"xyz", relay)]
    assert out["client"].received == [(T.BOB, T.REPLY), ((T.BOB[0], 6000), T.REPLY_OTHER)]


def _auth(add, key):
    def authenticate(msg, username, realm, nonce, password):
        add(msg, username, realm, nonce)
        return msg.encode(key=key(username, realm, password))
    return authenticate


def _all(msg, u, r, n):
    msg.add(USERNAME, u).add(REALM, r).add(NONCE, n)


def test_authenticate_mistakes():
    cases = {
        _auth(_all, lambda u, r, p: short_term_key(p)): "long-term credentials",
        _auth(_all, lambda u, r, p: long_term_key(r, u, p)): "in that order",
        _auth(lambda m, u, r, n: m.add(USERNAME, u).add(REALM, r), lambda u, r, p: long_term_key(u, r, p)): "NONCE",
        _auth(lambda m, u, r, n: m.add(USERNAME, u).add(REALM, "p2plab").add(NONCE, n),
              lambda u, r, p: long_term_key(u, "p2plab", p)): "this server's realm",
        _auth(_all, lambda u, r, p: None): "MESSAGE-INTEGRITY",
    }
    for fn, hint in cases.items():
        r = T.check_authenticate(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)

    def after_encode(msg, username, realm, nonce, password):
        data = msg.encode(key=long_term_key(username, realm, password))
        _all(msg, username, realm, nonce)
        return data

    r = T.check_authenticate(after_encode, quiet=True)
    assert not r.passed and "no USERNAME, REALM, NONCE" in r.message


class IgnoresChallenge(RelayClient):
    def datagram_received(self, data, addr, now):
        msg = StunMessage.decode(data)
        if msg.error:
            return
        super().datagram_received(data, addr, now)


class SignsOnlyAllocate(RelayClient):
    def request(self, method, attributes):
        if method == CREATE_PERMISSION:
            msg = StunMessage(method, 0, attributes=attributes)
            self.pending[msg.transaction_id] = (method, attributes, True)
            self.send(msg.encode(), self.server)
        else:
            super().request(method, attributes)


class SendsBeforePermission(RelayClient):
    def emit(self, kind, **data):
        if kind == "allocated":
            ind = StunMessage(SEND, INDICATION, attributes=[(XOR_PEER_ADDRESS, self.peer), (DATA_ATTR, self.message)])
            self.send(ind.encode(), self.server)
            self.message = b"(sent already)"  # so the later, permitted send is not the message
        return super().emit(kind, **data)


class SendsDirect(RelayClient):
    def send(self, data, addr):
        msg = StunMessage.decode(data) if data[:1] == b"\x00" else None
        if msg is not None and msg.method == SEND:
            super().send(msg.get(DATA_ATTR), msg.get(XOR_PEER_ADDRESS))
        else:
            super().send(data, addr)


class FiltersByPort(RelayClient):
    def emit(self, kind, **data):
        if kind == "data" and tuple(data["peer"]) != tuple(self.peer):
            self.received.pop()
        return super().emit(kind, **data)


class MappedAsRelay(RelayClient):
    def datagram_received(self, data, addr, now):
        super().datagram_received(data, addr, now)
        if self.relayed is not None and self.state == "allocated":
            self.relayed = StunMessage.decode(data).get(XOR_MAPPED_ADDRESS) or self.relayed


class NoDataIndications(RelayClient):
    def datagram_received(self, data, addr, now):
        super().datagram_received(data, addr, now)
        self.received.clear()


def test_relay_client_mistakes():
    cases = {
        IgnoresChallenge: "401 Unauthenticated",
        SignsOnlyAllocate: "*every* request must be signed",
        SendsBeforePermission: "no permission for that peer",
        SendsDirect: "direct path",
        FiltersByPort: "per IP address",
        MappedAsRelay: "XOR-RELAYED-ADDRESS",
        NoDataIndications: "Data indication",
    }
    for cls, hint in cases.items():
        r = T.check_relay_client(cls, quiet=True)
        assert not r.passed and hint in r.message, (cls.__name__, r.message)


def test_bill_mistakes():
    good = S["relay_bill"]

    def variant(**change):
        def bill(users, rate, price, hours_per_day=24, days=30):
            b = dict(good(users, rate, price, hours_per_day, days))
            for k, f in change.items():
                b[k] = f(b, users, rate, price, hours_per_day, days)
            return b
        return bill

    cases = [
        (variant(total_mbps=lambda b, *a: b["in_mbps"]), "outbound"),
        (variant(out_mbps=lambda b, *a: 0), "what goes in comes out"),
        (variant(monthly_gb=lambda b, *a: b["monthly_gb"] * 8, bill=lambda b, *a: b["monthly_gb"] * 8 * a[2]),
         "Mbps vs MB/s"),
        (variant(monthly_gb=lambda b, *a: b["monthly_gb"] * 2), "egress"),
        (variant(monthly_gb=lambda b, *a: b["monthly_gb"] * 1e9 / 2**30), "GiB"),
        (variant(monthly_gb=lambda b, u, r, p, h, d: b["monthly_gb"] * 24 / h), "hours_per_day"),
        (variant(bill=lambda b, *a: b["monthly_gb"]), "monthly_gb x price_per_gb"),
    ]
    for fn, hint in cases:
        r = T.check_relay_bill(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)
    r = T.check_relay_bill(lambda *a, **k: (1, 2, 3), quiet=True)
    assert not r.passed and "dict" in r.message


def test_permission_question_registered():
    from p2plab.checks import answer

    assert answer("turn.permission-per-ip", "yes", quiet=True).correct
    assert not answer("turn.permission-per-ip", "no", quiet=True).correct
