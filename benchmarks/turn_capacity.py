"""Capacity of a class TURN server: p2plab's turn-server against coturn's turnserver, same run, loopback.

N sessions (default 100), each its own client socket with an allocation and a bound channel, send
ChannelData at R datagrams/s each (default 50: 5,000 datagrams/s in all) to coturn's
``turnutils_peer``, which echoes them; the echo comes back through the relay. Every datagram
carries its send time, so the generator measures the round trip through the TURN server
(client -> server -> peer -> server -> client; the server handles each datagram twice). The same
generator, on other sockets of the same processes, measures the direct round trip (client -> peer
-> client, no TURN) at the same rate: the difference of the two percentiles is the latency the
server adds.

Fair measurement:
* direct and relayed rounds alternate (``--rounds``, default 4 of each): a change in the machine's
  load (other programs) hits both;
* the generator's receive path is the same few lines for both (one ``recvfrom``, strip the 4-byte
  ChannelData header, one subtraction); only STUN answers (refreshes) go through ``TurnClient``;
* the same generator measures coturn: with it coturn's round trip is 0.2-0.4 ms at p99, so the
  generator is not what adds latency. ``--procs N`` splits the sessions over N processes (default:
  the CPUs minus two, at least 1; on 2 cores two generator processes competed with the server and
  made things worse);
* ``--realtime`` (root) runs the servers, the peer and the generator at SCHED_FIFO priority, so on
  a shared machine other jobs cannot delay them: the figures are then the servers' own.

Prints one JSON line per server and a summary:
  delivered                       echoes received / datagrams sent (relayed rounds)
  direct_p50/p95/p99_ms           round trip without TURN
  rtt_p50/p95/p99_ms              round trip through the server
  added_p50/p95/p99_ms            the same minus the direct percentile
  over_5ms_pct, direct_over_5ms_pct   % of round trips over 5 ms (stalls: a process waiting for a CPU)
  relayed_per_s                   datagrams the server relayed per second (both directions)
  server_cpu_pct                  CPU the server used during the relayed rounds (100 = one core)
  rss_start_kib, rss_end_kib      the server's resident memory
  kernel_rcvbuf_drops             UDP datagrams the kernel dropped on full receive buffers (any socket)
  ratio_cpu / ratio_added_p99     p2plab / coturn (the summary line)

Memory over time (``--memory``, p2plab only): the sessions come and go while the load runs. Every
``--churn-every`` seconds ``--churn`` sessions end - most delete their allocation (Refresh
LIFETIME=0), one in five "crashes" (its socket closes without a word, so only expiry can free it)
- and as many new ones allocate. The server (``TurnServer`` on ``p2plab.aio.Driver``, the code
``turn-server`` runs) grants ``--lifetime`` s (default 60, so expiry happens during the run) and
prints a sample every ``--sample`` s: RSS, allocations, permissions, channels, relay sockets. At
the end the remaining sessions close and the run waits one lifetime: allocations and relay sockets
must be back to 0. Reported: RSS at start and end, its least-squares slope (KiB/min) over the
second half of the run, and the counts.

Usage:
  python benchmarks/turn_capacity.py [--sessions 100] [--rate 50] [--duration 20] [--procs 1] [--realtime]
  python benchmarks/turn_capacity.py --servers p2plab --p2plab-path OTHER_CHECKOUT/helpers  (compare)
  python benchmarks/turn_capacity.py --memory --duration 600 [--sample 10]
  python benchmarks/turn_capacity.py --servers p2plab --profile /tmp/server.prof   (cProfile)

Figures (2-core VM shared with other jobs, Python 3.11, coturn 4.6.1, 100 x 50/s, 1 generator
process; medians of 4 runs at normal priority; the table is in docs/instructor-guide.md, "How many
students one TURN server carries"):
  added latency p50 / p95 / p99, server CPU, relayed (both directions), lost
  p2plab before the fast path  0.26 / 0.38 / 0.80 ms   26 % of a core   10,000/s   0
  p2plab                       0.14 / 0.23 / 0.35 ms   14 %             10,000/s   0
  coturn                       0.05 / 0.10 / 0.22 ms    9 %             10,000/s   0
  ratio p2plab / coturn: CPU 1.6 (3.0 before), added p99 1.6
  --realtime: p2plab added p99 0.07 ms (round trip p99 0.26 ms), coturn round trip p99 0.22 ms
  --rate 150 (30,000/s relayed): p2plab 50 % of a core, coturn 25 %, none lost, added p99 0.13 / 0.11 ms
  on a loaded machine (other jobs, load average 1.4-3.8): p2plab added p99 24 and 51 ms in 2 of 7
  runs (a single Python thread waiting for a CPU), coturn round trip p99 0.35 and 3.4 ms.
  --memory --duration 600: RSS 28,104 -> 28,200 KiB, slope 0.0 KiB/min over the second half;
  1,595 allocations (288 of "crashed" clients), allocations and relay sockets back to 0 at the end.
Before the fast path (profiled with --profile): 28 % of the server's busy time re-listed every
relay address after each wake-up (the driver's socket sync, O(allocations)); ChannelData was
decoded into an object and re-encoded. What remains per datagram is mostly the kernel (sendto,
recvfrom) and asyncio's per-wake-up work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from p2plab.aio import Driver
from p2plab.turn import TurnClient, TurnServer
from p2plab.turn.coturn import write_coturn_config

PAYLOAD = 100
RT_PRIORITY = 10  # --realtime: SCHED_FIFO priority of the servers, the peer and the generator
RT: list[str] = []  # the command prefix that runs a program with it (set by --realtime)
SETTLE = 0.4  # s between rounds: the last echoes of a round arrive before the next starts
_STAMP = struct.Struct("!d")


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


def wait_udp(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until a Binding request to 127.0.0.1:``port`` gets an answer."""
    from p2plab.stun.message import StunMessage

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            s.sendto(StunMessage().encode(), ("127.0.0.1", port))
            try:
                s.recvfrom(2048)
                return
            except TimeoutError:
                pass
    raise RuntimeError(f"no server answered on 127.0.0.1:{port}")


