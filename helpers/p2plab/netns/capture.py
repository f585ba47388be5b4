"""Captures and conntrack tables of a running lab, in the formats the simulator produces.

One ``tcpdump -i any -y LINUX_SLL2 --immediate-mode -U -w`` per namespace: the Linux "cooked v2"
header carries the interface index and the direction (outgoing or not), so one process per
namespace records every interface. ``Capture.read`` turns the pcaps into one ``Trace``
(world ``"netns"``) with ``node``/``interface``/``direction`` filled and, like the simulator's
trace, an ``action`` per row: a host's outgoing packets are ``sent`` and incoming ones
``delivered``; a router's incoming packet is paired with the packet it sent on (same payload,
within 50 ms): ``forwarded``, or ``translated`` (both rows, ``pair`` pointing at each other) when
the NAT rewrote addresses or ports; one it never sent on is ``dropped`` with the likely reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LabUnavailableError, TraceError
from ..topology import INTERNET
from . import cleanup

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..trace import Trace
    from .lab import Lab

LINKTYPE_LINUX_SLL2 = 276
PACKET_OUTGOING = 4
PAIR_WINDOW = 0.05


class Capture:
    """tcpdump in every namespace of a lab."""

    def __init__(self, lab: Lab) -> None:
        self.procs: dict[str, subprocess.Popen] = {}
        self.files: dict[str, Path] = {}
        self.ifindex: dict[str, dict[int, str]] = {}
        self.epoch = 0.0
        self.running = False
        self.rootless = False  # set by start(): captured by p2plab's own capturer inside a user namespace
        self.stats: dict[str, str] = {}

    def start(self, lab: Lab, timeout: float = 5.0) -> None:
        from .. import systools
        from . import rootless

        self.rootless = rootless.wanted()
        tcpdump = "" if self.rootless else systools.require("tcpdump")
        self.epoch = time.time()
        for node, ns in lab.namespaces.items():
            path = lab.workdir / f"{node}.pcap"
            self.files[node] = path
            if self.rootless:  # tcpdump cannot drop privileges in a user namespace: p2plab's own capturer
                self.ifindex[node] = _ifindex_of(ns)
                self.procs[node] = subprocess.Popen(
                    rootless.wrap(["ip", "netns", "exec", ns, sys.executable, "-m", "p2plab.netns.pycapture",
                                   str(path)]),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    start_new_session=True)
                continue
            argv = [tcpdump, "-i", "any", "-y", "LINUX_SLL2", "--immediate-mode", "--time-stamp-precision=nano",
                    "-U", "-n", "-s", "65535", "-B", "8192",
                    "-Z", "root", "-w", str(path), "ip and not igmp"]
            with cleanup.in_netns(ns):
                self.ifindex[node] = dict(socket.if_nameindex())
                self.procs[node] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.PIPE)
        self.running = True
        lab._procs.extend(_Proc(node, p) for node, p in self.procs.items())
        cleanup.write_record(lab.id, lab._record())
        # wait for every tcpdump to say "listening on"
        sel = selectors.DefaultSelector()
        for node, p in self.procs.items():
            sel.register(p.stderr, selectors.EVENT_READ, node)
        waiting = set(self.procs)
        bufs = dict.fromkeys(self.procs, b"")
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for key, _ in sel.select(deadline - time.monotonic()):
                node = key.data
                chunk = os.read(key.fileobj.fileno(), 4096)
                bufs[node] += chunk
                if b"listening on" in bufs[node] or not chunk:
                    sel.unregister(key.fileobj)
                    waiting.discard(node)
                    if not chunk:
                        raise LabUnavailableError(f"tcpdump in {node} failed: {bufs[node].decode(errors='replace')}")
        sel.close()
        if waiting:
            raise LabUnavailableError(f"tcpdump did not start in {', '.join(sorted(waiting))} within {timeout} s")

    def stop(self, lab: Lab) -> Trace:
        """Stop every tcpdump cleanly (SIGINT: it flushes and closes the file), then read the trace."""
        if self.running:
            time.sleep(0.05)  # let the last packets reach the files
            for p in self.procs.values():
                with contextlib.suppress(OSError):
                    if self.rootless:  # the capturer runs below nsenter: signal the group
                        os.killpg(p.pid, signal.SIGINT)
                    else:
                        p.send_signal(signal.SIGINT)
            for node, p in self.procs.items():
                try:
                    _, err = p.communicate(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                lines = err.decode(errors="replace").strip().splitlines()
                self.stats[node] = "; ".join(ln for ln in lines if "packets" in ln)
            self.running = False
        return self.read(lab)

    def read(self, lab: Lab) -> Trace:
        return build_trace(lab, self.files, self.ifindex, self.epoch)


class _Proc:
    """Adapter so tcpdump processes are stopped with the lab's other processes."""

    def __init__(self, host: str, popen: subprocess.Popen) -> None:
        self.host, self.popen = host, popen

    @property
    def pid(self) -> int:
        return self.popen.pid


