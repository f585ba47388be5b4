"""NAT64 in the real lab: an IPv6-only Alice reaches an IPv4 server through Debian's ``tayga``.

``run_nat64()`` builds ``p2plab.topology.one_nat`` and then changes Alice's home network:

* Alice loses her IPv4 address and gets ``2001:db8:1::10/64`` (the IPv6 documentation prefix,
  RFC 3849) with a default route to the router's ``2001:db8:1::1``: she is IPv6-only.
* On ``nat-a``, ``tayga`` (a stateless NAT64 in user space, RFC 7915 header translation) owns a
  tun device ``nat64``. Packets to ``2001:db8:64::/96`` go into it. (Not to the well-known prefix
  ``64:ff9b::/96``: RFC 6052 section 3.1 forbids it for non-global IPv4 addresses such as the
  documentation ranges the lab uses, and tayga drops those packets; ``run_nat64(prefix=WKP)`` shows it.)
  tayga gives Alice's IPv6 address an IPv4 address from its pool ``192.168.255.0/24`` and sends the
  translated IPv4 packet back out of the tun device.
* The router's usual nftables NAT44 then masquerades that pool address as ``203.0.113.10``: the
  tun device's packets are just one more inside network. Stateless translation plus a stateful
  NAT44 is what a stateful NAT64 (RFC 6146) does in one box.

Alice sends UDP to ``[64:ff9b::c000:201]:7000``, which is ``192.0.2.1:7000`` written in IPv6;
the server echoes. A packet capturer on ``nat-a`` records the same datagram on the LAN (IPv6),
leaving tayga (IPv4 from the pool) and leaving the router (IPv4 after the NAT44); another records
Alice's own IPv6 packets. The lab's usual capture (IPv4 only) records the rest, and the trace merges them.
"""

from __future__ import annotations

import time
from typing import Any

from .. import topology as t

PREFIX = "2001:db8:64::/96"  # a network-specific prefix (RFC 6052 section 2.2): see the module's docstring
WKP = "64:ff9b::/96"  # tayga drops packets that put the lab's non-global addresses under it (RFC 6052 3.1)
ALICE_V6, ROUTER_V6, LAN_V6 = "2001:db8:1::10", "2001:db8:1::1", "2001:db8:1::/64"
POOL, TAYGA_V4, TAYGA_V6 = "192.168.255.0/24", "192.168.255.1", "2001:db8:1::64"
ECHO_PORT, ALICE_PORT = 7000, 5000
TUN = "nat64"


TUN_FIX = "ask the administrator for 'chmod 0666 /dev/net/tun', or run as root"


def tun_problem() -> str | None:
    """Why this user cannot give tayga its tun device, or None when it can (``p2plab doctor`` shows it too)."""
    import os

    if not os.path.exists("/dev/net/tun"):
        return "there is no tun device /dev/net/tun on this machine (the kernel's tun module is not loaded)"
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return ("tayga needs the tun device /dev/net/tun, which this user may not open here (a desktop Linux "
                "makes it readable and writable by everyone, as the kernel's tun/tap documentation suggests: "
                "making a network device still needs CAP_NET_ADMIN; this machine does not)")
    return None


def tayga_config(prefix: str = PREFIX) -> str:
    """tayga.conf for the lab router (no data-dir: the pool's assignments live only in memory)."""
    return (f"tun-device {TUN}\nipv4-addr {TAYGA_V4}\nipv6-addr {TAYGA_V6}\nprefix {prefix}\n"
            f"dynamic-pool {POOL}\n")


