"""TURN over TCP and TLS (RFC 8656): stream framing, p2plab's client and server on real
connections, and what a stream server does with partial frames, junk and stalled connections."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2plab.errors import StunParseError
from p2plab.stun import message as m
from p2plab.stun.message import ChannelData, StunMessage
from p2plab.turn import TurnClient, TurnServer
from p2plab.turn.stream import (
    StreamClient,
    StreamDriver,
    StreamFramer,
    client_ssl_context,
    frame_for_stream,
    lab_certificate,
    server_ssl_context,
)

# test helpers next to this file (ruff cannot tell what kind of import they are)
# isort: off
from _servers import ServerThread
from conftest import need
# isort: on

pytestmark = pytest.mark.timeout(90)


# -- framing ----------------------------------------------------------------------------------------
def stun_frame(rng: random.Random, size: int) -> bytes:
    return StunMessage(m.SEND, m.INDICATION, rng=rng, attributes=[
        ("XOR-PEER-ADDRESS", ("192.0.2.9", 7)), ("DATA", rng.randbytes(size))]).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 300)), min_size=1, max_size=12),
       st.lists(st.integers(1, 97), min_size=1, max_size=40), st.integers(0, 2**32))
def test_framer_recovers_messages_whatever_the_chunking(kinds, cuts, seed: int) -> None:
    rng = random.Random(seed)
    frames = [stun_frame(rng, n) if is_stun else ChannelData(0x4000 + n, rng.randbytes(n)).encode()
              for is_stun, n in kinds]
    stream = b"".join(frame_for_stream(f) for f in frames)
    framer, got, pos, i = StreamFramer(), [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += framer.feed(stream[pos:pos + step])
        pos, i = pos + step, i + 1
    assert got == frames and framer.pending == 0


def test_channel_data_is_padded_on_streams_only_to_a_multiple_of_four() -> None:
    assert frame_for_stream(ChannelData(0x4000, b"abcde").encode()) == b"\x40\x00\x00\x05abcde\0\0\0"
    assert frame_for_stream(ChannelData(0x4000, b"abcd").encode()) == b"\x40\x00\x00\x04abcd"
    stun = StunMessage().encode()
    assert frame_for_stream(stun) == stun  # STUN messages are always a multiple of 4


@pytest.mark.parametrize("junk, needle", [
    (b"\x90\x00\x00\x00", "byte 0x90 at stream offset 0 starts neither"),
    (b"\x00\x01\x00\x00\xde\xad\xbe\xef" + bytes(12), "bad magic cookie"),
    (b"\x00\x01\x00\x03\x21\x12\xa4\x42" + bytes(12), "not a multiple of 4"),
])
def test_framer_rejects_streams_that_cannot_be_turn(junk: bytes, needle: str) -> None:
    with pytest.raises(StunParseError, match=needle):
        StreamFramer().feed(junk)


def test_framer_waits_for_a_claimed_length() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\x40\x00\xff\xff" + b"x" * 100) == [] and framer.pending == 104


def test_stream_client_is_another_five_tuple_than_udp() -> None:
    tcp, tls = StreamClient("127.0.0.1", 5000, "tcp"), StreamClient("127.0.0.1", 5000, "tls")
    udp = ("127.0.0.1", 5000)
    assert tcp != udp and udp != tcp and tcp != tls and tcp == StreamClient("127.0.0.1", 5000)
    assert len({tcp, tls, udp}) == 3 and tcp[0] == "127.0.0.1" and tuple(tcp) == udp


# -- real connections -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    need("openssl")
    return lab_certificate(tmp_path_factory.mktemp("cert"))


async def relay_round_trip(server_addr, ssl_context, transport: str) -> tuple[str, int]:
    """Allocate over a stream, relay both ways (Send/Data, then a channel), close; returns the relay."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    loop = asyncio.get_running_loop()
    P = peer.getsockname()
    c = TurnClient(server_addr, "alice", "secret", transport=transport)
    try:
        async with StreamDriver(c, server_addr, ssl_context) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "allocated", ev
            d.call(c.create_permission, P)
            assert (await d.wait_for(("permission", "error"), 10)).kind == "permission"
            d.call(c.send_to, b"send indication", P)
            data, src = await loop.run_in_executor(None, peer.recvfrom, 2048)
            assert data == b"send indication" and src == ev.relayed
            peer.sendto(b"data indication", src)
            assert (await d.wait_for("data", 10)).payload == b"data indication"
            d.call(c.channel_bind, P)
            assert (await d.wait_for(("channel-bound", "error"), 10)).kind == "channel-bound"
            for size in (1, 5, 7, 1000):  # ChannelData lengths that need stream padding
                d.call(c.send_to, b"c" * size, P)
                data, _ = await loop.run_in_executor(None, peer.recvfrom, 2048)
                assert data == b"c" * size
                peer.sendto(b"r" * size, src)
                got = await d.wait_for("data", 10)
                assert got.payload == b"r" * size and got.channel == 0x4000
        return ev.relayed
    finally:
        peer.close()


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_p2plab_client_and_server_over_streams(transport: str, certificate) -> None:
    cert, key = certificate
    server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"])
    with ServerThread(server, tcp=True, tls=server_ssl_context(cert, key)) as srv:
        addr = srv.tcp_addr if transport == "tcp" else srv.tls_addr
        ctx = client_ssl_context(cert) if transport == "tls" else None
        relay = asyncio.run(relay_round_trip(addr, ctx, transport))
        time.sleep(0.2)
        assert srv.call(lambda: len(server.allocations)) == 0  # closing the client deleted it
        assert relay not in srv.call(server.local_addresses)
        assert srv.call(lambda: server.stats["relayed-to-client"]) >= 5


