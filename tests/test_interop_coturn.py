"""Interoperability with coturn: its clients against p2plab servers, p2plab clients against turnserver.

Everything listens and relays on 127.0.0.1 only; coturn runs from a temporary config, in the
foreground, and is killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from p2plab.aio import Driver
from p2plab.stun import StunClient, StunServer
from p2plab.stun.message import StunMessage
from p2plab.turn import TurnClient, TurnServer
from p2plab.turn.coturn import write_coturn_config

# test helpers next to this file (ruff cannot tell what kind of import they are)
# isort: off
from _servers import ServerThread, free_port
from conftest import need
# isort: on

pytestmark = pytest.mark.timeout(90)


def test_turnutils_stunclient_against_p2plab_rfc5780_server() -> None:
    need("turnutils_stunclient", "timeout")
    alt = free_port("127.0.0.2")
    with ServerThread(StunServer(alt_ip="127.0.0.2", alt_port=alt)) as srv:
        out = subprocess.run(["timeout", "20", "turnutils_stunclient", "-p", str(srv.addr[1]), "127.0.0.1"],
                             capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "UDP reflexive addr: 127.0.0.1:" in out.stdout
    assert f"Other addr: : 127.0.0.2:{alt}" in out.stdout
    assert f"Response origin: : 127.0.0.2:{alt}" in out.stdout  # the CHANGE-REQUEST answer


def test_turnutils_stunclient_against_p2plab_turn_server() -> None:
    """STUN and TURN share a port: coturn's STUN client gets its reflexive address from the TURN server."""
    need("turnutils_stunclient", "timeout")
    server = TurnServer({"alice": "secret"})
    with ServerThread(server) as srv:
        out = subprocess.run(["timeout", "20", "turnutils_stunclient", "-p", str(srv.addr[1]), "127.0.0.1"],
                             capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"UDP reflexive addr: 127\.0\.0\.1:\d+", out.stdout), out.stdout
    assert server.stats["bindings"] >= 1 and server.allocations == {}


def test_p2plab_stun_client_and_turn_client_on_one_turn_server_port() -> None:
    """p2plab's StunClient learns its mapped address from the TURN server, and a TurnClient
    allocates on the same port: what lesson 09 does on 3478."""
    async def main(addr) -> None:
        async with Driver(StunClient(addr), ("127.0.0.1", 0)) as cli:
            ev = await cli.wait_for(("mapped", "timeout", "error"), 10)
            assert ev.kind == "mapped" and ev.address == cli.local_addr, ev
        async with Driver(TurnClient(addr, "alice", "secret"), ("127.0.0.1", 0)) as cli:
            ev = await cli.wait_for(("allocated", "timeout", "error"), 10)
            assert ev.kind == "allocated" and ev.mapped == cli.local_addr, ev

    with ServerThread(TurnServer({"alice": "secret"})) as srv:
        asyncio.run(main(srv.addr))


def test_coturn_config_listens_on_loopback_and_refuses_bad_input(tmp_path: Path) -> None:
    path = write_coturn_config(tmp_path, 3478, extra="no-tcp\nno-tls", log_file="/dev/null")
    lines = path.read_text().splitlines()
    assert {"listening-ip=127.0.0.1", "relay-ip=127.0.0.1", "listening-port=3478", "user=alice:secret",
            "lt-cred-mech", "no-tcp", "no-tls", "log-file=/dev/null", f"pidfile={tmp_path / 'turnserver-3478.pid'}"} <= set(lines)
    with pytest.raises(ValueError, match="port must be 1-65535"):
        write_coturn_config(tmp_path, 0)
    with pytest.raises(ValueError, match="NAME:PASSWORD"):
        write_coturn_config(tmp_path, 3478, user="alice")


