"""A real TCP hole punch in the Linux lab: ``run_tcp_punch(nat_a, nat_b)``.

The kernel's own TCP does the work, inside the lab's alice, bob and server namespaces, through
kernel NATs built from the presets. The programs speak the same lines as the simulator's
(``p2plab.tcp``: ``REGISTER``, ``PEER``, ``HELLO``):

* ``tcp_rendezvous`` (on server) accepts both peers, notes the public endpoint each connection came
  from and sends each the other's.
* ``tcp_peer`` (on alice and bob) binds every socket to port 5000 with ``SO_REUSEADDR`` and
  ``SO_REUSEPORT``: with ``listen=True`` a listening socket, the connection to the server, then a
  non-blocking ``connect()`` to the other peer's public endpoint. Whichever completes first - its
  own ``connect()`` (a SYN-ACK, or a simultaneous open) or a connection its listener accepts from
  the peer's address - carries a ``HELLO`` each way, which proves the direct path works.
"""

from __future__ import annotations

import time
from typing import Any

from ..nat import NatBehavior, preset
from ..tcp import PEER_PORT, RENDEZVOUS_PORT, TcpPunchResult
from ..topology import SERVER_IP, Topology
from ..topology import punch as punch_topology


def _reusable(port: int, ip: str = "0.0.0.0"):
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((ip, port))
    return s


def _read_line(sock, deadline: float) -> bytes:
    """One newline-terminated line from a blocking socket, or b'' at the deadline / on close."""

    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return b""
        sock.settimeout(left)
        try:
            chunk = sock.recv(1)
        except (TimeoutError, OSError):
            return b""
        if not chunk:
            return b""
        buf += chunk
    return buf


def tcp_rendezvous(port: int = RENDEZVOUS_PORT, duration: float = 10.0, epoch: float = 0.0) -> dict[str, Any]:
    """Run on the server: introduce two peers to each other; returns the endpoints it saw."""
    import select

    from ..tcp import decode, encode

    lst = _reusable(port)
    lst.listen(8)
    end = time.monotonic() + duration
    conns: dict[Any, bytes] = {}
    seen: dict[str, tuple[str, int]] = {}
    wants: dict[str, str] = {}
    by_name: dict[str, Any] = {}
    introduced = False
    while time.monotonic() < end and not introduced:
        ready, _, _ = select.select([lst, *conns], [], [], max(0.0, end - time.monotonic()))
        for s in ready:
            if s is lst:
                c, _ = lst.accept()
                conns[c] = b""
                continue
            data = s.recv(4096)
            if not data:
                conns.pop(s)
                continue
            conns[s] += data
            while b"\n" in conns[s]:
                line, conns[s] = conns[s].split(b"\n", 1)
                kind, fields = decode(line + b"\n")
                if kind == "REGISTER" and len(fields) == 2:
                    name, peer = fields
                    seen[name], wants[name], by_name[name] = s.getpeername(), peer, s
                    if peer in seen and wants.get(peer) == name:
                        by_name[name].sendall(encode("PEER", peer, f"{seen[peer][0]}:{seen[peer][1]}"))
                        by_name[peer].sendall(encode("PEER", name, f"{seen[name][0]}:{seen[name][1]}"))
                        introduced = True
    time.sleep(0.2)
    for c in conns:
        c.close()
    lst.close()
    return {"seen": {k: list(v) for k, v in seen.items()}, "introduced": introduced}