def capture_main(seconds: float, port: int, stop_file: str = "") -> list[dict[str, Any]]:
    """Capture UDP to or from ``port`` (IPv4 and IPv6) on every interface of this namespace for
    ``seconds``, or until ``stop_file`` exists.

    Returns one dict per packet: ``ifname``, ``outgoing``, ``t`` (seconds since start), ``hex``
    (the IP packet)."""
    import os
    import socket
    import struct
    import time as _time

    from .pycapture import SO_TIMESTAMPNS, TIMESPEC, _kernel_time

    eth_p_all, outgoing_type = 0x0003, 4
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(eth_p_all))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)  # the kernel's time, like the lab's other captures
    sock.settimeout(0.05)
    print("READY", flush=True)
    t0 = _time.monotonic()
    out: list[dict[str, Any]] = []
    while _time.monotonic() - t0 < seconds and not (stop_file and os.path.exists(stop_file)):
        try:
            frame, anc, _, (ifname, proto, pkttype, hatype, _) = sock.recvmsg(65535, socket.CMSG_SPACE(TIMESPEC.size))
        except TimeoutError:
            continue
        stamp = _kernel_time(anc)
        wall = stamp[0] + stamp[1] / 1e9 if stamp else _time.time()
        skip = 14 if hatype == 1 else 0  # Ethernet (the LAN bridge, veths) or none (the tun device)
        ip = frame[skip:]
        if proto == 0x86DD and len(ip) >= 48 and ip[6] == 17:
            sport, dport = struct.unpack_from("!HH", ip, 40)
        elif proto == 0x0800 and len(ip) >= 28 and ip[9] == 17:
            ihl = (ip[0] & 0x0F) * 4
            sport, dport = struct.unpack_from("!HH", ip, ihl)
        else:
            continue
        if port not in (sport, dport):
            continue
        out.append({"ifname": ifname, "outgoing": pkttype == outgoing_type,
                    "t": round(_time.monotonic() - t0, 6), "wall": wall, "hex": ip.hex()})
    sock.close()
    return out


def wait_ready(procs, timeout: float = 10.0) -> None:
    """Wait until every capturer (``capture_main`` in ``Lab.start_python``) has printed READY."""
    import os
    import selectors

    from ..errors import LabUnavailableError

    sel = selectors.DefaultSelector()
    bufs: dict[int, bytes] = {}
    for n, p in enumerate(procs):
        sel.register(p.popen.stdout, selectors.EVENT_READ, n)
        bufs[n] = b""
    deadline = time.monotonic() + timeout
    while bufs and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            n = key.data
            chunk = os.read(key.fileobj.fileno(), 4096)
            bufs[n] += chunk
            if b"READY" in bufs[n] or not chunk:
                sel.unregister(key.fileobj)
                if b"READY" not in bufs[n]:
                    raise LabUnavailableError(f"the packet capturer on {procs[n].host} did not start")
                del bufs[n]
    sel.close()
    if bufs:
        raise LabUnavailableError(f"the packet capturers on {', '.join(procs[n].host for n in bufs)} did not "
                                  f"start within {timeout} s")


def alice_main(dst: str, port: int, sport: int, lines: list[str], timeout: float = 1.0, tries: int = 3,
               offload_off: str = "") -> dict[str, Any]:
    """Alice, IPv6-only: send each line to ``[dst]:port`` over UDP and collect the echoes, sending a line
    again (up to ``tries`` times) when no echo comes within ``timeout`` (after turning off checksum
    offload on ``offload_off``, so the capture shows the real UDP checksum she sends)."""
    import socket

    from .icmplab import tx_checksum_off

    if offload_off:
        tx_checksum_off(offload_off)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::", sport))
    sock.settimeout(timeout)
    got: list[dict[str, Any]] = []
    for line in lines:
        result: dict[str, Any] = {"sent": line, "reply": None, "tries": 0}
        while result["reply"] is None and result["tries"] < tries:
            result["tries"] += 1
            sock.sendto(line.encode(), (dst, port))
            try:
                data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            result.update(reply=data.decode(errors="replace"), **{"from": [addr[0], addr[1]]})
        got.append(result)
    sock.close()
    return {"replies": got}


def _sh(lab, host: str, script: str) -> None:
    r = lab.exec(host, script)
    if r.returncode:
        from ..errors import LabUnavailableError

        raise LabUnavailableError(f"setting up NAT64 on {host} failed ({script.splitlines()[0][:60]}...): "
                                  f"{(r.stderr or r.stdout).strip()[:300]}")


