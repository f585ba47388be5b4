from p2plab.checks import sockets

from _lab_solutions import solution

S = solution("01-sockets")


def stub(*args):
    raise NotImplementedError()


def test_right_answers_pass():
    assert sockets.check_echo(S["start_echo"], quiet=True).passed
    assert sockets.check_rtt(S["measure_rtt"], quiet=True).passed


def test_not_started():
    assert sockets.check_echo(stub, quiet=True).not_started
    assert sockets.check_rtt(stub, quiet=True).not_started


def test_echo_to_fixed_port_gets_hint():
    def echo(host, port):
        s = host.udp_socket(port)
        s.on_datagram = lambda d, a: s.sendto(d, (a[0], 7))
        return s

    r = sockets.check_echo(echo, quiet=True)
    assert not r.passed and "the address each datagram came from" in r.message


def test_echo_wrong_port_and_silent():
    def silent(host, port):
        return host.udp_socket(port)

    assert "sent nothing back" in sockets.check_echo(silent, quiet=True).message

    def wrong_port(host, port):
        s = host.udp_socket(port + 1)
        s.on_datagram = lambda d, a: s.sendto(d, a)
        return s

    assert "nothing is bound to port 9000" in sockets.check_echo(wrong_port, quiet=True).message


def _rtt(match="seq", scale=1.0, before_run=False, same_payload=False):
    def measure_rtt(net, sock, server, count=5, interval=0.1):
        sent, rtts, order = {}, [None] * count, []

        def on_reply(data, addr):
            i = int(data.split()[1]) if match == "seq" else len(order)
            order.append(i)
            if i < count and rtts[i] is None:
                rtts[i] = (net.now - sent[i]) * scale

        def ping(i):
            sent[i] = net.now
            sock.sendto(b"ping 0" if same_payload else b"ping %d" % i, server)

        sock.on_datagram = on_reply
        for i in range(count):
            net.after(i * interval, ping, i)
        if before_run:  # RTTs computed before running the network: all zero
            early = [net.now - net.now] * count
            net.run(until=net.now + count * interval + 2)
            return early
        net.run(until=net.now + count * interval + 2)
        return rtts

    return measure_rtt


def test_rtt_typical_mistakes_get_their_hints():
    cases = {
        "milliseconds": _rtt(scale=1000),
        "one-way": _rtt(scale=0.5),
        "before the replies arrived": _rtt(before_run=True),
        "overtake": _rtt(match="arrival"),
        "sequence number": _rtt(same_payload=True),
    }
    for hint, fn in cases.items():
        r = sockets.check_rtt(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)


def test_rtt_wall_clock_and_lost_pings():
    import time

    def wall(net, sock, server, count=5, interval=0.1):
        out = []
        for i in range(count):
            t = time.perf_counter()
            sock.sendto(b"ping %d" % i, server)
            out.append(time.perf_counter() - t + 1e-6)
        net.run(until=net.now + 2)
        return out

    r = sockets.check_rtt(wall, quiet=True)
    assert not r.passed and ("pings left" in r.message or "net.now" in r.message)

    good = S["measure_rtt"]

    def drops_lost(net, sock, server, count=5, interval=0.1):
        return [x for x in good(net, sock, server, count, interval) if x is not None]

    r = sockets.check_rtt(drops_lost, quiet=True)
    assert not r.passed and "None" in r.message