# -- pcap reading ----------------------------------------------------------------------------

def _ifindex_of(ns: str) -> dict[int, str]:
    """Interface index -> name inside namespace ``ns`` (rootless labs: asked through ``ip``)."""
    from . import rootless

    out = subprocess.run(rootless.wrap(["ip", "-n", ns, "-o", "link"]), capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        idx, name = line.split(":", 2)[:2]
        found[int(idx)] = name.strip().split("@")[0]
    return found


def read_sll2(path: Path) -> list[tuple[float, int, bool, bytes]]:
    """(timestamp, ifindex, outgoing, IP bytes) for every packet of a LINUX_SLL2 pcap."""
    data = path.read_bytes()
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise TraceError(f"{path} is not a pcap file (tcpdump -w writes pcap)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(end + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype != LINKTYPE_LINUX_SLL2:
        raise TraceError(f"{path} has link type {linktype}, expected LINUX_SLL2 (276)")
    out, off = [], 24
    div = 1e9 if nano else 1e6
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from(end + "IIII", data, off)
        off += 16
        frame = data[off:off + incl]
        off += incl
        if len(frame) < 20:
            continue
        proto, _, ifindex, _, pkttype = struct.unpack_from("!HHIHB", frame, 0)
        if proto != 0x0800:
            continue
        out.append((sec + frac / div, ifindex, pkttype == PACKET_OUTGOING, frame[20:]))
    return out


def _l4_key(raw: bytes) -> tuple:
    """What stays the same when a router forwards or a NAT translates a packet."""
    ihl = (raw[0] & 0x0F) * 4
    proto = raw[9]
    l4 = raw[ihl:]
    if proto == 17:
        return (proto, l4[8:])
    if proto == 6:
        return (proto, l4[4:14], l4[(l4[12] >> 4) * 4:] if len(l4) >= 13 else b"")
    if proto == 1:
        return (proto, l4[:2])  # a NAT rewrites the header an ICMP error quotes
    return (proto, l4)


ICMP_TYPES = {0: "echo reply", 8: "echo request", 11: "time exceeded"}
ICMP_UNREACH = {0: "net unreachable", 1: "host unreachable", 3: "port unreachable", 13: "administratively prohibited"}


def describe_icmp(raw: bytes) -> str:
    """A few words for an ICMP packet, e.g. 'ICMP port unreachable (for UDP 1.2.3.4:5 > 6.7.8.9:10)'
    (``p2plab.trace.describe_icmp``, so recordings read back with the same words)."""
    from ..trace import describe_icmp as describe

    return describe(raw[(raw[0] & 0x0F) * 4:])


def build_trace(lab: Lab, files: dict[str, Path], ifindex: dict[str, dict[int, str]], epoch: float) -> Trace:
    from ..trace import Trace, _row_from_raw

    labels = {(i.node, i.name): i for i in lab.interfaces}
    items = []  # (ts, seq, node, label, outgoing, raw)
    seq = 0
    for node, path in files.items():
        if not path.exists():
            continue
        names = ifindex.get(node, {})
        for ts, idx, outgoing, raw in read_sll2(path):
            itf = labels.get((node, names.get(idx, "")))
            if itf is None or itf.role == "lan-port":  # loopback, or a bridge port (seen again on 'lan')
                continue
            items.append((ts - epoch, seq, node, itf.label, outgoing, raw))
            seq += 1
    # within one instant, a router's incoming copy comes before what it sends on
    items.sort(key=lambda it: (it[0], it[4], it[1]))
    topo = lab.topology
    rows, packets = [], []
    for ts, _, node, label, outgoing, raw in items:
        row = list(_row_from_raw(ts, node, label, "out" if outgoing else "in", "captured", raw, ""))
        if raw[9] == 1:
            row[8], row[10] = "ICMP", describe_icmp(raw)
        rows.append(row)
        packets.append(raw)
    routers = {INTERNET} | {n.name for n in topo.nats()}
    pending: dict[tuple, list[int]] = {}
    for i, (row, raw) in enumerate(zip(rows, packets)):
        node = row[1]
        if node not in routers:
            row[11] = "sent" if row[3] == "out" else "delivered"
            continue
        key = (node, _l4_key(raw))
        if row[3] == "in":
            pending.setdefault(key, []).append(i)
            continue
        cands = [j for j in pending.get(key, []) if row[0] - rows[j][0] <= PAIR_WINDOW and rows[j][2] != row[2]]
        if not cands:
            row[11] = "sent"
            row[12] = f"sent by {node} itself"
            continue
        j = cands[-1]
        pending[key].remove(j)
        before, after = rows[j], row
        changed = (before[4], before[5], before[6], before[7]) != (after[4], after[5], after[6], after[7])
        action = "translated" if changed else "forwarded"
        before[11] = after[11] = action
        if changed:
            before[14], after[14] = i, j
            before[12] = after[12] = (f"{node} rewrote {before[4]}:{before[5]} > {before[6]}:{before[7]} "
                                      f"as {after[4]}:{after[5]} > {after[6]}:{after[7]}")
    # what routers sent themselves (not forwarded or translated for someone else)
    own_out = {(r[1], r[4], r[5], r[6], r[7]) for r in rows if r[1] in routers and r[3] == "out" and r[11] == "sent"}
    for row, raw in zip(rows, packets):
        if row[11] == "captured":
            local = _to_router_itself(lab, row, own_out)
            row[11], row[12] = ("delivered", local) if local else ("dropped", _drop_reason(lab, row, raw))
    trace = Trace([tuple(r) for r in rows], packets, world="netns",
                  meta={"lab": lab.id, "topology": topo.name, "epoch": epoch,
                        "pcaps": {k: str(v) for k, v in files.items()}})
    return trace


def _to_router_itself(lab: Lab, row: list, own_out: set[tuple]) -> str:
    """Why a packet a router received and never sent on was its own (a program on the router, e.g. a
    port mapping daemon, took it), or '' when nothing in the capture shows that."""
    import ipaddress

    node_name, iface, src, sport, dst, dport = row[1], row[2], row[4], row[5], row[6], row[7]
    if node_name == INTERNET or row[3] != "in" or not sport:
        return ""
    node = lab.topology.nodes[node_name]
    own = set(node.ips) | {node.lan_ip}
    try:
        multicast = ipaddress.IPv4Address(dst).is_multicast
    except ValueError:
        return ""
    if dst not in own and not multicast:
        return ""
    answered = [ip for ip in own if (node_name, ip, dport, src, sport) in own_out]
    if answered and iface == "wan" and not multicast:
        return (f"the answer to {node_name}'s own packet from {dst}:{dport}: its input chain accepts the replies "
                "of flows it started")
    if answered:
        return (f"to a program on {node_name} itself listening on port {dport} ({dst}:{dport}), which answered "
                f"from {answered[0]}:{dport}")
    if iface == "wan" and not multicast and any((node_name, dst, dport) == o[:3] for o in own_out):
        return (f"to a socket {node_name} itself opened ({dst}:{dport}), from {src}:{sport}, to which it never "
                "sent: only an explicit rule in its input chain lets such a packet in (the one for miniupnpd's "
                "STUN test does)")
    return ""


def _drop_reason(lab: Lab, row: list, raw: bytes = b"") -> str:
    node_name, dst, dport, src, sport = row[1], row[6], row[7], row[4], row[5]
    mine = set() if node_name == INTERNET else set(lab.topology.nodes[node_name].ips) | {lab.topology.nodes[node_name].lan_ip}
    if dst.startswith("224.0.0."):
        return ("link-local multicast (224.0.0.0/24, RFC 5771): it is for the hosts on this link, and "
                "routers never forward it")
    if len(raw) > 8 and raw[8] <= 1 and row[3] == "in" and dst not in mine:
        return ("TTL expired in transit: the packet crossed too many routers (this router sends ICMP time "
                "exceeded back to the source)")
    if node_name == INTERNET:
        return f"the core router has no route to {dst} (there is no default route out of the lab)"
    node = lab.topology.nodes[node_name]
    own = set(node.ips) | {node.lan_ip}
    if dst in own:
        if row[2] == "wan" and node.nat.conntrack_clash:
            return (f"unsolicited: no mapping for {dst}:{dport}; the router's own input accepted it from "
                    f"{src}:{sport} and left a conntrack entry behind")
        if row[2] == "wan":
            return (f"unsolicited inbound: no mapping for {dst}:{dport} from {src}:{sport} under "
                    f"{node.nat.filtering} filtering (dropped by {node_name}'s input chain)")
        return f"addressed to {node_name} itself ({dst}:{dport}): no hairpinning, nothing listens there"
    if dst.split(".")[0].isdigit() and 224 <= int(dst.split(".")[0]) <= 239:
        return (f"multicast to {dst}:{dport}: {node_name} does not route multicast, and no program on it "
                "answered")
    if row[2] == "lan" and node.nat.egress_only is not None and len(raw) > 9 and dport not in (None, ""):
        blocked = node.nat.egress_blocked(raw[9], int(dport))  # an egress firewall (e.g. udp-blocked)
        if blocked:
            return blocked
    return f"{node_name} did not forward it (no conntrack mapping admitted it: {node.nat.filtering} filtering)"


# -- conntrack --------------------------------------------------------------------------------

CONNTRACK_COLUMNS = ["proto", "inside", "outside", "remote", "created", "expires", "packets_out", "packets_in",
                     "kind", "state", "timeout"]


def parse_conntrack(text: str) -> list[dict]:
    """Parse ``conntrack -L [-o extended]`` lines into dicts with 'orig' and 'reply' tuples."""
    entries = []
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or "=" not in line:
            continue
        if tokens[0] in ("ipv4", "ipv6"):
            tokens = tokens[2:]
        proto, timeout = tokens[0], int(tokens[2]) if tokens[2].isdigit() else None
        orig: dict[str, str] = {}
        reply: dict[str, str] = {}
        flags, state = [], ""
        cur = orig
        for tok in tokens[3:]:
            if tok.startswith("[") and tok.endswith("]"):
                flags.append(tok.strip("[]"))
            elif "=" in tok:
                k, v = tok.split("=", 1)
                if k == "src" and "src" in cur:
                    cur = reply
                cur.setdefault(k, v)
            elif tok.isupper():
                state = tok
        entries.append({"proto": proto.upper(), "timeout": timeout, "orig": orig, "reply": reply,
                        "flags": flags, "state": state})
    return entries


def conntrack_table(text: str, node, epoch: float) -> pd.DataFrame:
    """A NAT's conntrack entries as a DataFrame with NatTable.table()'s columns (plus kind/state/timeout)."""
    import pandas as pd

    lan = ipaddress.ip_network(node.lan)
    own = set(node.ips) | {node.lan_ip}
    now = time.time() - epoch if epoch else 0.0
    rows = []
    for e in parse_conntrack(text):
        o, r = e["orig"], e["reply"]
        if "src" not in o or "src" not in r or e["proto"] == "UNKNOWN":
            continue
        if "sport" not in o:
            o.setdefault("sport", o.get("id", "0"))
            o.setdefault("dport", o.get("id", "0"))
            r.setdefault("sport", r.get("id", "0"))
            r.setdefault("dport", r.get("id", "0"))
        osrc, odst = f"{o['src']}:{o['sport']}", f"{o['dst']}:{o['dport']}"
        rsrc, rdst = f"{r['src']}:{r['sport']}", f"{r['dst']}:{r['dport']}"
        if ipaddress.ip_address(o["src"]) in lan and rdst != osrc:
            kind, inside, outside, remote = "mapping", osrc, rdst, odst
        elif rsrc != odst and ipaddress.ip_address(r["src"]) in lan:
            kind, inside, outside, remote = "inbound mapping", rsrc, odst, osrc
        elif o["dst"] in own:
            kind, inside, outside, remote = "to the router itself", "", odst, osrc
        elif o["src"] in own:
            kind, inside, outside, remote = "from the router itself", "", osrc, odst
        else:
            kind, inside, outside, remote = "forwarded", osrc, osrc, odst
        rows.append({
            "proto": e["proto"], "inside": inside, "outside": outside, "remote": remote,
            "created": float("nan"),
            "expires": round(now + e["timeout"], 3) if e["timeout"] is not None else float("nan"),
            "packets_out": int(o.get("packets", 0)), "packets_in": int(r.get("packets", 0)),
            "kind": kind, "state": " ".join(x for x in [e["state"], *e["flags"]] if x),
            "timeout": e["timeout"],
        })
    rows.sort(key=lambda x: (x["kind"] != "mapping", x["outside"]))
    return pd.DataFrame(rows, columns=CONNTRACK_COLUMNS)