def run_nat64(capture: bool = True, prefix: str = PREFIX,
              lines: tuple[str, ...] = ("hello over IPv6", "still me")) -> dict[str, Any]:
    """Run the NAT64 scenario in a fresh lab. Returns ``trace`` (the lab's capture, IPv4, merged with
    Alice's IPv6 packets and the router's LAN and tun rows), ``router`` (the capture on nat-a, both
    families, as hex), ``alice`` (her replies), ``outcome`` and ``tayga_log``."""
    from .. import systools
    from ..errors import LabUnavailableError
    from ..recorded import udp_echo_main
    from .lab import Lab
    from .nftables import TABLE

    tayga = systools.find("tayga")
    if not tayga:
        raise LabUnavailableError("tayga (a NAT64 in user space) is not installed: "
                                  f"{systools.install_fix(['tayga'])}")
    problem = tun_problem()
    if problem:
        raise LabUnavailableError(f"{problem}: {TUN_FIX}")
    with Lab(t.one_nat("port-restricted-cone"), capture=capture) as lab:
        up = {i.node: i for i in lab.interfaces if i.role == "uplink"}
        lan = next(i.name for i in lab.interfaces if i.node == "nat-a" and i.role == "lan")
        wan = up["nat-a"].name
        eth = up["alice"].name
        conf = lab.workdir / "tayga.conf"
        conf.write_text(tayga_config(prefix))
        v6on = ("echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
                "echo 0 > /proc/sys/net/ipv6/conf/default/disable_ipv6; ")
        _sh(lab, "alice", v6on + f"echo 0 > /proc/sys/net/ipv6/conf/{eth}/disable_ipv6; "
            f"ip -4 addr flush dev {eth} && ip addr add {ALICE_V6}/64 dev {eth} nodad && "
            f"ip -6 route add default via {ROUTER_V6} dev {eth}")
        _sh(lab, "nat-a", v6on + f"echo 0 > /proc/sys/net/ipv6/conf/{lan}/disable_ipv6; "
            "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; "
            f"ip addr add {ROUTER_V6}/64 dev {lan} nodad && "
            f"{tayga} -c {conf} --mktun && ip link set {TUN} up && "
            f"ip route add {POOL} dev {TUN} && ip -6 route add {prefix} dev {TUN} && "
            f"{systools.require('nft')} add rule ip {TABLE} forward iifname {TUN} oifname {wan} accept")
        daemon = lab.popen("nat-a", [tayga, "-c", str(conf), "-d"])
        srv = lab.start_python("server", udp_echo_main, t.SERVER_IP, ECHO_PORT, 4.0)
        stop = lab.workdir / "capture.stop"
        cap = lab.start_python("nat-a", capture_main, 8.0, ECHO_PORT, str(stop))
        cap_alice = lab.start_python("alice", capture_main, 8.0, ECHO_PORT, str(stop))
        wait_ready([cap, cap_alice])
        time.sleep(0.1)  # the echo server binds (alice sends again after 1 s if it was late)
        if daemon.popen.poll() is not None:
            err = daemon.popen.stderr.read().decode(errors="replace").strip()
            raise LabUnavailableError(f"tayga stopped at once in the lab router: {err[-300:]}")
        target = embed(t.SERVER_IP, prefix)
        alice = lab.run_python("alice", alice_main, target, ECHO_PORT, ALICE_PORT, list(lines), offload_off=eth,
                               timeout=20)
        time.sleep(0.05)
        stop.touch()
        router = cap.result(10)
        at_alice = [dict(p, ifname="eth0") for p in cap_alice.result(10) if p["ifname"] == eth]
        time.sleep(0.1)
        trace = lab.trace() if capture else None
        srv.terminate()
        daemon.terminate()
        try:
            _, tayga_log = daemon.popen.communicate(timeout=3)
        except Exception:  # noqa: BLE001
            tayga_log = b""
        names = {wan: "wan", lan: "lan", TUN: TUN}  # (alice's bridge port repeats 'lan')
    router = [dict(p, ifname=names[p["ifname"]]) for p in router if p["ifname"] in names]
    if trace is not None:
        trace = _mark_translated(trace, router, at_alice, lab.epoch)
    for p in router:
        p.pop("wall", None)
    ok = all(r.get("reply") == r["sent"] for r in alice["replies"])
    outcome = {"ok": ok, "target": target, "alice": ALICE_V6,
               "reason": (f"IPv6-only alice reached {t.SERVER_IP}:{ECHO_PORT} as [{target}]:{ECHO_PORT}; "
                          "tayga translated the headers and the NAT44 shared the public address"
                          if ok else f"no echo came back: {alice['replies']}")}
    return {"trace": trace, "router": router, "alice": alice, "outcome": outcome,
            "tayga_log": tayga_log.decode(errors="replace") if isinstance(tayga_log, bytes) else str(tayga_log)}


