"""p2plab's PCP/NAT-PMP server on a real lab router: ``serve`` runs in the router's namespace.

It drives the sans-I/O ``PortMapServer`` on a real UDP socket (the router's LAN address, port
5351) and turns its events into nftables rules (``p2plab.netns.nftables.portmap_ruleset``): a
granted mapping becomes a DNAT rule (anyone -> outside port -> inside endpoint) and an SNAT rule
(the inside endpoint's flows leave from that outside port); when the mapping expires or its client
deletes it, the rules go and the conntrack entries of the mapped flows are flushed.

>>> with Lab(topology.punch("symmetric", "symmetric")) as lab:          # doctest: +SKIP
...     srv = start(lab, "nat-a")
...     lab.exec("alice", ["natpmpc", "-g", "192.168.1.1", "-a", "5000", "5000", "udp", "60"])
...     print(stop(lab, srv)["log"])
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .. import systools
from ..netns.nftables import PORTMAP_TABLE, portmap_ruleset
from .server import PortMapServer

PORT = 5351


def _apply(server: PortMapServer, wan: str) -> str:
    rows = [(m.proto, m.internal[0], m.internal[1], m.external[0], m.external[1]) for m in server.mappings.values()]
    script = portmap_ruleset(rows, wan)
    r = subprocess.run([systools.require("nft"), "-f", "-"], input=script, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"nft refused the port mapping rules: {r.stderr.strip()}\n{script}")
    return script


def _flush_conntrack(proto: int, internal: tuple[str, int]) -> None:
    tool = systools.find("conntrack")
    if tool is None:
        return
    subprocess.run([tool, "-D", "-p", {17: "udp", 6: "tcp"}[proto], "--orig-src", internal[0], "--sport",
                    str(internal[1])], capture_output=True)
    subprocess.run([tool, "-D", "-p", {17: "udp", 6: "tcp"}[proto], "--reply-src", internal[0], "--reply-port-src",
                    str(internal[1])], capture_output=True)


def serve(lan_ip: str, external_ip: str, lan: str, wan: str, *, ready_path: str, stop_path: str,
          duration: float = 60.0, min_lifetime: int = 1, max_lifetime: int = 86400,
          refuse: tuple[int, int, str] | None = None) -> dict[str, Any]:
    """Serve PCP and NAT-PMP on ``lan_ip``:5351 until ``stop_path`` exists or ``duration`` passes.

    Runs inside the router's namespace (``Lab.start_python``). Returns the server's log, its events
    and the nftables scripts it applied. ``min_lifetime`` defaults to 1 s so a lab can watch a
    mapping expire (RFC 6887 section 15 suggests a 120 s minimum for a real router).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((lan_ip, PORT))
    t0 = time.monotonic()
    server = PortMapServer(external_ip, lan, min_lifetime=min_lifetime, max_lifetime=max_lifetime, refuse=refuse)
    server.start(0.0, (lan_ip, PORT))
    _apply(server, wan)
    Path(ready_path).write_text("ready")
    events: list[dict[str, Any]] = []
    scripts: list[str] = []
    end = t0 + duration
    while time.monotonic() < end and not os.path.exists(stop_path):
        now = time.monotonic() - t0
        at = server.next_timer()
        wait = 0.1 if at is None else max(0.0, min(0.1, at - now))
        readable, _, _ = select.select([sock], [], [], wait)
        now = time.monotonic() - t0
        if readable:
            data, addr = sock.recvfrom(2048)
            server.datagram_received(data, addr, now)
        at = server.next_timer()
        if at is not None and at <= now:
            server.handle_timer(now)
        changed = False
        for ev in server.events():
            events.append({"kind": ev.kind, "time": round(ev.time, 4),
                           **{k: (list(v) if isinstance(v, tuple) else v) for k, v in ev.data.items()}})
            if ev.kind in ("mapped", "unmapped"):
                changed = True
            if ev.kind == "unmapped":
                _flush_conntrack(ev.proto, ev.internal)
        if changed:
            scripts.append(_apply(server, wan))
        for data, addr in server.datagrams_to_send():
            sock.sendto(data, addr)
    sock.close()
    subprocess.run([systools.require("nft"), "delete", "table", "ip", PORTMAP_TABLE], capture_output=True)
    return {"log": server.log, "events": events, "scripts": scripts, "table": server.table()}


