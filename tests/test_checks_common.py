from p2plab.checks import answer, answer_hash, predict, try_it
from p2plab.checks.common import check, fail


def test_check_never_raises_and_reports_status(capsys):
    @check("demo", "cell X")
    def check_thing(fn):
        if fn() != 1:
            fail("hint about the concept")
        return "ok"

    def stub():
        raise NotImplementedError()

    assert check_thing(lambda: 1).passed
    r = check_thing(lambda: 2)
    assert not r.passed and r.message == "hint about the concept"
    r = check_thing(stub)
    assert r.not_started and "not started yet — begin at cell X" in r.message
    r = check_thing(lambda: 1 / 0)
    assert r.status == "error" and "ZeroDivisionError" in r.message
    out = capsys.readouterr().out
    assert "Traceback" not in out and len(out.splitlines()) == 4 and "in <lambda>" in out


def test_try_it(capsys):
    def stub():
        raise NotImplementedError()

    assert try_it(stub) is None
    assert try_it(lambda x: x + 1, 1) == 2
    assert try_it(lambda: {}["k"]) is None
    out = capsys.readouterr().out
    assert "not started yet" in out and "KeyError" in out


def test_answer_right_wrong_unknown_and_empty():
    assert answer("sockets.rtt-direct", 40, quiet=True).correct is True
    assert answer("sockets.rtt-direct", "40.0", quiet=True).correct is True
    wrong = answer("sockets.rtt-direct", 20, quiet=True)
    assert wrong.correct is False and "one-way" in wrong.message
    assert answer("nat.eim-apdf-unsolicited", "No.", quiet=True).correct is True
    assert answer("nat.eim-apdf-unsolicited", False, quiet=True).correct is True
    assert answer("no.such-question", 1, quiet=True).correct is None
    assert answer("stun.why-xor", None, quiet=True).correct is None
    assert answer("stun.why-xor", "z", quiet=True).correct is None


def test_answers_are_stored_only_as_hashes():
    import inspect

    src = inspect.getsource(predict)
    q = predict.QUESTIONS["ice.srflx-priority"]
    assert q.accepted == [answer_hash("ice.srflx-priority", 1694498815, "number")]
    assert "accepted=[1694498815" not in src and '["1694498815"]' not in src


def test_register_a_new_question():
    h = answer_hash("demo.q", "Seven", "text")
    predict.register(predict.Question("demo.q", "How many?", [h], "Because.", kind="text"))
    try:
        assert answer("demo.q", " seven ", quiet=True).correct
        assert not answer("demo.q", "six", quiet=True).correct
    finally:
        predict.QUESTIONS.pop("demo.q")


def test_hash_cli(capsys):
    predict.main(["hash", "sockets.rtt-direct", "40", "--kind", "number"])
    assert capsys.readouterr().out.strip() == predict.QUESTIONS["sockets.rtt-direct"].accepted[0]
