"""tshark (Wireshark) decodes the pcaps p2plab writes: STUN on every frame, no expert warnings."""

from __future__ import annotations

import asyncio
import random
import subprocess
from pathlib import Path

import pytest

from p2plab.packet import Datagram
from p2plab.stun import message as m
from p2plab.stun.message import ChannelData, StunMessage, long_term_key
from p2plab.trace import Trace

# test helpers next to this file (ruff cannot tell what kind of import they are)
# isort: off
from conftest import need
# isort: on

pytestmark = pytest.mark.timeout(120)

KEY = long_term_key("alice", "p2plab", "secret")
PEER = ("198.51.100.9", 7000)
PAYLOADS = [
    StunMessage(rng=random.Random(1)).encode(fingerprint=True),
    StunMessage(m.BINDING, m.SUCCESS, attributes=[
        ("XOR-MAPPED-ADDRESS", ("203.0.113.7", 4000)), ("MAPPED-ADDRESS", ("203.0.113.7", 4000)),
        ("OTHER-ADDRESS", ("192.0.2.2", 3479)), ("RESPONSE-ORIGIN", ("192.0.2.1", 3478)),
        ("SOFTWARE", "p2plab")]).encode(fingerprint=True),
    StunMessage(m.BINDING, m.REQUEST, attributes=[("CHANGE-REQUEST", 6)]).encode(fingerprint=True),
    StunMessage(m.BINDING, m.REQUEST, attributes=[("USERNAME", "a:b"), ("PRIORITY", 100), ("USE-CANDIDATE", None),
                                                  ("ICE-CONTROLLING", 42)]).encode(key=b"pw", fingerprint=True),
    StunMessage(m.ALLOCATE, m.REQUEST, attributes=[("REQUESTED-TRANSPORT", 17), ("LIFETIME", 600)]).encode(
        fingerprint=True),
    StunMessage(m.ALLOCATE, m.ERROR, attributes=[("ERROR-CODE", (401, "Unauthenticated")), ("REALM", "p2plab"),
                                                 ("NONCE", "abc")]).encode(fingerprint=True),
    StunMessage(m.ALLOCATE, m.REQUEST, attributes=[
        ("REQUESTED-TRANSPORT", 17), ("DONT-FRAGMENT", None), ("USERNAME", "alice"), ("REALM", "p2plab"),
        ("NONCE", "abc")]).encode(key=KEY, fingerprint=True),
    StunMessage(m.ALLOCATE, m.SUCCESS, attributes=[
        ("XOR-RELAYED-ADDRESS", ("192.0.2.1", 50000)), ("LIFETIME", 600),
        ("XOR-MAPPED-ADDRESS", ("203.0.113.7", 4000))]).encode(key=KEY, fingerprint=True),
    StunMessage(m.CREATE_PERMISSION, m.REQUEST, attributes=[("XOR-PEER-ADDRESS", PEER)]).encode(key=KEY),
    StunMessage(m.CHANNEL_BIND, m.REQUEST, attributes=[("CHANNEL-NUMBER", 0x4000), ("XOR-PEER-ADDRESS", PEER)]).encode(
        key=KEY, fingerprint=True),
    StunMessage(m.REFRESH, m.SUCCESS, attributes=[("LIFETIME", 0)]).encode(key=KEY),
    StunMessage(m.SEND, m.INDICATION, attributes=[("XOR-PEER-ADDRESS", PEER), ("DATA", b"hello")]).encode(),
    StunMessage(m.DATA, m.INDICATION, attributes=[("XOR-PEER-ADDRESS", PEER), ("DATA", b"hi!")]).encode(),
    ChannelData(0x4000, b"hello over a channel").encode(pad=True),
]


