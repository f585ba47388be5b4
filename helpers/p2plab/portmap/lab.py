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
from ..netns.nftables import TABLE as NAT_TABLE
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
          refuse: tuple[int, int, str] | None = None, upnp_port: int | None = None) -> dict[str, Any]:
    """Serve PCP and NAT-PMP on ``lan_ip``:5351 until ``stop_path`` exists or ``duration`` passes.

    Runs inside the router's namespace (``Lab.start_python``). Returns the server's log, its events
    and the nftables scripts it applied. ``upnp_port``: also be a UPnP Internet Gateway Device
    (``p2plab.portmap.igdserver``): answer SSDP searches on the LAN (239.255.255.250:1900, joined on
    ``lan_ip`` only) and serve the description and SOAP control over HTTP on ``lan_ip:upnp_port``. ``min_lifetime`` defaults to 1 s so a lab can watch a
    mapping expire (RFC 6887 section 15 suggests a 120 s minimum for a real router).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((lan_ip, PORT))
    t0 = time.monotonic()
    server = PortMapServer(external_ip, lan, min_lifetime=min_lifetime, max_lifetime=max_lifetime, refuse=refuse)
    server.start(0.0, (lan_ip, PORT))
    inputs = [sock]
    igd = ssdp = http = None
    if upnp_port is not None:
        from . import upnp as _upnp
        from .igdserver import IgdResponder

        igd = IgdResponder(server, lan_ip, upnp_port)
        ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ssdp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ssdp.bind((_upnp.SSDP_GROUP[0], _upnp.SSDP_GROUP[1]))  # bound to the group: replies leave from lan_ip
        ssdp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(_upnp.SSDP_GROUP[0]) + socket.inet_aton(lan_ip))
        http = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        http.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        http.bind((lan_ip, upnp_port))
        http.listen(8)
        inputs += [ssdp, http]
    _apply(server, wan)
    Path(ready_path).write_text("ready")
    events: list[dict[str, Any]] = []
    scripts: list[str] = []
    end = t0 + duration
    while time.monotonic() < end and not os.path.exists(stop_path):
        now = time.monotonic() - t0
        at = server.next_timer()
        wait = 0.1 if at is None else max(0.0, min(0.1, at - now))
        readable, _, _ = select.select(inputs, [], [], wait)
        now = time.monotonic() - t0
        if sock in readable:
            data, addr = sock.recvfrom(2048)
            server.datagram_received(data, addr, now)
        if ssdp is not None and ssdp in readable:
            data, addr = ssdp.recvfrom(2048)
            if _in_lan(addr[0], lan):
                for answer in igd.ssdp_answers(data):
                    ssdp.sendto(answer, addr)
        if http is not None and http in readable:
            _serve_http(http, igd, lan, time.monotonic() - t0)
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
    for s in (sock, ssdp, http):
        if s is not None:
            s.close()
    subprocess.run([systools.require("nft"), "delete", "table", "ip", PORTMAP_TABLE], capture_output=True)
    return {"log": server.log + (igd.log if igd else []), "events": events, "scripts": scripts,
            "table": server.table()}


def _in_lan(ip: str, lan: str) -> bool:
    import ipaddress

    return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(lan, strict=False)


def _serve_http(listener: socket.socket, igd: Any, lan: str, now: float) -> None:
    """Answer one HTTP connection (one request, then close), only from the LAN."""
    from .igdserver import parse_http_request

    conn, addr = listener.accept()
    try:
        if not _in_lan(addr[0], lan):
            return
        conn.settimeout(2.0)
        data = b""
        while True:
            try:
                if parse_http_request(data) is not None:
                    break
            except ValueError:
                break
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        conn.sendall(igd.http(data, addr[0], now))
    except OSError:
        pass
    finally:
        conn.close()


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
enable_upnp={upnp}
port={http_port}
secure_mode=yes
system_uptime=yes
lease_file={lease}
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d
upnp_table_name={table}
upnp_nat_table_name={table}
{extra}allow 1024-65535 {lan_net} 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
"""
MINIUPNPD_TABLE = "p2plab-miniupnpd"
MINIUPNPD_HTTP_PORT = 5555


def miniupnpd_ruleset(table: str = MINIUPNPD_TABLE) -> str:
    """The nftables table miniupnpd's nftables backend adds its rules to (what Debian's missing
    ``nft_init.sh`` helper would create): its ``miniupnpd`` forward chain and its NAT chains
    ``prerouting_miniupnpd``/``postrouting_miniupnpd``, each jumped to from a base chain that runs
    just before the lab router's own (priorities dstnat - 1, srcnat - 1; the router's forward chain
    already accepts DNATed flows)."""
    return (f"table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n"
            "  chain forward { type filter hook forward priority filter - 1; policy accept; jump miniupnpd; }\n"
            "  chain miniupnpd { }\n"
            "  chain prerouting { type nat hook prerouting priority dstnat - 1; policy accept; "
            "jump prerouting_miniupnpd; }\n"
            "  chain postrouting { type nat hook postrouting priority srcnat - 1; policy accept; "
            "jump postrouting_miniupnpd; }\n"
            "  chain prerouting_miniupnpd { }\n  chain postrouting_miniupnpd { }\n}\n")


