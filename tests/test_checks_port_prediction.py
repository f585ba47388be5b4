import random

from p2plab.checks import port_prediction as P

from _lab_solutions import solution

S = solution("05-port-prediction")


def test_right_answers_pass():
    assert P.check_probe_ports(S["probe_ports"], quiet=True).passed
    assert P.check_probability(S["success_probability"], quiet=True).passed
    assert P.check_trial(S["birthday_trial"], quiet=True).passed


def test_approximation_is_accepted_and_formula_matches_tailscale():
    assert P.check_probability(lambda n, k, s: 1 - (1 - n / s) ** k, quiet=True).passed
    assert abs(P.exact_probability(256, 174, 65536) - 0.5) < 0.01
    assert P.exact_probability(256, 1024, 65536) > 0.98
    assert P.exact_probability(256, 2048, 65536) > 0.999


def test_stubs_not_started():
    def stub(*a):
        raise NotImplementedError()

    assert P.check_probe_ports(stub, quiet=True).not_started
    assert P.check_trial(stub, quiet=True).not_started
    assert P.measure(stub) is None


def test_typical_mistakes_get_their_hints():
    r = P.check_probe_ports(lambda rng, n, lo, hi: [rng.randint(lo, hi) for _ in range(n)], quiet=True)
    assert "without replacement" in r.message
    r = P.check_probe_ports(lambda rng, n, lo, hi: random.sample(range(lo, hi + 1), n), quiet=True)
    assert "rng you are given" in r.message
    r = P.check_probe_ports(lambda rng, n, lo, hi: rng.sample(range(lo, hi), n), quiet=True)
    assert not r.passed and "range(low, high) stops before high" in r.message
    r = P.check_probability(lambda n, k, s: n * k / s, quiet=True)
    assert "cannot pass 1" in r.message
    r = P.check_probability(lambda n, k, s: (1 - n / s) ** k, quiet=True)
    assert "MISS" in r.message


def test_trial_that_never_opens_holes():
    def no_holes(seed, n_open, n_probes):
        w = P.world(seed)
        socks = [w.alice.udp_socket() for _ in range(n_open)]
        for i, port in enumerate(S["probe_ports"](random.Random(seed), n_probes, w.low, w.high)):
            w.net.at(0.1, w.bob_socket.sendto, str(i).encode(), (w.alice_nat_ip, port))
        w.net.run(until=1.0)
        hits = [int(d) for s in socks for _, d, _ in s.received]
        return min(hits) if hits else None

    r = P.check_trial(no_holes, quiet=True)
    assert not r.passed and "no probe got through" in r.message


def test_measure_table():
    df = P.measure(S["birthday_trial"], trials=10, probe_counts=(64, 512))
    assert list(df.columns) == ["probes", "success rate (sim)", "formula"]
    assert df["success rate (sim)"].iloc[-1] >= 0.8