STEPS = {("lan", False, 6): "alice's IPv6 datagram reaches the router, which routes it into tayga's tun device",
         ("nat64", True, 6): "into tayga (IPv6)",
         ("nat64", False, 4): "out of tayga: the same datagram written as IPv4 from the pool (RFC 7915)",
         ("nat64", True, 4): "the answer, after the NAT44, into tayga (IPv4)",
         ("nat64", False, 6): "out of tayga: the answer written as IPv6 (RFC 7915)",
         ("lan", True, 6): "the answer leaves for alice as IPv6"}


def _mark_translated(trace, router: list[dict], at_alice: list[dict], epoch: float):
    """Merge the router's own capture into the lab's trace, and say what the router did.

    The lab's capture records IPv4 at the lab's interfaces only, so it misses Alice's IPv6 and tayga's
    tun device, and nat-a's WAN packets look "sent by nat-a itself" and the answers "dropped". Here the
    router's IPv6 and tun rows join the trace (their own interface names: ``lan``, ``nat64``) and every
    nat-a row gets the step it is."""
    from ..trace import COLUMNS, Trace, _row_from_raw

    a, r = COLUMNS.index("action"), COLUMNS.index("reason")
    items = []
    for row, pkt in zip(trace._rows, trace._packets):
        row = list(row)
        if row[1] == "nat-a" and row[2] == "wan":
            row[a] = "translated"
            row[r] = ("the NAT44 sent tayga's IPv4 datagram out as 203.0.113.10" if row[3] == "out" else
                      "the answer arrives for 203.0.113.10; the NAT44 hands it to tayga's pool address")
        items.append((tuple(row), pkt))
    for p in router:
        if p["ifname"] == "wan":
            continue  # the lab's own capture has these
        raw = bytes.fromhex(p["hex"])
        why = STEPS.get((p["ifname"], p["outgoing"], raw[0] >> 4), "")
        items.append((_row_from_raw(p["wall"] - epoch, "nat-a", p["ifname"], "out" if p["outgoing"] else "in",
                                    "translated", raw, why), raw))
    for p in at_alice:
        raw = bytes.fromhex(p["hex"])
        items.append((_row_from_raw(p["wall"] - epoch, "alice", "eth0", "out" if p["outgoing"] else "in",
                                    "sent" if p["outgoing"] else "delivered", raw, ""), raw))
    items.sort(key=lambda it: (it[0][0], it[0][3] == "in"))
    rows = [list(row) for row, _ in items]
    packets = [pkt for _, pkt in items]
    # one packet id per datagram (the lab's IPv4 ids are 0 for everything tayga writes, and IPv6 has none),
    # and the router's IPv6 side paired with its IPv4 side, so figures follow each datagram end to end
    pid, pair = COLUMNS.index("packet_id"), COLUMNS.index("pair")
    chains: dict[tuple, list[int]] = {}
    for i, (row, raw) in enumerate(zip(rows, packets)):
        payload = raw[40 + 8:] if raw[0] >> 4 == 6 else raw[(raw[0] & 0x0F) * 4 + 8:]
        chains.setdefault((payload, row[COLUMNS.index("dport")] == ECHO_PORT), []).append(i)
    for n, members in enumerate(chains.values()):
        for i in members:
            rows[i][pid] = 60000 + n
        lan = [i for i in members if rows[i][1] == "nat-a" and rows[i][2] == "lan"]
        wan = [i for i in members if rows[i][1] == "nat-a" and rows[i][2] == "wan"]
        if lan and wan:
            rows[lan[0]][pair], rows[wan[0]][pair] = wan[0], lan[0]
    return Trace([tuple(r) for r in rows], packets, world=trace.world, meta=dict(trace.meta))


def embed(ipv4: str, prefix: str = PREFIX) -> str:
    """``ipv4`` inside a /96 IPv6 prefix (RFC 6052 section 2.2): ``embed("192.0.2.1")`` is ``2001:db8:64::c000:201``."""
    from ..nat64 import embed_ipv4

    return embed_ipv4(ipv4, prefix)