def start(lab: Any, nat: str = "nat-a", **kwargs: Any) -> Any:
    """Start ``serve`` on lab router ``nat`` and wait until it listens. Returns the ``LabProcess``
    (``stop(lab, proc)`` ends it and returns what it did)."""
    node = lab.topology.nodes[nat]
    wan = next(i.name for i in lab.interfaces if i.node == nat and i.label == "wan")
    n = len(lab._procs)
    ready, stop_file = lab.workdir / f"portmap-ready-{n}", lab.workdir / f"portmap-stop-{n}"
    proc = lab.start_python(nat, serve, node.lan_ip, node.ips[0], node.lan, wan, ready_path=str(ready),
                            stop_path=str(stop_file), **kwargs)
    proc.stop_path = stop_file
    deadline = time.monotonic() + 15
    while not ready.exists():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.result(5)  # raises the server's error
            raise RuntimeError(f"the port mapping server on {nat} did not start")
        time.sleep(0.02)
    return proc


def stop(lab: Any, proc: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Stop a server started with ``start`` and return its log, events and nft scripts."""
    Path(proc.stop_path).write_text("stop")
    return proc.result(timeout)


def request(protocol: str, gateway: str, internal_port: int, *, client_ip: str, lifetime: int = 7200,
            wait: float = 5.0, delete: bool = False, nonce: bytes | None = None) -> dict[str, Any]:
    """Ask ``gateway`` for a mapping with p2plab's client on a real socket (run it on a lab host
    with ``lab.run_python``); ``delete=True`` deletes it again afterwards. Returns the client's events,
    its final state and the external endpoint it got. ``wait``: seconds before giving up."""
    from ..netns.runner import drive
    from .client import PortMapClient

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((client_ip, 0))
    client = PortMapClient(protocol, (gateway, PORT), internal_port, lifetime=lifetime, client_ip=client_ip,
                           initial_rto=0.25, give_up_after=wait, nonce=nonce)
    out = drive(client, sock, time.time(), wait + 1.0, stop_on=("mapped", "failed", "deleted"), linger=0.0)
    out["external"] = list(client.external) if client.external else None
    if delete and client.state == "mapped":
        gone = PortMapClient(protocol, (gateway, PORT), internal_port, lifetime=0, client_ip=client_ip,
                             initial_rto=0.25, give_up_after=wait, nonce=client.nonce)
        more = drive(gone, sock, time.time(), wait + 1.0, stop_on=("deleted", "failed"), linger=0.0)
        out["events"] += more["events"]
        client = gone
    sock.close()
    out["state"] = client.state
    return out


MINIUPNPD_CONF = """ext_ifname={wan}
listening_ip={lan}
enable_natpmp=yes
enable_upnp=no
secure_mode=yes
system_uptime=yes
lease_file={lease}
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d
allow 1024-65535 {lan_net} 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
"""


def start_miniupnpd(lab: Any, nat: str = "nat-a", timeout: float = 10.0) -> Any:
    """Run Debian's ``miniupnpd`` (package miniupnpd-nftables) on lab router ``nat``, NAT-PMP and PCP on.

    Its external address is a documentation address (RFC 5737), which miniupnpd counts as reserved:
    it logs "Reserved / private IP address ... Port forwarding is impossible" and refuses every
    mapping (measured with 2.3.1: NAT-PMP NETWORK_FAILURE, PCP NO_RESOURCES). Returns the
    ``LabProcess`` once it listens; ``proc.log()`` ends it and returns what it logged.
    """
    import selectors

    node = lab.topology.nodes[nat]
    wan = next(i.name for i in lab.interfaces if i.node == nat and i.label == "wan")
    lan = next(i.name for i in lab.interfaces if i.node == nat and i.label == "lan")
    conf = lab.workdir / f"miniupnpd-{nat}.conf"
    conf.write_text(MINIUPNPD_CONF.format(wan=wan, lan=lan, lan_net=node.lan,
                                          lease=lab.workdir / f"miniupnpd-{nat}.leases"))
    proc = lab.popen(nat, [systools.require("miniupnpd"), "-f", str(conf), "-d"])
    sel = selectors.DefaultSelector()
    sel.register(proc.popen.stderr, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"Listening for NAT-PMP/PCP" not in buf:
        if time.monotonic() > deadline or proc.popen.poll() is not None:
            raise RuntimeError(f"miniupnpd on {nat} did not start listening: {buf.decode(errors='replace')[-1500:]}")
        if sel.select(0.1):
            chunk = os.read(proc.popen.stderr.fileno(), 65536)
            buf += chunk

    def log() -> str:
        """What miniupnpd logged so far; then it is stopped (the lab's close removes whatever is left:
        without root, SIGTERM reaches nsenter, not always the daemon inside the user namespace)."""
        nonlocal buf
        quiet_until = time.monotonic() + 0.5
        while time.monotonic() < quiet_until and sel.select(0.1):
            chunk = os.read(proc.popen.stderr.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
        proc.terminate()
        return buf.decode(errors="replace")

    proc.log = log
    return proc
