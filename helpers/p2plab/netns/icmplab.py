"""ICMP and TCP through a real kernel NAT: ``run_icmp_nat()``, for the byte-by-byte dissections of
``p2plab.icmpnat``.

In ``p2plab.topology.same_nat`` (Alice and Carol behind nat-a, a server outside), with every
interface captured:

1. **ping, twice with the same identifier**: Alice, then Carol, send an ICMP echo request with
   identifier 0x1234 to the server (raw sockets). The NAT keeps Alice's identifier and has to give
   Carol's another one: the identifier plays the role of a port (RFC 5508 section 3.1).
2. **a traceroute**: Alice sends UDP datagrams to the server's port 33434 with TTL 1, 2 and 3.
   nat-a, then the core router, answer with ICMP time exceeded; the server answers the third with
   ICMP port unreachable. Each error quotes the header of the datagram that caused it, and nat-a
   rewrites that quoted header on the way back in.
3. **TCP**: Alice opens a TCP connection to the server's port 8080 and sends a line; nat-a rewrites
   addresses, ports and the TCP checksum of every segment.
"""

from __future__ import annotations

import time
from typing import Any

from .. import topology as t

ECHO_ID = 0x1234
TRACE_PORT, TCP_PORT = 33434, 8080
ALICE_UDP_PORT, ALICE_TCP_PORT = 5001, 5002


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tx_checksum_off(ifname: str) -> bool:
    """Turn off transmit checksum offload on ``ifname`` (``ethtool -K IF tx off``, by ioctl).

    With offload on, a Linux host leaves the TCP/UDP checksum to the network card (here the veth
    driver) and a capture on that host shows only the pseudo-header part; with it off, every
    captured checksum is the real one, as on the wire between two physical machines."""
    import ctypes
    import fcntl
    import socket
    import struct

    siocethtool, ethtool_stxcsum = 0x8946, 0x00000017
    value = ctypes.create_string_buffer(struct.pack("II", ethtool_stxcsum, 0))
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            fcntl.ioctl(s.fileno(), siocethtool, ifreq)
        except OSError:
            return False
    return True


def ping_main(dst: str, ident: int, seq: int = 1, payload: bytes = b"p2plab ping", timeout: float = 1.0,
              offload_off: str = "") -> dict:
    """Send one ICMP echo request with identifier ``ident`` (a raw socket) and wait for the reply.
    ``offload_off`` names an interface whose checksum offload is turned off first."""
    import socket
    import struct

    if offload_off and not tx_checksum_off(offload_off):
        return {"reply": False, "id": ident, "error": f"could not turn off checksum offload on {offload_off}"}

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.settimeout(timeout)
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    msg = head[:2] + struct.pack("!H", _checksum(head + payload)) + head[4:] + payload
    sock.sendto(msg, (dst, 0))
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            data, addr = sock.recvfrom(2048)
            icmp = data[(data[0] & 0x0F) * 4:]
            if icmp[0] == 0 and struct.unpack_from("!H", icmp, 4)[0] == ident:
                return {"reply": True, "from": addr[0], "id": ident}
    except OSError:
        pass
    finally:
        sock.close()
    return {"reply": False, "id": ident}


def traceroute_main(dst: str, port: int, sport: int, max_ttl: int = 3, gap: float = 0.15) -> int:
    """Send one UDP datagram per TTL 1..max_ttl from ``sport`` to ``dst:port`` (the answers are in the capture)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", sport))
    for ttl in range(1, max_ttl + 1):
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.sendto(f"probe ttl={ttl}".encode(), (dst, port))
        time.sleep(gap)
    sock.close()
    return max_ttl


def tcp_server_main(ip: str, port: int, seconds: float, offload_off: str = "") -> str:
    """Accept one TCP connection, read a line, answer it, close (after turning off checksum offload on
    the interface ``offload_off``, if given)."""
    import socket

    if offload_off and not tx_checksum_off(offload_off):
        return f"could not turn off checksum offload on {offload_off}"

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(1)
    srv.settimeout(seconds)
    try:
        conn, _ = srv.accept()
    except OSError:
        return ""
    with conn:
        conn.settimeout(seconds)
        data = conn.recv(1024)
        conn.sendall(b"hello alice\n")
    srv.close()
    return data.decode(errors="replace")


def tcp_client_main(dst: str, port: int, sport: int) -> str:
    """Connect from ``sport``, send a line, read the answer."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", sport))
    sock.settimeout(3)
    sock.connect((dst, port))
    sock.sendall(b"hello server\n")
    answer = sock.recv(1024)
    sock.close()
    return answer.decode(errors="replace")


def probes_main(dst: str, sport_udp: int, sport_tcp: int) -> str:
    """Alice's second act: the traceroute, then the TCP connection (one process, to save a start-up)."""
    traceroute_main(dst, TRACE_PORT, sport_udp)
    time.sleep(0.1)
    return tcp_client_main(dst, TCP_PORT, sport_tcp)


def run_icmp_nat(capture: bool = True) -> tuple[Any, dict[str, Any]]:
    """Run the three steps in a fresh lab; returns ``(trace, outcome)``."""
    from .lab import Lab

    out: dict[str, Any] = {}
    with Lab(t.same_nat("port-restricted-cone"), capture=capture) as lab:
        eth = {i.node: i.name for i in lab.interfaces if i.role == "uplink"}
        srv = lab.start_python("server", tcp_server_main, t.SERVER_IP, TCP_PORT, 8.0, eth["server"])
        out["ping_alice"] = lab.run_python("alice", ping_main, t.SERVER_IP, ECHO_ID, offload_off=eth["alice"],
                                           timeout=20)
        out["ping_carol"] = lab.run_python("carol", ping_main, t.SERVER_IP, ECHO_ID, offload_off=eth["carol"],
                                           timeout=20)
        out["tcp_answer"] = lab.run_python("alice", probes_main, t.SERVER_IP, ALICE_UDP_PORT, ALICE_TCP_PORT,
                                           timeout=20)
        out["tcp_server_got"] = srv.result(10)
        out["offload_off"] = not any("error" in out[k] for k in ("ping_alice", "ping_carol")) and \
            out["tcp_server_got"] == "hello server\n"
        time.sleep(0.1)
        trace = lab.trace() if capture else None
    out["ok"] = bool(out["ping_alice"]["reply"] and out["ping_carol"]["reply"]
                     and out["tcp_answer"] == "hello alice\n")
    return trace, out
