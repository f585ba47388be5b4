"""Capacity of a class TURN server: p2plab's turn-server against coturn's turnserver, same run, loopback.

N sessions (default 100), each its own client socket with an allocation and a bound channel, send
ChannelData at R datagrams/s each (default 50: 5,000 datagrams/s in all) to coturn's
``turnutils_peer``, which echoes them; the echo comes back through the relay. Every datagram
carries its send time, so the generator measures the round trip through the TURN server
(client -> server -> peer -> server -> client). The same generator also measures the direct round
trip (client -> peer -> client, no TURN) at the same rate: the difference is the latency the server
adds (it is crossed twice per round trip).

Prints one JSON line per server and a summary:
  delivered            echoes received / datagrams sent
  rtt_p50_ms, rtt_p99_ms          round trip through the server
  added_p50_ms, added_p99_ms      the same minus the direct round trip's percentile
  server_cpu_s         CPU seconds the server process used during the measurement
  rss_start_kib, rss_end_kib      the server's resident memory at the start and end of the load
  kernel_rcvbuf_drops  UDP datagrams the kernel dropped on full receive buffers meanwhile (any socket)
  ratio_cpu            p2plab CPU / coturn CPU (the summary line)

Usage: python benchmarks/turn_capacity.py [--sessions 100] [--rate 50] [--duration 20]
The servers run in their own processes on 127.0.0.1; the goal in issue #16 is 100 x 50/s with
under 5 ms added p99 latency and flat memory over 10 minutes (--duration 600).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from p2plab.aio import Driver
from p2plab.stun.message import ChannelData
from p2plab.turn import TurnClient

PAYLOAD = 100


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss


def udp_rcvbuf_errors() -> int:
    """The kernel's count of UDP datagrams dropped because a socket's receive buffer was full
    (all sockets of the machine: /proc/net/snmp, Udp RcvbufErrors)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))["RcvbufErrors"])


def wait_udp(port: int, timeout: float = 30.0) -> None:
    from p2plab.stun.message import StunMessage

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            s.sendto(StunMessage().encode(), ("127.0.0.1", port))
            try:
                s.recvfrom(2048)
                return
            except TimeoutError:
                pass
    raise RuntimeError(f"no server answered on 127.0.0.1:{port}")


