"""A tiny packet capturer for labs without root: ``python -m p2plab.netns.pycapture OUT.pcap``.

Inside a user namespace tcpdump cannot drop its privileges (setgroups is denied there), so rootless
labs capture with this instead: one AF_PACKET socket on every interface of the namespace it runs
in, IPv4 only and no IGMP (tcpdump's filter ``ip and not igmp``), written as a LINUX_SLL2 pcap
exactly like ``tcpdump -i any -y LINUX_SLL2`` so the same reader builds the trace. Prints
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


def main(path: str) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
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
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_LINUX_SLL2))
        print("listening on any, link-type LINUX_SLL2 (p2plab.netns.pycapture)", file=sys.stderr, flush=True)
        while not stop:
            try:
                frame, (ifname, proto, pkttype, hatype, hwaddr) = sock.recvfrom(262144)
            except (TimeoutError, InterruptedError):
                continue
            now = time.time()
            skip = LINK_HEADER.get(hatype)
            if proto != 0x0800 or skip is None or len(frame) < skip + 20 or frame[skip + 9] == 2:
                continue
            ip = frame[skip:]
            if ifname not in indexes:
                indexes[ifname] = socket.if_nametoindex(ifname)
            addr = hwaddr[:8].ljust(8, b"\0")
            sll2 = struct.pack("!HHIHBB8s", proto, 0, indexes[ifname], hatype, pkttype, len(hwaddr[:8]), addr)
            rec = sll2 + ip
            sec = int(now)
            out.write(struct.pack("<IIII", sec, int((now - sec) * 1e6), len(rec), len(rec)) + rec)
            count += 1
    print(f"{count} packets captured", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
