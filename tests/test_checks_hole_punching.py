from p2plab import punch
from p2plab.checks import hole_punching as H

from _lab_solutions import solution

S = solution("04-hole-punching")
Puncher = S["Puncher"]


def test_right_answer_passes():
    assert H.check_puncher(Puncher, quiet=True).passed


def test_stub_not_started():
    class Stub(Puncher):
        def datagram_received(self, data, addr, now):
            raise NotImplementedError()

    assert H.check_puncher(Stub, quiet=True).not_started
    assert H.punch_with(Stub, "full-cone", "full-cone") is None


def test_symmetric_defeats_it_in_the_simulator():
    out = H.run(Puncher, "symmetric", "port-restricted-cone")
    assert out["failed"]["alice"] and not out["connected"]["alice"]
    out = H.run(Puncher, "port-restricted-cone", "port-restricted-cone")
    assert out["connected"]["alice"].endpoint == ("198.51.100.20", 5000)


class PunchOnce(Puncher):
    def on_timer(self, name, now):
        if name == "punch" and self.state == "punching":
            for c in self.candidates:
                self.send(punch.encode("PUNCH", self.name), c)
        else:
            super().on_timer(name, now)


class NoAck(Puncher):
    def datagram_received(self, data, addr, now):
        if data.startswith(b"P2P1 PUNCH"):
            self.got_through(addr)
            return
        super().datagram_received(data, addr, now)


class KeepsPunching(Puncher):
    def got_through(self, addr):
        if self.connected is None:
            self.connected = addr
            self.emit("connected", endpoint=addr)


class PublicOnly(Puncher):
    def on_timer(self, name, now):
        if name == "punch" and self.state == "punching":
            self.send(punch.encode("PUNCH", self.name), self.candidates[0])
            self.set_timer(now + self.interval, "punch")
        else:
            super().on_timer(name, now)


class AnswersCandidate(Puncher):
    def got_through(self, addr):
        super().got_through(self.candidates[0] if self.candidates else addr)


class NeverGivesUp(Puncher):
    def on_timer(self, name, now):
        if name != "give-up":
            super().on_timer(name, now)


def test_typical_mistakes_get_their_hints():
    cases = {
        PunchOnce: "keep punching every `interval` seconds",
        NoAck: "reply with ACK",
        KeepsPunching: "kept punching after it was connected",
        PublicOnly: "punch every candidate",
        AnswersCandidate: "the address the packet came from",
        NeverGivesUp: "never gave up",
    }
    for cls, hint in cases.items():
        r = H.check_puncher(cls, quiet=True)
        assert not r.passed and hint in r.message, (cls.__name__, r.message)
