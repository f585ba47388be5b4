"""A tiny packet capturer for labs without root: ``python -m p2plab.netns.pycapture OUT.pcap``.

Inside a user namespace tcpdump cannot drop its privileges (setgroups is denied there), so rootless
labs capture with this instead: one AF_PACKET socket on every interface of the namespace it runs
in, IPv4 only and no IGMP (tcpdump's filter ``ip and not igmp``), written as a LINUX_SLL2 pcap
exactly like ``tcpdump -i any -y LINUX_SLL2`` so the same reader builds the trace. Each packet
carries the kernel's receive timestamp (SO_TIMESTAMPNS), as tcpdump's do, so captures made in
different namespaces interleave in the order the packets really crossed them. Prints
``listening on any`` once the socket is open; stops, flushing the file, on SIGINT or SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
LINKTYPE_LINUX_SLL2 = 276
LINK_HEADER = {1: 14, 772: 14}  # Ethernet (veth, bridge) and loopback frames start with 14 bytes
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the control message has the same number
TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux: seconds, nanoseconds


def _kernel_time(ancdata: list) -> tuple[int, int] | None:
    """(seconds, nanoseconds) of the kernel's timestamp in a recvmsg's control messages."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            return TIMESPEC.unpack_from(data)
    return None


def main(path: str) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.settimeout(0.2)
    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    indexes: dict[str, int] = {}
    count = 0
    with open(path, "wb", buffering=0) as out:
        # nanosecond pcap: a sender's copy and the receiver's copy of one packet on a veth are often
        # less than a microsecond apart, and their order is the story a ladder diagram tells
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, LINKTYPE_LINUX_SLL2))
        print("listening on any, link-type LINUX_SLL2 (p2plab.netns.pycapture)", file=sys.stderr, flush=True)
        while not stop:
            try:
                frame, ancdata, _, (ifname, proto, pkttype, hatype, hwaddr) = sock.recvmsg(
                    262144, socket.CMSG_SPACE(TIMESPEC.size))
            except (TimeoutError, InterruptedError):
                continue
            stamp = _kernel_time(ancdata) or (lambda t: (t // 10**9, t % 10**9))(time.time_ns())
            skip = LINK_HEADER.get(hatype)
            if proto != 0x0800 or skip is None or len(frame) < skip + 20 or frame[skip + 9] == 2:
                continue
            ip = frame[skip:]
            if ifname not in indexes:
                indexes[ifname] = socket.if_nametoindex(ifname)
            addr = hwaddr[:8].ljust(8, b"\0")
            sll2 = struct.pack("!HHIHBB8s", proto, 0, indexes[ifname], hatype, pkttype, len(hwaddr[:8]), addr)
            rec = sll2 + ip
            out.write(struct.pack("<IIII", stamp[0], stamp[1], len(rec), len(rec)) + rec)
            count += 1
    print(f"{count} packets captured", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
