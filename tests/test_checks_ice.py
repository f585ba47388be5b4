import random

from p2plab import recorded
from p2plab.checks import ice as I

from _lab_solutions import solution

S = solution("07-ice")
PREFS = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}


def test_right_answers_pass():
    assert I.check_priority(S["priority"], quiet=True).passed
    assert I.check_pair_priority(S["pair_priority"], quiet=True).passed
    assert I.check_agent_pair_priority(S["agent_pair_priority"], quiet=True).passed
    assert I.check_choose_pair(S["choose_pair"], quiet=True).passed


def test_shifts_are_accepted_too():
    assert I.check_priority(lambda k, lp=65535, c=1: (PREFS[k] << 24) | (lp << 8) | (256 - c), quiet=True).passed
    assert I.check_pair_priority(lambda g, d: (min(g, d) << 32) + (max(g, d) << 1) + (g > d), quiet=True).passed


def test_stubs_not_started():
    def stub(*a, **k):
        raise NotImplementedError()

    for fn in (I.check_priority, I.check_pair_priority, I.check_agent_pair_priority, I.check_choose_pair):
        assert fn(stub, quiet=True).not_started
    assert I.compare_with_agents(stub) is None


def xor_priority(kind, local_pref=65535, component=1):
    type_pref = PREFS[kind]
    return 2^24*type_pref + 2^8*local_pref + (256 - component)  # noqa: E225 - the mistake under test


def test_priority_mistakes():
    cases = {
        xor_priority: "`^` is XOR",
        (lambda k, lp=65535, c=1: 2**24 * PREFS[k] + lp + (256 - c)): "local preference is multiplied by 2^8",
        (lambda k, lp=65535, c=1: 2**24 * PREFS[k] + 2**8 * lp + c): "256 - component",
        (lambda k, lp=65535, c=1: 2**24 * {"host": 126, "prflx": 100, "srflx": 110, "relay": 0}[k] + 2**8 * lp
         + (256 - c)): "swapped",
        (lambda k, lp=65535, c=1: 2**24 * {"host": 126, "prflx": 110, "srflx": 100, "relay": 10}[k] + 2**8 * lp
         + (256 - c)): "relay candidate's type preference is 0",
        (lambda k, lp=65535, c=1: float(2**24 * PREFS[k] + 2**8 * lp + (256 - c))): "an int",
    }
    for fn, hint in cases.items():
        r = I.check_priority(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)


def test_pair_priority_mistakes():
    cases = {
        (lambda g, d: 2**32 * min(g, d) + 2 * max(g, d) + (1 if d > g else 0)): "controlled agent's as G",
        (lambda g, d: 2**32 * min(g, d) + 2 * max(g, d)): "tie-break bit is missing",
        (lambda g, d: 2**32 * g + 2 * d + (1 if g > d else 0)): "MIN and MAX",
        (lambda g, d: 2**32 * max(g, d) + 2 * min(g, d) + (1 if g > d else 0)): "MIN goes in the high bits",
        (lambda g, d: 2**32 * min(g, d) + max(g, d) + (1 if g > d else 0)): "2 x MAX",
        (lambda g, d: 2 ^ 32 * min(g, d) + 2 * max(g, d) + (1 if g > d else 0)): "XOR",
    }
    for fn, hint in cases.items():
        r = I.check_pair_priority(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)


def test_agent_view_mistakes():
    pp = S["pair_priority"]
    r = I.check_agent_pair_priority(lambda local, remote, controlling: pp(local, remote), quiet=True)
    assert not r.passed and "G is always the controlling agent's" in r.message
    r = I.check_agent_pair_priority(lambda local, remote, controlling: pp(remote, local) if controlling
                                    else pp(local, remote), quiet=True)
    assert not r.passed and "roles are swapped" in r.message


def test_choose_pair_mistakes():
    cases = {
        (lambda rows: max(rows, key=lambda r: r["priority"])): "never succeeded",
        (lambda rows: max([r for r in rows if r["state"] == "Succeeded"] or [None],
                          key=lambda r: r["priority"] if r else 0)): "not in the valid list",
        (lambda rows: next((r for r in rows if r["valid"]), None)): "rows are not sorted",
        (lambda rows: min([r for r in rows if r["valid"]] or [None], key=lambda r: r["priority"] if r else 0)):
            "lowest",
        (lambda rows: None): "returned None",
        (lambda rows: "srflx-srflx"): "one of the rows",
    }
    for fn, hint in cases.items():
        r = I.check_choose_pair(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)


def test_reference_rule_is_what_the_agents_nominate():
    for a, b in I.NAT_PAIRS:
        res = I.ice_result(a, b)
        for agent in ("alice", "bob"):
            rows = res.pairs(agent)
            rng = random.Random(1)
            rng.shuffle(rows)
            sel = next((r for r in rows if r["selected"]), None)
            assert I.best_valid(rows) == sel, (a, b, agent)


