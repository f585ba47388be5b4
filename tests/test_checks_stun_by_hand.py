import struct

from p2plab.checks import stun_by_hand as S3

from _lab_solutions import solution

S = solution("03-stun-by-hand")
br, parse = S["binding_request"], S["parse_xor_mapped_address"]


def test_right_answers_pass():
    assert S3.check_binding_request(br, quiet=True).passed
    assert S3.check_parse(parse, quiet=True).passed
    assert S3.check_live(br, parse, quiet=True).passed


def test_stubs_not_started():
    def stub(*a):
        raise NotImplementedError()

    assert S3.check_binding_request(stub, quiet=True).not_started
    assert S3.check_parse(stub, quiet=True).not_started
    assert S3.check_live(stub, stub, quiet=True).not_started


def test_request_mistakes():
    cases = {
        "big-endian": lambda t: struct.pack("<HHI12s", 1, 0, 0x2112A442, t),
        "Binding success response": lambda t: struct.pack("!HHI12s", 0x0101, 0, 0x2112A442, t),
        "counts only the bytes AFTER": lambda t: struct.pack("!HHI12s", 1, 20, 0x2112A442, t),
        "transaction ID you were given": lambda t: struct.pack("!HHI12s", 1, 0, 0x2112A442, bytes(12)),
        "magic cookie 0x2112A442": lambda t: struct.pack("!HHI12s", 1, 0, 0x12345678, t),
        "exactly the 20-byte header": lambda t: struct.pack("!HHI12sI", 1, 0, 0x2112A442, t, 0),
        "return the message as bytes": lambda t: struct.pack("!HHI12s", 1, 0, 0x2112A442, t).hex(),
    }
    for hint, fn in cases.items():
        r = S3.check_binding_request(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)


def _walk(data, want=0x20, pad=True):
    pos = 20
    while pos < len(data):
        t, n = struct.unpack_from("!HH", data, pos)
        if t == want:
            return pos + 4
        pos += 4 + n + ((-n % 4) if pad else 0)
    return None


def test_parse_mistakes():
    def no_port_xor(d):
        ip, port = parse(d)
        return ip, port ^ 0x2112

    def no_xor(d):
        v = _walk(d)
        return ".".join(str(b) for b in d[v + 4:v + 8]), struct.unpack_from("!H", d, v + 2)[0]

    def no_padding(d):
        v = _walk(d, pad=False)
        if v is None:
            return None
        return parse(d[:v - 4 - 20 + 20] if False else d) if v == _walk(d) else ("0.0.0.0", 0)

    def first_address(d):
        v = _walk(d, want=0x0001) or _walk(d)
        xport = struct.unpack_from("!H", d, v + 2)[0] ^ 0x2112
        xaddr = struct.unpack_from("!I", d, v + 4)[0] ^ 0x2112A442
        return ".".join(str(b) for b in struct.pack("!I", xaddr)), xport

    def as_bytes(d):
        ip, port = parse(d)
        return bytes(int(x) for x in ip.split(".")), port

    cases = {
        "port is XORed too": no_port_xor,
        "the attribute's bytes as they are": no_xor,
        "padding": no_padding,
        "not every address attribute": first_address,
        "as text like": as_bytes,
    }
    for hint, fn in cases.items():
        r = S3.check_parse(fn, quiet=True)
        assert not r.passed and hint in r.message, (hint, r.message)


def test_live_reports_a_request_the_server_ignores():
    r = S3.check_live(lambda t: b"hello", parse, quiet=True)
    assert not r.passed and "did not answer" in r.message