STUN_PORT, STUN_ALT_PORT = 3478, 3479


def start_stun(lab: Any, host: str = "server", timeout: float = 10.0) -> tuple[Any, tuple[str, int]]:
    """Run p2plab's RFC 5780 STUN server on lab host ``host`` (its two addresses, ports 3478 and 3479:
    CHANGE-REQUEST answers from the other address and port work). Returns (process, (ip, port))."""
    import selectors
    import sys

    node = lab.topology.nodes[host]
    if len(node.ips) < 2:
        raise ValueError(f"{host} needs two addresses for RFC 5780 (it has {node.ips})")
    ip, alt = node.ips[0], node.ips[1]
    proc = lab.popen(host, [sys.executable, "-m", "p2plab", "stun-server", "--host", ip, "--port", str(STUN_PORT),
                            "--alt-host", alt, "--alt-port", str(STUN_ALT_PORT)])
    sel = selectors.DefaultSelector()
    sel.register(proc.popen.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"listening" not in buf:
        if time.monotonic() > deadline or proc.popen.poll() is not None:
            err = proc.popen.stderr.read().decode(errors="replace") if proc.popen.poll() is not None else ""
            raise RuntimeError(f"the STUN server on {host} did not start: {(buf.decode(errors='replace') + err)[-1500:]}")
        if sel.select(0.1):
            buf += os.read(proc.popen.stdout.fileno(), 65536)
    sel.close()
    return proc, (ip, STUN_PORT)


def start_miniupnpd(lab: Any, nat: str = "nat-a", timeout: float = 10.0, *, upnp: bool = False,
                    stun: tuple[str, int] | None = None) -> Any:
    """Run Debian's ``miniupnpd`` (package miniupnpd-nftables) on lab router ``nat``, NAT-PMP and PCP on
    (and UPnP IGD with ``upnp=True``: SSDP on the LAN, HTTP on port ``MINIUPNPD_HTTP_PORT``).

    Its external address is a documentation address (RFC 5737), which miniupnpd counts as reserved:
    it logs "Reserved / private IP address ... Port forwarding is impossible" and refuses every
    mapping (measured with 2.3.1: NAT-PMP NETWORK_FAILURE, PCP NO_RESOURCES; UPnP: an empty
    external address). ``stun=(ip, port)`` turns on its ``ext_perform_stun``: at start it asks that
    RFC 5780 STUN server (four requests, with and without CHANGE-REQUEST) whether packets reach its
    WAN address unfiltered and unchanged; if they do it takes the mapped address STUN reports as
    its external address - without checking it against its reserved list - and maps ports (the lab
    router's input chain gets one rule letting the STUN server's answers in).
    Its rules go into the nftables table ``MINIUPNPD_TABLE`` (``miniupnpd_ruleset``).
    Returns the ``LabProcess`` once it listens; ``proc.log()`` ends it and returns what it logged.
    """
    import selectors

    node = lab.topology.nodes[nat]
    wan = next(i.name for i in lab.interfaces if i.node == nat and i.label == "wan")
    lan = next(i.name for i in lab.interfaces if i.node == nat and i.label == "lan")
    r = lab.exec(nat, [systools.require("nft"), "-f", "-"], input=miniupnpd_ruleset())
    if r.returncode:
        raise RuntimeError(f"nft refused miniupnpd's table on {nat}: {r.stderr.strip()}")
    if stun:
        # the router's input chain drops unsolicited WAN packets, and the answers to CHANGE-REQUEST come
        # from the STUN server's other address/port: let exactly those in, as the STUN test needs
        owner = next((n for n in lab.topology.nodes.values() if stun[0] in n.ips), None)
        srcs = ", ".join(owner.ips if owner else [stun[0]])
        rule = (f'insert rule ip {NAT_TABLE} input iifname "{wan}" ip saddr {{ {srcs} }} udp sport {{ {int(stun[1])}, '
                f'{STUN_ALT_PORT} }} accept comment "answers to miniupnpd\'s STUN test"\n')
        r = lab.exec(nat, [systools.require("nft"), "-f", "-"], input=rule)
        if r.returncode:
            raise RuntimeError(f"nft refused the STUN rule on {nat}: {r.stderr.strip()}")
    extra = f"ext_perform_stun=yes\next_stun_host={stun[0]}\next_stun_port={int(stun[1])}\n" if stun else ""
    conf = lab.workdir / f"miniupnpd-{nat}.conf"
    conf.write_text(MINIUPNPD_CONF.format(wan=wan, lan=lan, lan_net=node.lan, upnp="yes" if upnp else "no",
                                          http_port=MINIUPNPD_HTTP_PORT, table=MINIUPNPD_TABLE, extra=extra,
                                          lease=lab.workdir / f"miniupnpd-{nat}.leases"))
    # its own pid file: the default one (/run/miniupnpd.pid) may name a live process of another lab
    # (rootless labs number their processes afresh), and miniupnpd would refuse to start
    proc = lab.popen(nat, [systools.require("miniupnpd"), "-f", str(conf), "-d",
                           "-P", str(lab.workdir / f"miniupnpd-{nat}.pid")])
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