# -- exercise 4: the browser's pair ----------------------------------------------------------------
def _solution_browser_predictions() -> dict:
    """The model answer: predict_browser_pairs() as solutions/07-ice.ipynb writes it."""
    import nbformat

    from _lab_solutions import ROOT

    nb = nbformat.read(ROOT / "solutions" / "07-ice.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("def predict_browser_pairs"))
    ns: dict = {}
    exec(cell.source, ns)
    return ns["predict_browser_pairs"]()


RIGHT = _solution_browser_predictions()
PRC, FC, SYM = "port-restricted-cone", "full-cone", "symmetric"


def test_browser_predictions_right_answer_passes_and_matches_the_recordings():
    assert I.check_browser_predictions(RIGHT, quiet=True).passed
    # written other ways: slashes, arrows, tuples, capitals
    other = {k: v.replace("-", sep) for (k, v), sep in zip(RIGHT.items(), ["/", " -> ", " ", "-"])}
    other[(SYM, SYM)] = tuple(RIGHT[(SYM, SYM)].upper().split("-"))
    assert I.check_browser_predictions(other, quiet=True).passed
    # the model answer is what Chromium selected in each recording
    for (a, b), (name, _) in I.BROWSER_RUNS.items():
        sel = recorded.outcome(name)["details"]["selected"]
        assert RIGHT[(a, b)] == f"{sel['local']['type']}-{sel['remote']['type']}"


def test_browser_predictions_not_started_and_bad_input():
    assert I.check_browser_predictions({k: None for k in RIGHT}, quiet=True).not_started
    cases = [
        ("srflx-srflx", "should return a dict"),
        ([("a", "b")], "should return a dict"),
        ({**RIGHT, (SYM, SYM): None}, "no prediction yet"),
        ({k: v for k, v in RIGHT.items() if k != (FC, SYM)}, "keep the four keys"),
        ({**RIGHT, (SYM, SYM): "relay"}, "cannot read 'relay'"),
        ({**RIGHT, (SYM, SYM): "srflx-banana"}, "candidate types"),
        ({**RIGHT, (SYM, SYM): 42}, "cannot read 42"),
    ]
    for value, hint in cases:
        r = I.check_browser_predictions(value, quiet=True)
        assert not r.passed and not r.not_started and hint in r.message, (value, r.message)


def test_browser_predictions_typical_mistakes_get_their_hint():
    cases = [
        ((PRC, PRC), "fails", "hole punch of lab 04"),
        ((FC, SYM), "fails", "lets anything in"),
        ((SYM, SYM), "fails", "A relay on one side is enough"),
        ((PRC, PRC), "host-host", "die at the internet core"),
        ((SYM, SYM), "relay-prflx", "other way round"),
        ((PRC, SYM), "relay-srflx", "other way round"),
        ((SYM, SYM), "relay-relay", "no relay candidate of her own"),
        ((FC, SYM), "srflx-relay", "neither browser has the TURN server"),
        ((PRC, SYM), "srflx-srflx", "no direct pair works"),
        ((FC, SYM), "srflx-srflx", "Bob's NAT is symmetric"),
        ((PRC, SYM), "prflx-relay", "maps endpoint-independently"),
        ((SYM, SYM), "srflx-relay", "Alice's NAT is symmetric"),
    ]
    for nats, wrong, hint in cases:
        r = I.check_browser_predictions({**RIGHT, nats: wrong}, quiet=True)
        assert not r.passed and "3 of 4 right" in r.message and hint in r.message, (nats, wrong, r.message)
        assert f"{nats[0]} x {nats[1]}" in r.message


def test_a_relay_where_a_direct_pair_works_gets_its_hint(monkeypatch):
    """No row of the exercise gives bob TURN where a direct pair wins, so pretend one does."""
    monkeypatch.setitem(I.BROWSER_RUNS, (PRC, PRC), ("webrtc-direct", True))
    r = I.check_browser_predictions({**RIGHT, (PRC, PRC): "srflx-relay"}, quiet=True)
    assert not r.passed and "prefers any working direct pair" in r.message


def test_browser_pairs_shows_the_recorded_browsers_next_to_any_prediction():
    table = I.browser_pairs(RIGHT)
    assert list(table["same"]) == [True] * 4 and set(table["world"]) == {"recorded"}
    assert list(table["Chromium selected"]) == list(RIGHT.values())
    unfinished = I.browser_pairs({k: None for k in RIGHT})
    assert not unfinished["same"].any() and unfinished["your prediction"].isna().all()
    assert I.browser_pairs(None)["Chromium selected"].tolist() == list(RIGHT.values())


def test_the_learners_function_is_called_and_its_stub_means_not_started():
    def stub():
        raise NotImplementedError()

    r = I.check_browser_predictions(stub, quiet=True)
    assert not r.passed and "not started yet" in r.message and "predict_browser_pairs" in r.message
    assert I.check_browser_predictions(lambda: RIGHT, quiet=True).passed
    r = I.check_browser_predictions(lambda: list(RIGHT.values()), quiet=True)
    assert not r.passed and "should return a dict" in r.message and "returns a list" in r.message
    assert I.browser_pairs(stub)["your prediction"].isna().all()  # the browsers' column still shows
    assert list(I.browser_pairs(lambda: RIGHT)["same"]) == [True] * 4