def start_p2plab(port: int, sessions: int, profile: str | None = None, path: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=path) if path else None  # another checkout's helpers/
    cmd = [*RT, sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []), "-m", "p2plab",
           "turn-server", "--port", str(port), "--user", "alice:secret", "--allow-peer", "127.0.0.0/8",
           "--max-allocations", str(sessions + 10)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def start_coturn(port: int, tmp: Path) -> subprocess.Popen:
    conf = write_coturn_config(tmp, port, log_file="/dev/null", extra="no-tcp\nno-tls")
    return subprocess.Popen([*RT, "turnserver", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# -- the generator ------------------------------------------------------------------------------
class Session:
    """One client socket: ``send()`` stamps and sends a datagram, echoes land in ``sink``."""

    def __init__(self, sock: socket.socket, dest: tuple[str, int], header: bytes, driver: Driver | None) -> None:
        self.sock, self.dest, self.header, self.driver = sock, dest, header, driver
        self.sink: list[float] = []
        self.sent = 0
        self.strip = len(header)

    def send(self) -> None:
        try:
            self.sock.sendto(self.header + _STAMP.pack(time.perf_counter()).ljust(PAYLOAD, b"\0"), self.dest)
            self.sent += 1
        except OSError:
            pass

    def readable(self) -> None:
        while True:
            try:
                data, src = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            now = time.perf_counter()
            if self.driver is None:
                self.sink.append(now - _STAMP.unpack_from(data)[0])
            elif data and 0x40 <= data[0] <= 0x7F:  # ChannelData: our echo
                self.sink.append(now - _STAMP.unpack_from(data, 4)[0])
            else:  # a STUN answer (refresh, permission): the TURN client handles it
                d = self.driver
                d.protocol.datagram_received(data, (src[0], src[1]), d.now())
                d.poke()


async def turn_session(server: tuple[str, int], peer: tuple[str, int], lifetime: int = 600) -> Session:
    """Allocate, bind a channel to ``peer``, then take the socket's reader over (see Session)."""
    loop = asyncio.get_running_loop()
    for _attempt in range(10):
        c = TurnClient(server, "alice", "secret", lifetime=lifetime)
        d = Driver(c, ("127.0.0.1", 0), keep_events=16)
        await d.start()
        ev = await d.wait_for(("allocated", "error", "timeout"), 20)
        if ev.kind == "allocated":
            break
        d.close()
        # 437: the OS gave us the port of a client that crashed; its allocation still holds that
        # 5-tuple until it expires (RFC 8656 section 7.2 step 2), so try another port
        if not (ev.kind == "error" and ev.code == 437):
            raise RuntimeError(f"allocation failed: {ev}")
    else:
        raise RuntimeError("allocation failed: 10 ports in a row still held by crashed clients' allocations")
    d.call(c.channel_bind, peer)
    ev = await d.wait_for(("channel-bound", "error", "timeout"), 20)
    if ev.kind != "channel-bound":
        d.close()
        raise RuntimeError(f"channel bind failed: {ev}")
    sock = d.sockets[d.local_addr]
    s = Session(sock, server, struct.pack("!HH", c.channels[peer], PAYLOAD), d)
    loop.remove_reader(sock.fileno())
    loop.add_reader(sock.fileno(), s.readable)
    return s


def direct_session(peer: tuple[str, int]) -> Session:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    s = Session(sock, peer, b"", None)
    asyncio.get_running_loop().add_reader(sock.fileno(), s.readable)
    return s


async def pace(sessions: list[Session], rate: float, start: float, duration: float) -> None:
    """Each session sends ``rate``/s from loop time ``start`` for ``duration`` s, staggered."""
    loop = asyncio.get_running_loop()
    n = len(sessions)
    if not n:
        await asyncio.sleep(max(0.0, start + duration - loop.time()))
        return
    interval = 1.0 / rate
    next_at = [start + i * interval / n for i in range(n)]
    end = start + duration
    await asyncio.sleep(max(0.0, start - loop.time()))
    while True:
        now = loop.time()
        if now >= end:
            return
        soonest = end
        for i, s in enumerate(sessions):
            if next_at[i] <= now:
                s.send()
                next_at[i] += interval
            soonest = min(soonest, next_at[i])
        await asyncio.sleep(max(0.0, soonest - loop.time()))


def schedule(rounds: int, round_s: float) -> list[tuple[str, float, float]]:
    """[(kind, offset from the start, duration)]: direct and relayed rounds alternating."""
    out, t = [], 0.0
    for _ in range(rounds):
        for kind in ("direct", "turn"):
            out.append((kind, t, round_s))
            t += round_s + SETTLE
    return out


async def worker_main(server, peer, sessions: int, rate: float, rounds: int, round_s: float, conn) -> None:
    if RT:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    turn = [await turn_session(server, peer) for _ in range(sessions)]
    direct = [direct_session(peer) for _ in range(sessions)]
    conn.send("ready")
    start = conn.recv()  # time.monotonic() of the first round, the same clock as loop.time()
    result = {"direct": [], "turn": [], "direct_sent": 0, "turn_sent": 0}
    for kind, offset, duration in schedule(rounds, round_s):
        group = turn if kind == "turn" else direct
        for s in group:
            s.sink = result[kind]
        before = sum(s.sent for s in group)
        await pace(group, rate, start + offset, duration)
        result[f"{kind}_sent"] += sum(s.sent for s in group) - before
    await asyncio.sleep(SETTLE)
    for s in turn:
        s.driver.close()
    for s in direct:
        asyncio.get_running_loop().remove_reader(s.sock.fileno())
        s.sock.close()
    conn.send(result)


def _worker(*args) -> None:
    asyncio.run(worker_main(*args))


def measure(server: tuple[str, int], peer: tuple[str, int], pid: int, args: argparse.Namespace) -> dict:
    """Run the generator processes against ``server``; the server's CPU is sampled around each
    relayed round."""
    ctx = multiprocessing.get_context("fork")
    shares = [args.sessions // args.procs + (i < args.sessions % args.procs) for i in range(args.procs)]
    pipes, procs = [], []
    round_s = args.duration / args.rounds
    for share in shares:
        mine, theirs = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(server, peer, share, args.rate, args.rounds, round_s, theirs))
        p.start()
        pipes.append(mine)
        procs.append(p)
    for conn in pipes:
        if not conn.poll(120) or conn.recv() != "ready":
            raise RuntimeError("a generator process did not set up its sessions")
    cpu_start, rss0 = proc_stats(pid)
    drops0 = udp_rcvbuf_errors()
    start = time.monotonic() + 0.3
    for conn in pipes:
        conn.send(start)
    cpu = 0.0
    for kind, offset, duration in schedule(args.rounds, round_s):
        if kind != "turn":
            continue
        time.sleep(max(0.0, start + offset - time.monotonic()))
        c0, _ = proc_stats(pid)
        time.sleep(max(0.0, start + offset + duration - time.monotonic()))
        c1, rss1 = proc_stats(pid)
        cpu += c1 - c0
    results = [conn.recv() for conn in pipes]
    for p in procs:
        p.join(10)
    drops = udp_rcvbuf_errors() - drops0
    direct = [x for r in results for x in r["direct"]]
    turn = [x for r in results for x in r["turn"]]
    sent = sum(r["turn_sent"] for r in results)
    relayed_time = args.rounds * round_s
    out = {"sent": sent, "delivered": round(len(turn) / max(sent, 1), 5),
           "direct_delivered": round(len(direct) / max(sum(r["direct_sent"] for r in results), 1), 5)}
    for q in (50, 95, 99):
        d, t = percentile(direct, q / 100) * 1e3, percentile(turn, q / 100) * 1e3
        out[f"direct_p{q}_ms"], out[f"rtt_p{q}_ms"], out[f"added_p{q}_ms"] = d, t, t - d
    out["over_5ms_pct"] = round(100 * sum(1 for x in turn if x > 0.005) / max(len(turn), 1), 3)
    out["direct_over_5ms_pct"] = round(100 * sum(1 for x in direct if x > 0.005) / max(len(direct), 1), 3)
    out.update(relayed_per_s=round(2 * len(turn) / relayed_time), server_cpu_pct=round(100 * cpu / relayed_time, 1),
               server_cpu_s_total=round(proc_stats(pid)[0] - cpu_start, 2), rss_start_kib=rss0, rss_end_kib=rss1,
               kernel_rcvbuf_drops=drops)
    return out


def rounded(d: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def capacity(args: argparse.Namespace, chosen: list[str], peer: tuple[str, int]) -> int:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in chosen:
            port = free_port()
            proc = (start_p2plab(port, args.sessions, args.profile, args.p2plab_path) if name == "p2plab"
                    else start_coturn(port, Path(tmp)))
            try:
                wait_udp(port, proc)
                r = measure(("127.0.0.1", port), peer, proc.pid, args)
            finally:
                stop(proc)
            results[name] = r
            print(json.dumps({"server": name, "loadavg": os.getloadavg()[0], **rounded(r)}), flush=True)
    if len(results) < 2:
        return 0
    p, c = results["p2plab"], results["coturn"]
    print(json.dumps({"summary": f"{args.sessions} sessions x {args.rate:g}/s, {args.rounds} x "
                                 f"{args.duration / args.rounds:g} s relayed, {args.procs} generator processes",
                      "ratio_cpu": round(p["server_cpu_pct"] / max(c["server_cpu_pct"], 0.1), 2),
                      "p2plab_added_p99_ms": round(p["added_p99_ms"], 3),
                      "coturn_added_p99_ms": round(c["added_p99_ms"], 3),
                      "ratio_added_p99": round(p["added_p99_ms"] / max(c["added_p99_ms"], 0.01), 2),
                      "p2plab_goal_met": p["added_p99_ms"] < 5 and p["delivered"] > 0.999}), flush=True)
    return 0


# -- memory over time ------------------------------------------------------------------------------
def serve_sampled(port: int, lifetime: float, every: float, sessions: int) -> int:
    """The server of ``--memory``: TurnServer on the aio Driver, one JSON sample line per ``every`` s."""
    server = TurnServer({"alice": "secret"}, allowed_peers=["127.0.0.0/8"], default_lifetime=lifetime,
                        max_allocations_per_user=sessions * 2 + 10)

    async def main() -> None:
        driver = Driver(server, ("127.0.0.1", port), keep_events=16)
        await driver.start()
        t0 = time.monotonic()
        while True:
            _, rss = proc_stats(os.getpid())
            allocs = list(server.allocations.values())
            print(json.dumps({"t": round(time.monotonic() - t0, 1), "rss_kib": rss, "allocations": len(allocs),
                              "permissions": sum(len(a.permissions) for a in allocs),
                              "channels": sum(len(a.channels) for a in allocs),
                              "relay_sockets": len(driver.sockets) - 1, "reservations": len(server.reservations),
                              "requests": server.stats["requests"]}), flush=True)
            await asyncio.sleep(every)

    with __import__("contextlib").suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


async def churn_load(server, peer, args: argparse.Namespace) -> dict:
    """Keep ``--sessions`` sessions relaying; replace ``--churn`` of them every ``--churn-every`` s."""
    loop = asyncio.get_running_loop()
    rng = random.Random(1)
    lifetime = int(args.lifetime)
    live = [await turn_session(server, peer, lifetime) for _ in range(args.sessions)]
    counts = {"deleted": 0, "crashed": 0, "created": args.sessions}
    interval = 1.0 / args.rate

    def crash(s: Session) -> None:
        d = s.driver
        d._closed = True  # the process "dies": no Refresh LIFETIME=0, no more timers
        if d._timer:
            d._timer.cancel()
        loop.remove_reader(s.sock.fileno())
        s.sock.close()

    end = loop.time() + args.duration
    next_churn = loop.time() + args.churn_every
    next_send = loop.time()
    while loop.time() < end:
        now = loop.time()
        if now >= next_send:
            for s in live:
                s.send()
            next_send += interval
        if now >= next_churn:
            next_churn += args.churn_every
            for s in rng.sample(live, min(args.churn, len(live))):
                live.remove(s)
                if rng.random() < 0.2:
                    crash(s)
                    counts["crashed"] += 1
                else:
                    s.driver.close()  # Refresh LIFETIME=0
                    counts["deleted"] += 1
            while len(live) < args.sessions:
                live.append(await turn_session(server, peer, lifetime))
                counts["created"] += 1
        await asyncio.sleep(max(0.0, min(next_send, next_churn) - loop.time()))
    await asyncio.sleep(0.5)
    counts["echoes_of_live_sessions"] = sum(len(s.sink) for s in live)  # the relay kept relaying
    for s in live:
        s.driver.close()
        counts["deleted"] += 1
    await asyncio.sleep(0.5)
    return counts


def slope_kib_per_min(samples: list[dict]) -> float:
    """Least-squares slope of RSS over time (KiB per minute)."""
    if len(samples) < 2:
        return float("nan")
    ts = [s["t"] for s in samples]
    ys = [s["rss_kib"] for s in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return 60 * sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var if var else float("nan")


def memory(args: argparse.Namespace, peer: tuple[str, int]) -> int:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-sampled", str(port), "--lifetime", str(args.lifetime),
                             "--sample", str(args.sample), "--sessions", str(args.sessions)],
                            stdout=subprocess.PIPE, text=True, bufsize=1)
    samples: list[dict] = []

    def read_samples() -> None:  # a thread: one JSON line per sample
        for line in proc.stdout:
            samples.append(json.loads(line))
            print(json.dumps({"sample": samples[-1]}), flush=True)

    import threading

    threading.Thread(target=read_samples, daemon=True).start()
    try:
        wait_udp(port, proc)
        result = asyncio.run(churn_load(("127.0.0.1", port), peer, args))
        under_load = list(samples)
        time.sleep(args.lifetime + 2 * args.sample + 5)  # the crashed sessions' allocations expire
    finally:
        stop(proc)
    half = [s for s in under_load if s["t"] >= under_load[-1]["t"] / 2] if under_load else []
    final = samples[-1] if samples else {}
    print(json.dumps({"summary": f"memory: {args.sessions} sessions x {args.rate:g}/s for {args.duration:g} s, "
                                 f"{args.churn} replaced every {args.churn_every:g} s, lifetime {args.lifetime:g} s",
                      **result, "rss_start_kib": under_load[0]["rss_kib"] if under_load else None,
                      "rss_end_kib": under_load[-1]["rss_kib"] if under_load else None,
                      "rss_max_kib": max((s["rss_kib"] for s in samples), default=None),
                      "slope_kib_per_min_second_half": round(slope_kib_per_min(half), 1),
                      "slope_kib_per_min_all": round(slope_kib_per_min(under_load), 1),
                      "allocations_left_to_expire": max((s["allocations"] for s in samples[len(under_load) + 1:]),
                                                        default=None),
                      "allocations_at_end": final.get("allocations"), "relay_sockets_at_end": final.get("relay_sockets"),
                      "permissions_at_end": final.get("permissions"),
                      "freed": final.get("allocations") == 0 and final.get("relay_sockets") == 0}), flush=True)
    return 0 if final.get("allocations") == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--rate", type=float, default=50.0, help="datagrams per second per session")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of relayed load per server")
    ap.add_argument("--rounds", type=int, default=4, help="direct/relayed rounds the duration is split into")
    ap.add_argument("--procs", type=int, default=max(1, min(4, (os.cpu_count() or 2) - 2)),
                    help="generator processes (default: the CPUs minus two, for the server and the peer; "
                         "at least 1)")
    ap.add_argument("--servers", default="p2plab,coturn", help="which servers to measure (default both)")
    ap.add_argument("--profile", metavar="FILE", help="run p2plab's server under cProfile, stats to FILE")
    ap.add_argument("--realtime", action="store_true",
                    help="run servers, peer and generator with SCHED_FIFO priority (root): other jobs on a "
                         "shared machine cannot delay them, so the figures show the servers themselves")
    ap.add_argument("--p2plab-path", metavar="DIR",
                    help="run p2plab's server from another checkout's helpers/ directory (compare versions)")
    ap.add_argument("--memory", action="store_true", help="memory over time with sessions coming and going")
    ap.add_argument("--sample", type=float, default=10.0, help="--memory: seconds between samples")
    ap.add_argument("--lifetime", type=float, default=60.0, help="--memory: allocation lifetime the server grants")
    ap.add_argument("--churn", type=int, default=5, help="--memory: sessions replaced each time")
    ap.add_argument("--churn-every", type=float, default=2.0, help="--memory: seconds between replacements")
    ap.add_argument("--serve-sampled", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_sampled is not None:
        return serve_sampled(args.serve_sampled, args.lifetime, args.sample, args.sessions)
    chosen = [n.strip() for n in args.servers.split(",")]
    if not set(chosen) <= {"p2plab", "coturn"} or not chosen:
        print("error: --servers takes p2plab, coturn or both (comma-separated)", file=sys.stderr)
        return 2
    if args.sessions < 1 or args.rate <= 0 or args.duration <= 0 or args.rounds < 1 or args.procs < 1:
        print("error: --sessions, --rate, --duration, --rounds and --procs must be positive", file=sys.stderr)
        return 2
    tools = ["turnutils_peer"] + (["turnserver"] if "coturn" in chosen and not args.memory else [])
    for tool in tools:
        if shutil.which(tool) is None:
            print(f"error: {tool} is missing (apt-get install coturn)", file=sys.stderr)
            return 1
    peer_port = free_port()
    if args.realtime:
        if shutil.which("chrt") is None or os.geteuid() != 0:
            print("error: --realtime needs root and chrt (util-linux)", file=sys.stderr)
            return 2
        RT[:] = ["chrt", "-f", str(RT_PRIORITY)]
    peer_proc = subprocess.Popen([*RT, "turnutils_peer", "-p", str(peer_port), "-L", "127.0.0.1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        peer = ("127.0.0.1", peer_port)
        return memory(args, peer) if args.memory else capacity(args, chosen, peer)
    finally:
        peer_proc.kill()
        peer_proc.wait()


if __name__ == "__main__":
    sys.exit(main())