def tshark(path: Path, *args: str) -> str:
    out = subprocess.run(["tshark", "-n", "-r", str(path), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


WARN = 0x00600000  # Wireshark's expert severities: chat 0x200000, note 0x400000, warn 0x600000, error 0x800000


def assert_no_expert_warnings(path: Path, *args: str) -> None:
    """No expert item of severity "warning" or "error" (chat/notes such as "retransmission" are fine)."""
    severities = [int(v) for v in tshark(path, *args, "-T", "fields", "-e", "_ws.expert.severity").replace(",", " ").split()]
    assert all(v < WARN for v in severities), tshark(path, *args, "-q", "-z", "expert")


def check_pcap(path: Path, count: int) -> None:
    protos = tshark(path, "-T", "fields", "-e", "frame.protocols").split()
    assert len(protos) == count
    assert all(":stun" in p for p in protos), protos
    experts = tshark(path, "-T", "fields", "-e", "_ws.expert.severity").split()
    assert experts == [], tshark(path, "-q", "-z", "expert")  # not even a note for these


def test_tshark_decodes_trace_pcap(tmp_path: Path) -> None:
    need("tshark")
    rows, packets = [], []
    for i, payload in enumerate(PAYLOADS):
        src, dst = (("10.0.0.2", 5000), ("192.0.2.1", 3478)) if i % 2 == 0 else (("192.0.2.1", 3478), ("10.0.0.2", 5000))
        rows.append((i * 0.01, "client", "eth0", "out", src[0], src[1], dst[0], dst[1], None, None, None,
                     "sent", "", i, -1))
        packets.append(Datagram(src[0], src[1], dst[0], dst[1], payload))
    path = Trace(rows, packets).to_pcap(tmp_path / "stun.pcap")
    check_pcap(path, len(PAYLOADS))
    types = tshark(path, "-T", "fields", "-e", "stun.type").split()
    assert "0x0003" in types and "0x0009" in types and "0x0016" in types  # Allocate, ChannelBind, Send ind.
    # integrity and fingerprint values are what Wireshark recomputes too
    assert "0x0101" in types


@pytest.mark.needs_root  # capturing on the host's loopback needs root (the rootless lab captures its own traffic)
def test_tshark_decodes_live_capture_of_p2plab_servers(tmp_path: Path) -> None:
    """Capture real traffic on lo with tcpdump while p2plab clients talk to p2plab servers."""
    need("tshark", "tcpdump")
    from p2plab.aio import Driver
    from p2plab.stun import StunClient, StunServer
    from p2plab.turn import TurnClient, TurnServer

    pcap = tmp_path / "live.pcap"

    async def main(port_holder: list) -> None:
        async with Driver(StunServer(), ("127.0.0.1", 0)) as srv, \
                Driver(TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"]), ("127.0.0.1", 0)) as turn:
            port_holder.extend([srv.local_addr[1], turn.local_addr[1]])
            filt = f"udp and (port {srv.local_addr[1]} or port {turn.local_addr[1]})"
            cap = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-Z", "root", "-w", str(pcap), filt],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)
            try:
                async with Driver(StunClient(srv.local_addr), ("127.0.0.1", 0)) as c:
                    await c.wait_for("mapped", 5)
                client = TurnClient(turn.local_addr, "alice", "secret")
                async with Driver(client, ("127.0.0.1", 0)) as c:
                    await c.wait_for("allocated", 5)
                    client.channel_bind(("127.0.0.1", 9))
                    c.poke()
                    await c.wait_for("channel-bound", 5)
                    client.send_to(b"x" * 10, ("127.0.0.1", 9))
                    c.poke()
                    await asyncio.sleep(0.3)
            finally:
                cap.terminate()
                cap.wait(10)

    ports: list = []
    asyncio.run(main(ports))
    decode = [arg for p in ports for arg in ("-d", f"udp.port=={p},stun")]
    protos = tshark(pcap, *decode, "-T", "fields", "-e", "frame.protocols").split()
    assert len(protos) >= 8 and all(":stun" in p for p in protos), protos
    assert_no_expert_warnings(pcap, *decode)