def tcp_peer(name: str, peer: str, server: list | tuple, port: int = PEER_PORT, listen: bool = True,
             delay: float = 0.0, give_up_after: float = 3.0, epoch: float = 0.0) -> dict[str, Any]:
    """Run on alice or bob: register with the server, then punch; returns events and the outcome."""
    import errno
    import os
    import select
    import socket

    from ..tcp import decode, encode, parse_endpoint

    events: list[list] = []

    def now() -> float:
        return round(time.time() - epoch, 4)

    def note(text: str) -> None:
        events.append([now(), text])

    out: dict[str, Any] = {"name": name, "events": events, "direct": False, "how": None, "punch_started": None,
                           "connected": None, "peer_endpoint": None}
    keep = []
    lst = None
    if listen:
        lst = _reusable(port)
        lst.listen(8)
        lst.setblocking(False)
        note(f"listening on port {port} (SO_REUSEADDR/SO_REUSEPORT)")
    deadline = time.monotonic() + 10.0
    while True:  # the server may still be starting: retry on ECONNREFUSED
        srv = _reusable(port)
        try:
            srv.connect((server[0], int(server[1])))
            break
        except ConnectionRefusedError:
            srv.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    keep.append(srv)
    srv.sendall(encode("REGISTER", name, peer))
    line = _read_line(srv, time.monotonic() + 10.0)
    if not line:
        out["error"] = "the server never introduced the peer"
        return out
    kind, fields = decode(line)
    peer_ep = parse_endpoint(fields[1])
    out["peer_endpoint"] = list(peer_ep)
    note(f"the server says {peer} is at {fields[1]}")
    if delay:
        time.sleep(delay)
    direct = None
    out["punch_started"] = now()
    conn = _reusable(port)
    conn.setblocking(False)
    err = conn.connect_ex(peer_ep)
    if err in (0, errno.EINPROGRESS):
        note(f"connect() from port {port} to {fields[1]}: SYN sent")
    else:
        note(f"connect() to {fields[1]} failed at once: {os.strerror(err)}")
        conn.close()
        conn = None
    end = time.monotonic() + give_up_after
    while direct is None and time.monotonic() < end:
        rd = [lst] if lst is not None else []
        wr = [conn] if conn is not None else []
        if not rd and not wr:
            break
        r, w, _ = select.select(rd, wr, [], max(0.0, end - time.monotonic()))
        if conn is not None and conn in w:
            err = conn.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                direct, out["how"] = conn, "connect"
                note(f"ESTABLISHED: connect() to {fields[1]} completed")
            else:
                note(f"connect() to {fields[1]} failed: {os.strerror(err)}")
                conn.close()
                conn = None
        if direct is None and lst is not None and lst in r:
            c, addr = lst.accept()
            if addr[0] == peer_ep[0]:
                direct, out["how"] = c, "accept"
                note(f"ESTABLISHED: the listening socket accepted {peer}'s connection from {addr[0]}:{addr[1]}")
            else:
                note(f"the listener accepted {addr[0]}:{addr[1]}, which is not {peer}")
                c.close()
    if direct is None:
        if conn is not None:
            note(f"connect() to {fields[1]}: no answer to its SYNs within {give_up_after:g} s")
        out["error"] = "no direct connection"
    else:
        out["connected"] = now()
        direct.setblocking(True)
        out["local"], out["remote"] = list(direct.getsockname()), list(direct.getpeername())
        direct.sendall(encode("HELLO", name))
        hello = _read_line(direct, time.monotonic() + 3.0)
        out["hello"] = hello.decode(errors="replace").strip()
        ok = hello and decode(hello) == ("HELLO", [peer])
        out["direct"] = bool(ok)
        note(f"got {out['hello']!r} over the direct connection" if ok else "no HELLO from the peer")
        time.sleep(0.2)
        direct.close()
    for s in [conn, lst, *keep]:
        if s is not None and s is not direct:
            s.close()
    return out


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def run_tcp_punch(nat_a: str | NatBehavior = "port-restricted-cone", nat_b: str | NatBehavior = "port-restricted-cone",
                  *, listen: bool = True, bob_delay: float = 0.0, give_up_after: float = 3.0, capture: bool = False,
                  topology: Topology | None = None) -> TcpPunchResult:
    """Punch a TCP connection between alice and bob through real kernel NATs (world ``"netns"``).

    The same arguments and result as the simulator's ``p2plab.scenarios.tcp.run_tcp_punch``;
    ``give_up_after`` (seconds) bounds each peer's wait for a direct connection (Linux resends an
    unanswered SYN after 1 s, then 3 s after the first). ``capture=True`` keeps a ``Trace`` of every
    packet (needs tcpdump) and counts the segments the peers sent each other.
    """
    from .lab import Lab

    a, b = preset(nat_a), preset(nat_b)
    topo = topology or punch_topology(a, b)
    duration = 10.0 + bob_delay + give_up_after
    with Lab(topo, capture=capture) as lab:
        epoch = lab.epoch or time.time()
        srv = lab.start_python("server", tcp_rendezvous, RENDEZVOUS_PORT, duration, epoch)
        procs = {
            name: lab.start_python(name, tcp_peer, name, other, [SERVER_IP, RENDEZVOUS_PORT], PEER_PORT, listen,
                                   delay, give_up_after, epoch)
            for name, other, delay in (("alice", "bob", 0.0), ("bob", "alice", bob_delay))
        }
        res = {name: p.result(duration + 10) for name, p in procs.items()}
        seen = srv.result(duration + 10)
        conntrack = {}
        for n in topo.nats():
            try:
                conntrack[n.name] = lab.conntrack(n.name)
            except Exception:  # noqa: BLE001 - conntrack only explains; its absence changes nothing
                pass
        trace = lab.trace() if capture else None
    return _result(res, seen, conntrack, trace, _name(nat_a), _name(nat_b), listen)


