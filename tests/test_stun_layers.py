"""The scapy layers agree with the fast codec, byte for byte, and dissect traces field by field."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from scapy.layers.inet import IP

from p2plab.packet import Datagram, build_ip_packet
from p2plab.stun import layers as L
from p2plab.stun import message as m
from p2plab.stun.message import ChannelData, StunMessage

TID = bytes(range(1, 13))

CASES = [
    (StunMessage(m.BINDING, m.REQUEST, TID), [], {}),
    (StunMessage(m.BINDING, m.SUCCESS, TID, [("XOR-MAPPED-ADDRESS", ("203.0.113.7", 40000)),
                                               ("MAPPED-ADDRESS", ("203.0.113.7", 40000)),
                                               ("SOFTWARE", "p2plab")]),
     [L.StunXorMappedAddress(address=("203.0.113.7", 40000)), L.StunMappedAddress(address=("203.0.113.7", 40000)),
      L.StunSoftware(text=b"p2plab")], {"fingerprint": True}),
    (StunMessage(m.BINDING, m.SUCCESS, TID, [("XOR-MAPPED-ADDRESS", ("2001:db8::42", 5000)),
                                               ("OTHER-ADDRESS", ("192.0.2.2", 3479)),
                                               ("RESPONSE-ORIGIN", ("192.0.2.1", 3478))]),
     [L.StunXorMappedAddress(address=("2001:db8::42", 5000)), L.StunOtherAddress(address=("192.0.2.2", 3479)),
      L.StunResponseOrigin(address=("192.0.2.1", 3478))], {}),
    (StunMessage(m.ALLOCATE, m.REQUEST, TID, [("REQUESTED-TRANSPORT", 17), ("LIFETIME", 600),
                                                ("USERNAME", "alice"), ("REALM", "p2plab"), ("NONCE", "n0nce-x")]),
     [L.StunRequestedTransport(), L.StunLifetime(lifetime=600), L.StunUsername(text=b"alice"),
      L.StunRealm(text=b"p2plab"), L.StunNonce(text=b"n0nce-x")], {}),
    (StunMessage(m.ALLOCATE, m.ERROR, TID, [("ERROR-CODE", (401, "Unauthenticated")), ("REALM", "p2plab")]),
     [L.StunErrorCode(error_class=4, number=1, reason=b"Unauthenticated"), L.StunRealm(text=b"p2plab")], {}),
    (StunMessage(m.CHANNEL_BIND, m.REQUEST, TID, [("CHANNEL-NUMBER", 0x4001),
                                                    ("XOR-PEER-ADDRESS", ("198.51.100.9", 7000))]),
     [L.StunChannelNumber(channel=0x4001), L.StunXorPeerAddress(address=("198.51.100.9", 7000))], {}),
    (StunMessage(m.DATA, m.INDICATION, TID, [("XOR-PEER-ADDRESS", ("198.51.100.9", 7000)), ("DATA", b"hello")]),
     [L.StunXorPeerAddress(address=("198.51.100.9", 7000)), L.StunData(text=b"hello")], {}),
    (StunMessage(m.BINDING, m.REQUEST, TID, [("PRIORITY", 0x6E0001FF), ("USE-CANDIDATE", None),
                                               ("ICE-CONTROLLING", 0x932FF9B151263B36), ("CHANGE-REQUEST", 6)]),
     [L.StunPriority(priority=0x6E0001FF), L.StunUseCandidate(), L.StunIceControlling(tie_breaker=0x932FF9B151263B36),
      L.StunChangeRequest(flags=6)], {"fingerprint": True}),
]


@pytest.mark.parametrize("msg,attrs,kw", CASES)
def test_scapy_and_codec_agree(msg: StunMessage, attrs: list, kw: dict) -> None:
    if kw.get("fingerprint"):
        attrs = attrs + [L.StunFingerprint()]
    pkt = L.STUN(message_type=m.pack_type(msg.method, msg.cls), transaction_id=TID, attributes=attrs)
    assert bytes(pkt) == msg.encode(**kw)


@pytest.mark.parametrize("msg,attrs,kw", CASES)
def test_ip_bytes_dissect_field_by_field(msg: StunMessage, attrs: list, kw: dict) -> None:
    raw = msg.encode(key=b"k", fingerprint=True)
    pkt = IP(build_ip_packet("192.0.2.1", 3478, "10.0.0.2", 5000, raw))
    stun = pkt[L.STUN]
    assert stun.transaction_id == TID and stun.method == msg.method and stun.cls == msg.cls
    assert bytes(stun) == raw
    names = [type(a).__name__ for a in stun.attributes]
    assert names[-2:] == ["StunMessageIntegrity", "StunFingerprint"]
    assert "STUN" in pkt.summary()


def test_xor_address_fields_show_real_addresses() -> None:
    raw = StunMessage(m.ALLOCATE, m.SUCCESS, TID, [("XOR-RELAYED-ADDRESS", ("2001:db8::9", 50000))]).encode()
    pkt = IP(build_ip_packet("192.0.2.1", 3478, "10.0.0.2", 5000, raw))
    assert pkt[L.StunXorRelayedAddress].address == ("2001:db8::9", 50000)


def test_channel_data_layer() -> None:
    raw = build_ip_packet("10.0.0.2", 5000, "192.0.2.1", 3478, ChannelData(0x4002, b"abc").encode())
    pkt = IP(raw)
    assert pkt[L.ChannelData].channel == 0x4002 and pkt[L.ChannelData].data == b"abc"
    assert bytes(L.ChannelData(channel=0x4002, data=b"abc")) == ChannelData(0x4002, b"abc").encode()


def test_trace_packets_use_the_layers() -> None:
    from p2plab.trace import Trace

    payload = StunMessage(rng=random.Random(1)).encode(fingerprint=True)
    row = (0.0, "client", "eth0", "out", "10.0.0.2", 5000, "192.0.2.1", 3478, None, None, None, "sent", "", 1, -1)
    trace = Trace([row], [Datagram("10.0.0.2", 5000, "192.0.2.1", 3478, payload)])
    assert trace.packet(0)[L.STUN].method == m.BINDING


def test_import_p2plab_does_not_import_scapy() -> None:
    code = "import sys, p2plab, p2plab.stun, p2plab.turn, p2plab.aio; print('scapy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