@contextlib.contextmanager
def coturn_server(tmp: Path, extra: str = "no-tcp\nno-tls"):
    """coturn's turnserver on 127.0.0.1 from a temporary config, in the foreground; yields (ip, port).

    ``extra`` adds config lines (the default turns TCP and TLS listeners off)."""
    need("turnserver")
    port = free_port()
    path = write_coturn_config(tmp, port, extra=extra)
    proc = subprocess.Popen(["turnserver", "-c", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # wait until it answers a Binding request
        deadline = time.monotonic() + 30  # slow on a busy machine (TLS set-up)
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.3)
                s.sendto(StunMessage().encode(), ("127.0.0.1", port))
                try:
                    s.recvfrom(2048)
                    break
                except TimeoutError:
                    pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("coturn did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
        yield ("127.0.0.1", port)
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def turnutils_peer():
    """coturn's UDP echo peer on 127.0.0.1; yields its port."""
    port = free_port()
    # started directly (not under `timeout`) so that killing it really ends it
    peer = subprocess.Popen(["turnutils_peer", "-p", str(port), "-L", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        yield port
    finally:
        peer.kill()
        peer.wait()


def run_uclient(flags: list[str], server_port: int, peer_port: int, messages: int = 30) -> tuple[int, int, int, str]:
    """Run turnutils_uclient; returns (sent, received, lost, output)."""
    out = subprocess.run(
        ["timeout", "40", "turnutils_uclient", *flags, "-n", str(messages), "-l", "120",
         "-u", "alice", "-w", "secret", "-e", "127.0.0.1", "-r", str(peer_port), "-L", "127.0.0.1",
         "-p", str(server_port), "127.0.0.1"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n", text)
    lost = re.search(r"Total lost packets (\d+)", text)
    assert totals and lost, text[-3000:]
    return int(totals[-1][0]), int(totals[-1][1]), int(lost.group(1)), text


# turnutils_uclient modes: default = channels, and an RTP/RTCP pair of allocations (EVEN-PORT with
# the R bit, then RESERVATION-TOKEN); -s = Send indications; -c = no RTCP (random channel numbers
# from RFC 5766's range 0x4000-0x7FFF); -m 3 = three clients; -g = DONT-FRAGMENT
UCLIENT_MODES = [[], ["-s"], ["-c"], ["-m", "3"], ["-s", "-c"], ["-g"]]


@pytest.fixture(scope="module")
def coturn_for_uclient(tmp_path_factory):
    with coturn_server(tmp_path_factory.mktemp("coturn")) as addr:
        yield addr


@pytest.mark.parametrize("flags", UCLIENT_MODES, ids=lambda f: " ".join(f) or "default")
def test_turnutils_uclient_through_p2plab_turn_server(flags: list[str], coturn_for_uclient) -> None:
    """Every uclient mode: 0 lost packets through p2plab, and the same counts as through coturn."""
    need("turnutils_uclient", "turnutils_peer", "timeout")
    with turnutils_peer() as peer_port:
        server = TurnServer({"alice": "secret"}, realm="p2plab", allowed_peers=["127.0.0.0/8"])
        with ServerThread(server) as srv:
            sent, received, lost, text = run_uclient(flags, srv.addr[1], peer_port)
            stats = dict(srv.call(lambda: dict(server.stats)))
            events = list(srv.driver.events)
        ref_sent, ref_received, ref_lost, ref_text = run_uclient(flags, coturn_for_uclient[1], peer_port)
    assert lost == 0 and sent == received > 0, text[-2000:]
    assert (sent, received, lost) == (ref_sent, ref_received, ref_lost), (text[-1500:], ref_text[-1500:])
    assert stats.get("relayed-to-peer", 0) >= sent and stats.get("relayed-to-client", 0) >= sent, stats
    allocated = [ev for ev in events if ev.kind == "allocated"]
    if "-c" not in flags:  # RTP allocations reserved N+1 and the RTCP ones used the tokens
        reserved = [ev for ev in allocated if "reserved" in ev.data]
        assert reserved and all(ev.relay[1] % 2 == 0 for ev in reserved), allocated
        assert {ev.relay[1] + 1 for ev in reserved} & {ev.relay[1] for ev in allocated}, allocated


@pytest.fixture
def coturn(tmp_path: Path):
    """coturn's turnserver on 127.0.0.1 (temporary config, foreground, no daemon)."""
    with coturn_server(tmp_path) as addr:
        yield addr


def test_p2plab_stun_client_against_coturn(coturn) -> None:
    async def main() -> None:
        async with Driver(StunClient(coturn), ("127.0.0.1", 0)) as cli:
            ev = await cli.wait_for(("mapped", "timeout", "error"), 10)
            assert ev.kind == "mapped" and ev.address == cli.local_addr

    asyncio.run(main())


def test_p2plab_turn_client_against_coturn(coturn) -> None:
    async def main() -> None:
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(3)
        P = peer.getsockname()
        loop = asyncio.get_running_loop()
        c = TurnClient(coturn, "alice", "secret")
        async with Driver(c, ("127.0.0.1", 0)) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "allocated", ev
            c.create_permission(P)
            d.poke()
            assert (await d.wait_for(("permission", "error"), 10)).kind == "permission"
            c.send_to(b"via send indication", P)
            d.poke()
            data, src = await loop.run_in_executor(None, peer.recvfrom, 2048)
            assert data == b"via send indication" and src == ev.relayed
            peer.sendto(b"back as Data", src)
            assert (await d.wait_for("data", 10)).data["data"] == b"back as Data"
            c.channel_bind(P)
            d.poke()
            assert (await d.wait_for(("channel-bound", "error"), 10)).kind == "channel-bound"
            c.send_to(b"via channel", P)
            d.poke()
            data, src = await loop.run_in_executor(None, peer.recvfrom, 2048)
            assert data == b"via channel"
            peer.sendto(b"back on channel", src)
            got = await d.wait_for("data", 10)
            assert got.data["data"] == b"back on channel" and got.data["channel"] == 0x4000
            c.refresh(0)
            d.poke()
            assert (await d.wait_for(("deallocated", "error"), 10)).kind == "deallocated"
        peer.close()

    asyncio.run(main())


def test_p2plab_turn_client_wrong_password_against_coturn(coturn) -> None:
    async def main() -> None:
        async with Driver(TurnClient(coturn, "alice", "wrong"), ("127.0.0.1", 0)) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "error" and ev.code == 401

    asyncio.run(main())


# -- TURN over TCP and TLS -----------------------------------------------------------------------
def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab_cert(tmp_path_factory):
    need("openssl")
    from p2plab.turn.stream import lab_certificate

    return lab_certificate(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def coturn_streams(tmp_path_factory, lab_cert):
    """coturn listening on UDP+TCP (listening-port) and TLS (tls-listening-port)."""
    cert, key = lab_cert
    tls_port = free_tcp_port()
    with coturn_server(tmp_path_factory.mktemp("coturn-tls"),
                       extra=f"tls-listening-port={tls_port}\ncert={cert}\npkey={key}") as addr:
        yield {"tcp": addr, "tls": ("127.0.0.1", tls_port)}


@pytest.mark.parametrize("flags", [["-t"], ["-t", "-S"], ["-t", "-c"], ["-t", "-s"]], ids=" ".join)
def test_turnutils_uclient_over_tcp_and_tls_through_p2plab(flags: list[str], coturn_streams, lab_cert) -> None:
    """uclient over TCP (-t) and TLS (-t -S): 0 lost through p2plab and the same counts as coturn."""
    need("turnutils_uclient", "turnutils_peer", "timeout")
    from p2plab.turn.stream import server_ssl_context

    tls = "-S" in flags
    with turnutils_peer() as peer_port:
        server = TurnServer({"alice": "secret"}, realm="p2plab", allowed_peers=["127.0.0.0/8"])
        with ServerThread(server, tcp=not tls, tls=server_ssl_context(*lab_cert) if tls else None) as srv:
            sent, received, lost, text = run_uclient(flags, (srv.tls_addr if tls else srv.tcp_addr)[1], peer_port)
            stats = dict(srv.call(lambda: dict(server.stats)))
        ref = run_uclient(flags, coturn_streams["tls" if tls else "tcp"][1], peer_port)
    assert lost == 0 and sent == received > 0, text[-2000:]
    assert (sent, received, lost) == ref[:3], (text[-1500:], ref[3][-1500:])
    assert stats.get("relayed-to-peer", 0) >= sent and stats.get("bad-stream", 0) == 0, stats


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_p2plab_turn_client_over_streams_against_coturn(transport: str, coturn_streams, lab_cert) -> None:
    from p2plab.turn.stream import StreamDriver, client_ssl_context

    addr = coturn_streams[transport]
    ctx = client_ssl_context(lab_cert[0]) if transport == "tls" else None

    async def main() -> None:
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(5)
        P = peer.getsockname()
        loop = asyncio.get_running_loop()
        c = TurnClient(addr, "alice", "secret", transport=transport)
        async with StreamDriver(c, addr, ctx) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "allocated", ev
            d.call(c.create_permission, P)
            assert (await d.wait_for(("permission", "error"), 10)).kind == "permission"
            d.call(c.send_to, b"over " + transport.encode(), P)
            data, src = await loop.run_in_executor(None, peer.recvfrom, 2048)
            assert data == b"over " + transport.encode() and src == ev.relayed
            peer.sendto(b"back", src)
            assert (await d.wait_for("data", 10)).payload == b"back"
            d.call(c.channel_bind, P)
            assert (await d.wait_for(("channel-bound", "error"), 10)).kind == "channel-bound"
            for size in (3, 8, 501):  # stream padding of ChannelData, both ways
                d.call(c.send_to, b"p" * size, P)
                data, _ = await loop.run_in_executor(None, peer.recvfrom, 2048)
                assert data == b"p" * size
                peer.sendto(b"q" * size, src)
                got = await d.wait_for("data", 10)
                assert got.payload == b"q" * size and got.channel == 0x4000
            d.call(c.deallocate)
            assert (await d.wait_for(("deallocated", "error"), 10)).kind == "deallocated"
        peer.close()

    asyncio.run(main())


# -- IPv6 relays (REQUESTED-ADDRESS-FAMILY) ----------------------------------------------------------
@pytest.fixture(scope="module")
def coturn_ipv6_relay(tmp_path_factory):
    with coturn_server(tmp_path_factory.mktemp("coturn6"), extra="no-tcp\nno-tls\nrelay-ip=::1") as addr:
        yield addr


def test_turnutils_uclient_ipv6_relay_through_p2plab(coturn_ipv6_relay) -> None:
    """uclient -x asks for an IPv6 relay (an IPv4 client, an IPv6 peer on ::1)."""
    need("turnutils_uclient", "turnutils_peer", "timeout")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        peer_port = s.getsockname()[1]
    peer = subprocess.Popen(["turnutils_peer", "-p", str(peer_port), "-L", "::1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        flags = ["-x"]

        def run(server_port: int) -> tuple[int, int, int, str]:
            out = subprocess.run(
                ["timeout", "40", "turnutils_uclient", *flags, "-n", "30", "-l", "120", "-u", "alice", "-w",
                 "secret", "-e", "::1", "-r", str(peer_port), "-L", "127.0.0.1", "-p", str(server_port),
                 "127.0.0.1"], capture_output=True, text=True)
            text = out.stdout + out.stderr
            assert out.returncode == 0, text[-3000:]
            totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n", text)
            lost = re.search(r"Total lost packets (\d+)", text)
            return int(totals[-1][0]), int(totals[-1][1]), int(lost.group(1)), text

        server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8", "::1/128"], relay_ip6="::1")
        with ServerThread(server) as srv:
            sent, received, lost, text = run(srv.addr[1])
            relays = [ev.relay for ev in srv.driver.events if ev.kind == "allocated"]
        ref = run(coturn_ipv6_relay[1])
    finally:
        peer.kill()
        peer.wait()
    assert lost == 0 and sent == received > 0, text[-2000:]
    assert (sent, received, lost) == ref[:3], (text[-1500:], ref[3][-1500:])
    assert relays and all(r[0] == "::1" for r in relays), relays


@pytest.mark.parametrize("which", ["p2plab", "coturn"])
def test_p2plab_client_asks_for_an_ipv6_relay(which: str, coturn_ipv6_relay) -> None:
    async def main(addr) -> None:
        peer = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        peer.bind(("::1", 0))
        peer.settimeout(5)
        P = peer.getsockname()[:2]
        loop = asyncio.get_running_loop()
        c = TurnClient(addr, "alice", "secret", family=6)
        async with Driver(c, ("127.0.0.1", 0)) as d:
            ev = await d.wait_for(("allocated", "error", "timeout"), 10)
            assert ev.kind == "allocated" and ev.relayed[0] == "::1", ev
            d.call(c.create_permission, P)
            assert (await d.wait_for(("permission", "error"), 10)).kind == "permission"
            d.call(c.send_to, b"to an IPv6 peer", P)
            data, src = await loop.run_in_executor(None, peer.recvfrom, 2048)
            assert data == b"to an IPv6 peer" and src[:2] == ev.relayed
            peer.sendto(b"back over IPv6", src[:2])
            assert (await d.wait_for("data", 10)).payload == b"back over IPv6"
        peer.close()

    if which == "coturn":
        asyncio.run(main(coturn_ipv6_relay))
    else:
        server = TurnServer({"alice": "secret"}, allowed_peers=["::1/128"], relay_ip6="::1")
        with ServerThread(server) as srv:
            asyncio.run(main(srv.addr))
        without = TurnServer({"alice": "secret"})
        with ServerThread(without) as srv:
            async def refused() -> None:
                async with Driver(TurnClient(srv.addr, "alice", "secret", family=6), ("127.0.0.1", 0)) as d:
                    ev = await d.wait_for(("allocated", "error", "timeout"), 10)
                    assert ev.kind == "error" and ev.code == 440 and "no IPv6 relay address" in ev.reason
            asyncio.run(refused())