def start_p2plab(port: int, sessions: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "p2plab", "turn-server", "--port", str(port), "--user",
                             "alice:secret", "--allow-peer", "127.0.0.0/8", "--max-allocations", str(sessions + 10)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_coturn(port: int, tmp: Path) -> subprocess.Popen:
    conf = tmp / "turnserver.conf"
    conf.write_text(f"""listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port={port}
min-port=49152
max-port=65535
lt-cred-mech
user=alice:secret
realm=p2plab
allow-loopback-peers
no-tcp
no-tls
no-dtls
no-tcp-relay
no-cli
no-multicast-peers
pidfile={tmp / 'turnserver.pid'}
log-file=/dev/null
""")
    return subprocess.Popen(["turnserver", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1] if len(values) > 1 else values[0]


async def set_up(server: tuple[str, int], peer: tuple[str, int], sessions: int) -> list[Driver]:
    drivers = []
    for _ in range(sessions):
        c = TurnClient(server, "alice", "secret")
        d = Driver(c, ("127.0.0.1", 0), keep_events=16)
        await d.start()
        ev = await d.wait_for(("allocated", "error", "timeout"), 20)
        if ev.kind != "allocated":
            raise RuntimeError(f"allocation failed: {ev}")
        d.call(c.channel_bind, peer)
        ev = await d.wait_for(("channel-bound", "error", "timeout"), 20)
        if ev.kind != "channel-bound":
            raise RuntimeError(f"channel bind failed: {ev}")
        drivers.append(d)
    return drivers


async def load(send_fns, rate: float, duration: float, rtts: list[float]) -> int:
    """Send from every session at ``rate``/s for ``duration`` s (staggered); returns datagrams sent."""
    loop = asyncio.get_running_loop()
    n = len(send_fns)
    interval = 1.0 / rate
    start = loop.time() + 0.05
    sent = 0
    next_at = [start + i * interval / n for i in range(n)]
    end = start + duration
    while True:
        now = loop.time()
        if now >= end:
            break
        for i in range(n):
            if next_at[i] <= now:
                send_fns[i](struct.pack("!d", time.perf_counter()).ljust(PAYLOAD, b"\0"))
                next_at[i] += interval
                sent += 1
        await asyncio.sleep(max(0.0, min(next_at) - loop.time()))
    await asyncio.sleep(0.5)  # let the last echoes arrive
    return sent


async def measure_turn(server: tuple[str, int], peer: tuple[str, int], sessions: int, rate: float,
                       duration: float, pid: int) -> dict:
    rtts: list[float] = []
    drivers = await set_up(server, peer, sessions)

    def on_event(ev) -> None:
        if ev.kind == "data":
            rtts.append(time.perf_counter() - struct.unpack_from("!d", ev.payload)[0])

    fns = []
    for d in drivers:
        d.on_event = on_event
        sock = d.sockets[d.local_addr]
        channel = d.protocol.channels[peer]
        fns.append(lambda data, sock=sock, channel=channel: sock.sendto(ChannelData(channel, data).encode(), server))
    cpu0, rss0 = proc_stats(pid)
    drops0 = udp_rcvbuf_errors()
    sent = await load(fns, rate, duration, rtts)
    cpu1, rss1 = proc_stats(pid)
    drops = udp_rcvbuf_errors() - drops0
    for d in drivers:
        d.close()
    return {"sent": sent, "delivered": round(len(rtts) / sent, 5), "rtt_p50_ms": percentile(rtts, 0.5) * 1e3,
            "rtt_p99_ms": percentile(rtts, 0.99) * 1e3, "server_cpu_s": round(cpu1 - cpu0, 2),
            "rss_start_kib": rss0, "rss_end_kib": rss1, "kernel_rcvbuf_drops": drops}


async def measure_direct(peer: tuple[str, int], sessions: int, rate: float, duration: float) -> dict:
    loop = asyncio.get_running_loop()
    rtts: list[float] = []

    class Echoed(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr) -> None:
            rtts.append(time.perf_counter() - struct.unpack_from("!d", data)[0])

    transports = [(await loop.create_datagram_endpoint(Echoed, local_addr=("127.0.0.1", 0)))[0]
                  for _ in range(sessions)]
    fns = [lambda data, t=t: t.sendto(data, peer) for t in transports]
    sent = await load(fns, rate, duration, rtts)
    for t in transports:
        t.close()
    return {"sent": sent, "delivered": round(len(rtts) / sent, 5), "rtt_p50_ms": percentile(rtts, 0.5) * 1e3,
            "rtt_p99_ms": percentile(rtts, 0.99) * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--rate", type=float, default=50.0, help="datagrams per second per session")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load per server")
    ap.add_argument("--servers", default="p2plab,coturn", help="which servers to measure (default both)")
    args = ap.parse_args()
    chosen = [n.strip() for n in args.servers.split(",")]
    if not set(chosen) <= {"p2plab", "coturn"} or not chosen:
        print("error: --servers takes p2plab, coturn or both (comma-separated)", file=sys.stderr)
        return 2
    for tool in ("turnserver", "turnutils_peer"):
        if shutil.which(tool) is None:
            print(f"error: {tool} is missing (apt-get install coturn)", file=sys.stderr)
            return 1
    peer_port = free_port()
    peer_proc = subprocess.Popen(["turnutils_peer", "-p", str(peer_port), "-L", "127.0.0.1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peer = ("127.0.0.1", peer_port)
    results = {}
    try:
        time.sleep(0.3)
        with tempfile.TemporaryDirectory() as tmp:
            starters = {"p2plab": lambda p: start_p2plab(p, args.sessions),
                        "coturn": lambda p: start_coturn(p, Path(tmp))}
            for name in chosen:
                start = starters[name]
                # the direct baseline right before each server: the machine's load changes over time
                direct = asyncio.run(measure_direct(peer, args.sessions, args.rate, args.duration))
                print(json.dumps({"server": f"none (direct, before {name})", "loadavg": os.getloadavg()[0],
                                  **{k: round(v, 3) if isinstance(v, float) else v for k, v in direct.items()}}),
                      flush=True)
                port = free_port()
                proc = start(port)
                try:
                    wait_udp(port)
                    r = asyncio.run(measure_turn(("127.0.0.1", port), peer, args.sessions, args.rate,
                                                 args.duration, proc.pid))
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                r["added_p50_ms"] = r["rtt_p50_ms"] - direct["rtt_p50_ms"]
                r["added_p99_ms"] = r["rtt_p99_ms"] - direct["rtt_p99_ms"]
                results[name] = r
                print(json.dumps({"server": name, "loadavg": os.getloadavg()[0], **{k: round(v, 3) if isinstance(v, float) else v
                                                     for k, v in r.items()}}), flush=True)
    finally:
        peer_proc.kill()
        peer_proc.wait()
    if len(results) < 2:
        return 0
    p, c = results["p2plab"], results["coturn"]
    print(json.dumps({"summary": f"{args.sessions} sessions x {args.rate:g}/s for {args.duration:g} s",
                      "ratio_cpu": round(p["server_cpu_s"] / max(c["server_cpu_s"], 0.01), 2),
                      "p2plab_added_p99_ms": round(p["added_p99_ms"], 3),
                      "coturn_added_p99_ms": round(c["added_p99_ms"], 3),
                      "p2plab_goal_met": p["added_p99_ms"] < 5 and p["delivered"] > 0.999}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