def test_tls_client_refuses_a_server_it_does_not_trust(certificate) -> None:
    cert, key = certificate
    server = TurnServer({"alice": "secret"})
    with ServerThread(server, tls=server_ssl_context(cert, key)) as srv:
        async def main() -> None:
            with pytest.raises(ssl.SSLCertVerificationError):
                await StreamDriver(TurnClient(srv.tls_addr, "alice", "secret", transport="tls"), srv.tls_addr,
                                   client_ssl_context()).start()
        asyncio.run(main())


def raw_connect(addr) -> socket.socket:
    s = socket.create_connection(addr, timeout=5)
    return s


def closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``s`` (None if it did not within ``seconds``)."""
    s.settimeout(seconds)
    t0 = time.monotonic()
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return time.monotonic() - t0
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - t0


def test_stream_server_closes_slow_junk_and_dropped_connections() -> None:
    server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"])
    with ServerThread(server, tcp=True, frame_timeout=0.5) as srv:
        # slowloris: half a STUN header, then nothing
        a = raw_connect(srv.tcp_addr)
        a.sendall(StunMessage(m.ALLOCATE, m.REQUEST).encode()[:10])
        # a connection that never sends a byte
        b = raw_connect(srv.tcp_addr)
        # a ChannelData frame claiming 65535 bytes, with only 100 sent
        c = raw_connect(srv.tcp_addr)
        c.sendall(b"\x40\x00\xff\xff" + b"x" * 100)
        # junk (a TLS ClientHello on the plain TCP port): closed at once
        d = raw_connect(srv.tcp_addr)
        d.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32))
        assert closed_within(d, 0.4) is not None
        for s in (a, b, c):
            t = closed_within(s, 3.0)
            assert t is not None and t < 2.0, "a stalled connection was not closed"
        # a client whose connection just drops loses its allocation
        e = raw_connect(srv.tcp_addr)
        e.sendall(StunMessage(m.ALLOCATE, m.REQUEST, attributes=[("REQUESTED-TRANSPORT", 17)]).encode())
        e.settimeout(5)
        nonce = StunMessage.decode(e.recv(4096)).get("NONCE")
        key = m.long_term_key("alice", "p2plab", "secret")
        e.sendall(StunMessage(m.ALLOCATE, m.REQUEST, attributes=[
            ("REQUESTED-TRANSPORT", 17), ("USERNAME", "alice"), ("REALM", "p2plab"), ("NONCE", nonce)]).encode(key=key))
        assert StunMessage.decode(e.recv(4096)).cls == m.SUCCESS
        assert srv.call(lambda: len(server.allocations)) == 1
        e.close()
        for _ in range(50):
            if srv.call(lambda: len(server.allocations)) == 0:
                break
            time.sleep(0.02)
        assert srv.call(lambda: len(server.allocations)) == 0
        for s in (a, b, c, d):
            s.close()
        assert srv.call(lambda: server.stats["bad-stream"]) == 1
        # and the server still serves a well-behaved client
        relay = asyncio.run(relay_round_trip(srv.tcp_addr, None, "tcp"))
        assert relay[0] == "127.0.0.1"


def test_tls_port_closes_a_client_that_never_finishes_the_handshake(certificate) -> None:
    cert, key = certificate
    with ServerThread(TurnServer({"alice": "secret"}), tls=server_ssl_context(cert, key), frame_timeout=0.5) as srv:
        s = raw_connect(srv.tls_addr)
        s.sendall(b"\x16\x03\x01")  # the start of a TLS record, then silence
        t = closed_within(s, 3.0)
        s.close()
        assert t is not None and t < 2.5


def test_fuzzed_streams_never_break_the_server() -> None:
    """Random and mutated byte streams in random chunks on many connections: the server stays up,
    answers well-formed requests in them, and keeps no state for the closed connections."""
    rng = random.Random(16)
    templates = [
        StunMessage(m.ALLOCATE, m.REQUEST, rng=rng, attributes=[("REQUESTED-TRANSPORT", 17)]).encode(),
        StunMessage(m.BINDING, m.REQUEST, rng=rng).encode(fingerprint=True),
        frame_for_stream(ChannelData(0x4001, b"abc").encode()),
        frame_for_stream(ChannelData(0x7001, b"abcdef", rfc5766=True).encode()),
        stun_frame(rng, 33),
    ]
    server = TurnServer({"alice": "secret"})
    with ServerThread(server, tcp=True, frame_timeout=0.3) as srv:
        socks = []
        for i in range(60):
            stream = bytearray(b"".join(rng.choice(templates) for _ in range(rng.randint(1, 6))))
            for _ in range(rng.randint(0, 3)):  # mutate a few bytes
                stream[rng.randrange(len(stream))] = rng.randrange(256)
            if i % 7 == 0:
                stream[2:4] = struct.pack("!H", 0xFFF0)  # an oversized length claim
            s = raw_connect(srv.tcp_addr)
            pos = 0
            while pos < len(stream):
                step = rng.randint(1, 40)
                try:
                    s.sendall(bytes(stream[pos:pos + step]))
                except (BrokenPipeError, ConnectionResetError):  # the server hung up on junk: fine
                    break
                pos += step
            socks.append(s)
        time.sleep(1.0)
        for s in socks:
            s.close()
        time.sleep(0.3)
        assert srv.call(lambda: len(srv.driver.stream_writers)) == 0
        assert asyncio.run(relay_round_trip_or_none(srv.tcp_addr))


async def relay_round_trip_or_none(addr) -> bool:
    async with StreamDriver(TurnClient(addr, "alice", "secret", transport="tcp"), addr) as d:
        return (await d.wait_for(("allocated", "error", "timeout"), 10)).kind == "allocated"


def test_cli_turn_server_over_tcp_and_tls(tmp_path) -> None:
    need("openssl")
    import os
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "p2plab", "turn-server", "--port", "0", "--user", "alice:secret",
                             "--allow-peer", "127.0.0.0/8", "--tcp", "--tls", "--tls-port", "0",
                             "--cert-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        banner, certline = proc.stdout.readline(), proc.stdout.readline()
        tcp = re.search(r"tcp 127\.0\.0\.1:(\d+)", banner)
        tls = re.search(r"tls 127\.0\.0\.1:(\d+)", banner)
        assert "listening on udp 127.0.0.1:" in banner and tcp and tls, banner
        cert = re.search(r"certificate (\S+);", certline).group(1)
        assert asyncio.run(relay_round_trip(("127.0.0.1", int(tcp.group(1))), None, "tcp"))
        assert asyncio.run(relay_round_trip(("127.0.0.1", int(tls.group(1))), client_ssl_context(cert), "tls"))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopped: 0 allocations left" in out and "Traceback" not in err, err[-2000:]


def test_cli_cert_without_key_is_a_clear_error() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "p2plab", "turn-server", "--user", "a:b", "--tls", "--cert", "x.pem"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--cert and --key go together" in out.stderr and "Traceback" not in out.stderr


def test_lab_certificate_without_openssl_says_what_to_do(tmp_path, monkeypatch) -> None:
    from p2plab.errors import ConfigurationError
    from p2plab.turn import stream

    monkeypatch.setattr(stream.shutil, "which", lambda name: None)
    with pytest.raises(ConfigurationError, match="'openssl' command is missing.*--cert FILE --key FILE"):
        stream.lab_certificate(tmp_path)