def _result(res: dict, seen: dict, conntrack: dict, trace, nat_a: str, nat_b: str, listen: bool) -> TcpPunchResult:
    direct = all(r["direct"] for r in res.values())
    how = {n: r["how"] if r["direct"] else None for n, r in res.items()}
    packets = None
    if trace is not None and len(trace):
        df = trace.df
        packets = int(((df["protocol"] == "TCP") & (df["action"] == "sent") & df["node"].isin(["alice", "bob"])
                       & (df["dst"] != SERVER_IP)).sum())
    t = None
    if direct:
        starts = [r["punch_started"] for r in res.values() if r["punch_started"] is not None]
        t = max(r["connected"] for r in res.values()) - min(starts)
        acceptor = next((n for n, h in how.items() if h == "accept"), None)
        if acceptor:
            caller = "bob" if acceptor == "alice" else "alice"
            ep = res[acceptor]["remote"]
            reason = (f"{acceptor}'s listening socket accepted {caller}'s connection from {ep[0]}:{ep[1]} "
                      f"(the kernel NAT in front of {acceptor} let the SYN in) and {caller}'s connect() "
                      "completed; HELLO went both ways")
        else:
            reason = (f"both connect() sockets completed on the same 4-tuple "
                      f"({res['alice']['local'][1]} <-> {res['alice']['remote'][0]}:{res['alice']['remote'][1]}): "
                      "the SYNs crossed or one was answered; HELLO went both ways")
    else:
        parts = []
        for me, other, nat in (("alice", "bob", "nat-a"), ("bob", "alice", "nat-b")):
            df = conntrack.get(nat)
            if df is None or df.empty:
                continue
            mine = df[(df["kind"] == "mapping") & df["inside"].str.endswith(f":{PEER_PORT}") & (df["proto"].str.upper() == "TCP")]
            to_server = set(mine.loc[mine["remote"].str.endswith(f":{RENDEZVOUS_PORT}"), "outside"])
            to_peer = set(mine.loc[~mine["remote"].str.endswith(f":{RENDEZVOUS_PORT}"), "outside"])
            if to_server and to_peer - to_server:
                parts.append(f"{nat} gave {me} {', '.join(sorted(to_server))} toward the server but "
                             f"{', '.join(sorted(to_peer - to_server))} toward {other}, so {other}'s SYNs went "
                             f"to a port {me} never sent from")
        for n, r in res.items():
            parts.append(f"{n}: {r['events'][-1][1] if r['events'] else r.get('error', 'failed')}")
        reason = "no direct path. " + " | ".join(parts)
    ev = {n: [(float(t_), str(e)) for t_, e in r["events"]] for n, r in res.items()}
    out = TcpPunchResult(nat_a, nat_b, direct, ev["alice"], ev["bob"], reason, trace, how, packets, t,
                         "listen+connect" if listen else "connect", "netns")
    out.details = {"server_saw": seen.get("seen", {}), "peers": res, "conntrack": conntrack}
    return out
