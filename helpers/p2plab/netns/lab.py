"""``Lab``: a ``Topology`` built as real Linux network namespaces with nftables NAT routers.

::

    from p2plab import topology
    from p2plab.netns import Lab

    with Lab(topology.punch("port-restricted-cone", "symmetric"), capture=True) as lab:
        lab.exec("alice", ["ping", "-c1", "192.0.2.1"])
        print(lab.conntrack("nat-a"))
    trace = lab.trace()          # every packet at every interface, as a p2plab Trace (world="netns")

Layout: one namespace per node plus a core router ``internet``. A node behind the internet gets
its public address(es) as /32 on ``eth0`` (``wan`` for a NAT) and a default route to the core
(169.254.0.1, the same link-local address on every core port). The core routes only to those
/32 addresses and has **no default route**, so nothing can leave the lab. A NAT's inside network
is a bridge (``lan``) holding the NAT's LAN address; hosts behind it default-route to that address.
No namespace has a link to the root namespace: both ends of every veth are created directly
inside lab namespaces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import systools
from ..errors import LabUnavailableError, TopologyError
from ..topology import INTERNET, Topology
from . import cleanup, nftables, rootless

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..trace import Trace

CORE_GW = "169.254.0.1"
_netem_ok: bool | None = None


@dataclass
class Interface:
    node: str
    name: str  # the kernel's name inside the node's namespace
    label: str  # what traces and tables call it: eth0, wan, lan, to-<node>
    role: str  # uplink | downlink | lan | lan-port
    addresses: list[str] = field(default_factory=list)
    peer: str = ""


@dataclass
class LabProcess:
    """A process running in a lab namespace (``Lab.popen``/``Lab.start_python``)."""

    host: str
    popen: subprocess.Popen
    result_path: Path | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def result(self, timeout: float | None = 60.0) -> Any:
        """Wait for a Python target to finish and return its return value (re-raising its exception)."""
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            out, err = self.popen.communicate()
            raise TimeoutError(f"the Python code on {self.host} did not finish within {timeout} s") from None
        self.stdout = out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
        self.stderr = err.decode(errors="replace") if isinstance(err, bytes) else (err or "")
        if self.result_path is None:
            return self.popen.returncode
        if not self.result_path.exists() or self.result_path.stat().st_size == 0:
            raise RuntimeError(f"the Python process on {self.host} died (exit code {self.popen.returncode}) "
                               f"without a result. Its stderr:\n{self.stderr[-2000:]}")
        ok, value = pickle.loads(self.result_path.read_bytes())
        if ok:
            return value
        exc, tb = value
        with contextlib.suppress(AttributeError):
            exc.add_note(f"(raised on lab host {self.host!r})\n{tb}")
        raise exc

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()


class Lab:
    """A topology built as real network namespaces. Use it as a context manager, or ``start()``/``close()``.

    ``capture=True`` starts tcpdump in every namespace before you send anything; ``lab.trace()``
    stops it and returns a ``Trace``. ``approximate=True`` builds the nearest Linux NAT for
    behaviours nftables cannot express instead of raising ``LabUnavailableError``. The pcaps live in
    a temporary folder removed on close; pass ``workdir=`` to keep them. ``keep=True`` (used by
    ``lab up``) leaves the lab running when this process exits.
    """

    def __init__(self, topology: Topology, *, capture: bool = False, approximate: bool = False,
                 emulate_links: bool = True, workdir: str | Path | None = None, keep: bool = False) -> None:
        if not isinstance(topology, Topology):
            raise TopologyError(f"Lab needs a p2plab.topology.Topology, e.g. topology.punch(); got {topology!r}")
        self.topology = topology
        self.capture_on_start = capture
        self.approximate = approximate
        self.emulate_links = emulate_links
        self.keep = keep
        self.notes: list[str] = []
        for n in topology.nats():
            self.notes += nftables.check_expressible(n.nat, approximate)
        self.id = ""
        self.namespaces: dict[str, str] = {}
        self.interfaces: list[Interface] = []
        self.started = False
        self.closed = False
        self._user_workdir = Path(workdir) if workdir else None
        self.workdir: Path | None = None
        self._procs: list[LabProcess] = []
        self._capture = None
        self._trace: Trace | None = None
        self.timings: dict[str, float] = {}
        self.epoch = 0.0

    # -- names ------------------------------------------------------------------------
    def ns(self, node: str) -> str:
        """The namespace name of ``node`` (``internet`` is the core router)."""
        try:
            return self.namespaces[node]
        except KeyError:
            known = ", ".join(self.namespaces) or "(the lab is not started)"
            raise TopologyError(f"there is no node {node!r} in this lab; the nodes are: {known}") from None

    def _record(self) -> dict:
        return {
            "id": self.id, "owner_pid": os.getpid(), "owner_start": cleanup.proc_start_time(os.getpid()),
            "keep": self.keep, "topology": self.topology.name, "namespaces": list(self.namespaces.values()),
            "nodes": self.namespaces, "workdir": str(self.workdir) if self.workdir else None,
            "remove_workdir": self._user_workdir is None, "created": time.time(),
            "pids": [[p.pid, cleanup.proc_start_time(p.pid)] for p in self._procs],
            "addresses": {n.name: n.ips for n in self.topology.nodes.values()},
        }

    # -- bring-up -----------------------------------------------------------------------
    def start(self) -> Lab:
        if self.started:
            return self
        ok, why = available(quick=True)
        if not ok:
            raise LabUnavailableError(why)
        t0 = time.perf_counter()
        cleanup.sweep()
        self.timings["sweep"] = time.perf_counter() - t0
        for _ in range(100):
            lab_id = secrets.token_hex(2)
            if cleanup.lab_namespaces(lab_id):
                continue
            self.id = lab_id
            self.namespaces = {name: f"p2plab-{lab_id}-{name}" for name in [INTERNET, *self.topology.nodes]}
            if self._user_workdir:
                self.workdir = self._user_workdir
                self.workdir.mkdir(parents=True, exist_ok=True)
            else:
                self.workdir = Path(tempfile.mkdtemp(prefix=f"p2plab-{lab_id}-"))
            if cleanup.claim_id(lab_id, self._record()):
                break
            if self._user_workdir is None:
                shutil.rmtree(self.workdir, ignore_errors=True)
        else:  # pragma: no cover
            raise LabUnavailableError("could not find a free lab id in /run/p2plab")
        self.started = True
        if not self.keep:
            cleanup.register_live(self)
        try:
            self._build()
            self.timings["up"] = time.perf_counter() - t0
            if self.capture_on_start:
                self.start_capture()
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _plan(self) -> tuple[list[str], dict[str, list[str]], dict[str, dict[str, str]], dict[str, str]]:
        """Root batch lines, per-namespace batch lines, sysctls, nft scripts."""
        topo, lid = self.topology, self.id
        nodes = list(topo.nodes.values())
        if len(nodes) > 99:
            raise TopologyError("the real lab builds at most 99 nodes (interface names are limited to 15 characters)")
        root = [f"netns add {ns}" for ns in self.namespaces.values()]
        per_ns: dict[str, list[str]] = {ns: ["link set lo up"] for ns in self.namespaces.values()}
        sysctl: dict[str, dict[str, str]] = {ns: {"net/ipv6/conf/all/disable_ipv6": "1",
                                                   "net/ipv6/conf/default/disable_ipv6": "1"}
                                              for ns in self.namespaces.values()}
        nft: dict[str, str] = {}
        core = self.namespaces[INTERNET]
        sysctl[core]["net/ipv4/ip_forward"] = "1"
        self.interfaces = []
        bridges: dict[str, str] = {}
        for i, node in enumerate(nodes, start=1):
            ns = self.namespaces[node.name]
            up, down = f"p2plab-{lid}-{i}u", f"p2plab-{lid}-{i}d"
            parent_ns = self.namespaces[node.behind]
            root.append(f"link add {up} netns {ns} type veth peer name {down} netns {parent_ns}")
            label = "wan" if node.kind == "nat" else "eth0"
            cmds = per_ns[ns]
            if node.behind == INTERNET:
                addrs = [f"{ip}/32" for ip in node.ips]
                cmds += [f"addr add {a} dev {up}" for a in addrs]
                cmds += [f"link set {up} up", f"route add {CORE_GW}/32 dev {up} scope link",
                         f"route add default via {CORE_GW} dev {up}"]
                per_ns[core] += [f"addr add {CORE_GW}/32 dev {down}", f"link set {down} up"]
                per_ns[core] += [f"route add {ip}/32 dev {down}" for ip in node.ips]
                self.interfaces.append(Interface(INTERNET, down, f"to-{node.name}", "downlink", [CORE_GW], up))
            else:
                parent = topo.nodes[node.behind]
                plen = ipaddress.ip_network(parent.lan).prefixlen
                addrs = [f"{ip}/{plen}" for ip in node.ips]
                cmds += [f"addr add {a} dev {up}" for a in addrs]
                cmds += [f"link set {up} up", f"route add default via {parent.lan_ip} dev {up}"]
                per_ns[parent_ns] += [f"link set {down} master {bridges[parent.name]}", f"link set {down} up"]
                self.interfaces.append(Interface(parent.name, down, f"lan-port-{node.name}", "lan-port", [], up))
            self.interfaces.append(Interface(node.name, up, label, "uplink", [a.split("/")[0] for a in addrs], down))
            if node.kind == "nat":
                br = f"p2plab-{lid}-{i}l"
                bridges[node.name] = br
                plen = ipaddress.ip_network(node.lan).prefixlen
                cmds += [f"link add {br} type bridge forward_delay 0 stp_state 0 mcast_snooping 0",
                         f"addr add {node.lan_ip}/{plen} dev {br}", f"link set {br} up"]
                self.interfaces.append(Interface(node.name, br, "lan", "lan", [node.lan_ip]))
                sysctl[ns]["net/ipv4/ip_forward"] = "1"
                sysctl[ns].update(nftables.sysctls(node.nat))
                nat = node.nat
                if self.approximate:
                    nat = _approximate(nat)
                nft[ns] = nftables.nat_ruleset(nat, up, br, node.ips, node.lan)
        # bridges must exist before ports join them: put bridge creation first in each NAT's batch
        for ns, cmds in per_ns.items():
            first = [c for c in cmds if c.startswith("link add")]
            per_ns[ns] = first + [c for c in cmds if not c.startswith("link add")]
        return root, per_ns, sysctl, nft

    def _build(self) -> None:
        t = time.perf_counter()
        root, per_ns, sysctl, nft = self._plan()
        n_ns = len(self.namespaces)
        _ip_batch(root[:n_ns])
        for ns, values in sysctl.items():
            _write_sysctls(ns, values)
        _ip_batch(root[n_ns:])
        self.timings["namespaces+links"] = time.perf_counter() - t
        t = time.perf_counter()
        procs = [(ns, subprocess.Popen(rootless.wrap(["ip", "-n", ns, "-batch", "-"]), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE))
                 for ns in per_ns]
        procs += [(ns, subprocess.Popen(rootless.wrap(["ip", "netns", "exec", ns, systools.require("nft"), "-f", "-"]), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
                  for ns in nft]
        scripts = {**{id(p): "\n".join(per_ns[ns]) + "\n" for ns, p in procs[:len(per_ns)]},
                   **{id(p): nft[ns] for ns, p in procs[len(per_ns):]}}
        errors = []
        for ns, p in procs:
            _, err = p.communicate(scripts[id(p)].encode())
            if p.returncode:
                errors.append(f"{ns}: {err.decode(errors='replace').strip()}")
        if errors:
            raise LabUnavailableError("building the lab failed: " + "; ".join(errors))
        self.timings["addresses+routes+nft"] = time.perf_counter() - t
        if self.emulate_links:
            t = time.perf_counter()
            self._netem()
            self.timings["netem"] = time.perf_counter() - t

    def _netem(self) -> None:
        global _netem_ok
        if _netem_ok is False:
            self.notes.append("latency/jitter/loss not emulated: this kernel has no sch_netem qdisc")
            return
        lines: dict[str, list[str]] = {}
        for node in self.topology.nodes.values():
            if not (node.latency or node.jitter or node.loss):
                continue
            spec = f"delay {node.latency * 1000:.3f}ms"
            if node.jitter:
                spec += f" {node.jitter * 1000:.3f}ms"
            if node.loss:
                spec += f" loss {node.loss * 100:.4f}%"
            for itf in self.interfaces:
                if itf.node == node.name and itf.role == "uplink":
                    lines.setdefault(self.ns(node.name), []).append(f"qdisc add dev {itf.name} root netem {spec}")
                    lines.setdefault(self.ns(node.behind), []).append(f"qdisc add dev {itf.peer} root netem {spec}")
        for ns, cmds in lines.items():
            r = subprocess.run(rootless.wrap(["tc", "-n", ns, "-batch", "-"]), input="\n".join(cmds).encode(),
                               capture_output=True)
            if r.returncode:
                _netem_ok = False
                self.notes.append("latency/jitter/loss not emulated: this kernel has no sch_netem qdisc "
                                  f"({r.stderr.decode(errors='replace').strip().splitlines()[0][:80]})")
                return
            _netem_ok = True

    # -- teardown -----------------------------------------------------------------------
    def close(self) -> None:
        """Stop captures and processes, delete every namespace (and with them veths and nft tables)."""
        if self.closed or not self.started:
            self.closed = True
            return
        self.closed = True
        cleanup.unregister_live(self)
        t = time.perf_counter()
        if self._capture is not None and self._capture.running:
            with contextlib.suppress(Exception):
                self._trace = self._capture.stop(self)
        cleanup.kill_pids([p.pid for p in self._procs if p.popen.poll() is None], grace=0.2)
        for p in self._procs:
            with contextlib.suppress(Exception):
                p.popen.wait(0.5)
        cleanup.remove_lab(self.id, self._record())
        self.timings["down"] = time.perf_counter() - t

    def detach(self) -> dict:
        """Leave the lab running after this process exits (``python -m p2plab lab up``)."""
        self.keep = True
        cleanup.unregister_live(self)
        rec = self._record()
        cleanup.write_record(self.id, rec)
        return rec

    # -- running things -------------------------------------------------------------------
    def _check_running(self) -> None:
        if not self.started or self.closed:
            raise LabUnavailableError("this lab is not running: use it inside 'with Lab(...) as lab:' or call lab.start()")

    def _argv(self, host: str, argv: list[str] | str) -> list[str]:
        self._check_running()
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        return rootless.wrap(["ip", "netns", "exec", self.ns(host), *systools.resolve(list(argv))])

    def exec(self, host: str, argv: list[str] | str, *, check: bool = False, timeout: float | None = 30.0,
             input: str | bytes | None = None, text: bool = True) -> subprocess.CompletedProcess:
        """Run a command on ``host`` (inside its namespace) and wait for it; a string runs with ``sh -c``."""
        if isinstance(input, str) and not text:
            input = input.encode()
        return subprocess.run(self._argv(host, argv), capture_output=True, check=check, timeout=timeout,
                              input=input, text=text)

    def popen(self, host: str, argv: list[str] | str, **kwargs) -> LabProcess:
        """Start a command on ``host`` in the background; it is stopped when the lab closes."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        full = self._argv(host, argv)
        proc = LabProcess(host, subprocess.Popen(full, **kwargs), argv=full)
        self._procs.append(proc)
        return proc

    def start_python(self, host: str, target, *args, **kwargs) -> LabProcess:
        """Start ``target(*args, **kwargs)`` in a new Python process on ``host``; ``.result()`` waits for it.

        ``target`` is a function (importable, or defined in a notebook: then its source is sent, so it
        must do its own imports) or a string of Python code.
        """
        self._check_running()
        from .runner import encode_call

        n = len(self._procs)
        spec = self.workdir / f"call-{n}-{host}.pickle"
        result = self.workdir / f"result-{n}-{host}.pickle"
        spec.write_bytes(encode_call(target, args, kwargs))
        argv = [sys.executable, "-m", "p2plab.netns.runner", "call", str(spec), str(result)]
        proc = self.popen(host, argv)
        proc.result_path = result
        return proc

    def run_python(self, host: str, target, *args, timeout: float = 60.0, **kwargs) -> Any:
        """Run ``target(*args, **kwargs)`` on ``host`` with real sockets and return its result."""
        return self.start_python(host, target, *args, **kwargs).result(timeout)

    def start_protocol(self, host: str, factory: str, *, port: int = 0, kwargs: dict | None = None,
                       duration: float = 5.0, stop_on: tuple[str, ...] = (), linger: float = 0.3,
                       ip: str | None = None) -> LabProcess:
        """Drive a sans-I/O ``DatagramProtocol`` (``"module:Class"``) on a real UDP socket on ``host``."""
        self._check_running()
        n = len(self._procs)
        if ip is None:
            node = self.topology.nodes.get(host)
            ip = node.ip if node is not None else "0.0.0.0"
        spec = {"factory": factory, "kwargs": kwargs or {}, "bind": [ip, port], "duration": duration,
                "stop_on": list(stop_on), "linger": linger, "epoch": self.epoch or time.time(), "host": host}
        path = self.workdir / f"proto-{n}-{host}.json"
        path.write_text(json.dumps(spec))
        result = self.workdir / f"proto-result-{n}-{host}.json"
        proc = self.popen(host, [sys.executable, "-m", "p2plab.netns.runner", "protocol", str(path), str(result)])
        proc.result_path = None
        proc.json_result = result
        _wait_ready(proc)
        return proc

    # -- seeing inside ----------------------------------------------------------------------
    def start_capture(self) -> None:
        """Start tcpdump in every namespace (returns once all are listening)."""
        self._check_running()
        from .capture import Capture

        if self._capture is not None and self._capture.running:
            return
        self._capture = Capture(self)
        self._capture.start(self)
        self.epoch = self._capture.epoch

    def trace(self) -> Trace:
        """Stop the capture (if running) and return every packet seen, as a ``Trace`` (world='netns')."""
        if self._capture is None:
            raise LabUnavailableError("nothing was captured: build the lab with Lab(..., capture=True) "
                                      "or call lab.start_capture() before sending packets")
        if self._capture.running:
            self._trace = self._capture.stop(self)
        if self._trace is None:
            self._trace = self._capture.read(self)
        return self._trace

    def conntrack(self, nat: str) -> pd.DataFrame:
        """The NAT's conntrack table now (``conntrack -L`` in its namespace) as a DataFrame."""
        from .capture import conntrack_table

        node = self.topology.nodes.get(nat)
        if node is None or node.kind not in ("nat",):
            nats = ", ".join(n.name for n in self.topology.nats()) or "none"
            raise TopologyError(f"{nat!r} is not a NAT of this lab (NATs: {nats})")
        r = self.exec(nat, [systools.require("conntrack"), "-L", "-o", "extended"])
        return conntrack_table(r.stdout, node, self.epoch)

    def nft_ruleset(self, nat: str) -> str:
        """The live nftables ruleset of a NAT router."""
        return self.exec(nat, [systools.require("nft"), "list", "ruleset"]).stdout

    def addresses(self) -> pd.DataFrame:
        """Every interface: node, namespace, kernel name, label, role, addresses."""
        import pandas as pd

        rows = [{"node": i.node, "namespace": self.namespaces.get(i.node, ""), "interface": i.name,
                 "label": i.label, "role": i.role, "addresses": ", ".join(i.addresses)} for i in self.interfaces]
        return pd.DataFrame(rows, columns=["node", "namespace", "interface", "label", "role", "addresses"])

    def describe(self) -> str:
        lines = [f"lab {self.id} ({self.topology.name}): {len(self.namespaces)} namespaces"]
        for name, ns in self.namespaces.items():
            node = self.topology.nodes.get(name)
            if node is None:
                what = "core router (no default route)"
            elif node.kind == "nat":
                what = f"NAT {node.nat.name}: outside {', '.join(node.ips)}, inside {node.lan} ({node.lan_ip})"
            else:
                what = f"{node.kind} {', '.join(node.ips)}" + (f" behind {node.behind}" if node.behind != INTERNET else "")
            lines.append(f"  {name:10s} {ns:26s} {what}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "running" if self.started and not self.closed else ("closed" if self.closed else "not started")
        return f"<Lab {self.id or '-'} {self.topology.name} {state}>"


# -- helpers ---------------------------------------------------------------------------------

def _approximate(nat):
    from dataclasses import replace

    from ..nat import APD, EI

    if nat.mapping == EI:
        return replace(nat, port_allocation="preserving")
    return replace(nat, mapping=APD, port_allocation="random")


def _ip_batch(lines: list[str]) -> None:
    if not lines:
        return
    r = subprocess.run(rootless.wrap(["ip", "-batch", "-"]), input=("\n".join(lines) + "\n").encode(),
                       capture_output=True)
    if r.returncode:
        raise LabUnavailableError(f"building the lab failed: {r.stderr.decode(errors='replace').strip()}")


def _write_sysctls(ns: str, values: dict[str, str]) -> None:
    if rootless.wanted():  # no setns from outside the user namespace: write them from inside
        script = "; ".join(f"[ -e /proc/sys/{k} ] && echo {v} > /proc/sys/{k}" for k, v in values.items())
        subprocess.run(rootless.wrap(["ip", "netns", "exec", ns, "sh", "-c", script + "; true"]),
                       capture_output=True)
        return
    with cleanup.in_netns(ns):
        for key, value in values.items():
            try:
                with open(f"/proc/sys/{key}", "w") as f:
                    f.write(value)
            except FileNotFoundError:
                if not key.startswith("net/netfilter/nf_conntrack_acct"):
                    continue


def _wait_ready(proc: LabProcess, timeout: float = 10.0) -> None:
    """Wait for a protocol runner's READY line on stdout."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.popen.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if not sel.select(max(0.0, deadline - time.monotonic())):
            break
        chunk = os.read(proc.popen.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        if b"\n" in buf:
            line = buf.split(b"\n", 1)[0].decode()
            if line.startswith("READY"):
                _, ip, port = line.split()
                proc.bound = (ip, int(port))
                return
    err = ""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(2)
        err = proc.popen.stderr.read().decode(errors="replace")
    raise LabUnavailableError(f"the protocol runner on {proc.host} did not start (exit code "
                              f"{proc.popen.returncode}): {buf.decode(errors='replace')} {err[-3000:]}")


_probe_results: dict[bool, tuple[bool, str]] = {}  # rootless? -> answer


def available(quick: bool = False) -> tuple[bool, str]:
    """Can this machine run the real lab? ``(ok, explanation)``, the explanation naming the cause and a fix.

    The answer comes from :func:`probe`, which does what a lab does (once per process; ``quick``
    is accepted for compatibility and changes nothing). ``python -m p2plab doctor``, the worlds and
    ``punch --world netns`` all ask here, so they never disagree.
    """
    key = rootless.wanted()
    if key not in _probe_results:
        _probe_results[key] = probe()
    return _probe_results[key]


def forget() -> None:
    """Probe again on the next :func:`available` (after installing a tool or changing a setting)."""
    _probe_results.clear()
    systools.forget()


def probe() -> tuple[bool, str]:
    """Do, in miniature, what every lab does: create a namespace the way the lab will (as root, or inside
    this process's user namespace without root), enter it the same way, run ``nft`` there, delete it."""
    if not sys.platform.startswith("linux"):
        return False, (f"the real lab needs Linux network namespaces and this is {sys.platform}: "
                       "the course uses the recorded world and the simulator here")
    absent = systools.missing(["ip", "nft"] if not rootless.wanted() else ["ip", "nft", "unshare", "nsenter"])
    if absent:
        pkgs = [systools.PACKAGES.get(t, t) for t in absent]
        return False, (f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed "
                       f"(looked on PATH and in {', '.join(systools.SBIN_DIRS[:3])}): {systools.install_fix(pkgs)}")
    how = "as root" if not rootless.wanted() else "rootless, in a user namespace"
    if rootless.wanted():
        ok, why = rootless.possible()
        if not ok:
            return False, f"not root, and {why}. The recorded world and the simulator work without them"
        try:
            rootless.holder()
        except LabUnavailableError as exc:
            return False, f"not root, and the user namespace for the lab could not be made: {exc}"
    name = f"p2plab-probe-{os.getpid()}-{secrets.token_hex(2)}"
    ip, nft = systools.require("ip"), systools.require("nft")

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(rootless.wrap(argv), capture_output=True, text=True, timeout=20)

    def said(r: subprocess.CompletedProcess) -> str:
        return " ".join((r.stderr or r.stdout or f"exit status {r.returncode}").split())[:200]

    r = run([ip, "netns", "add", name])
    if r.returncode:
        fix = ("this container lacks CAP_SYS_ADMIN/CAP_NET_ADMIN: run it privileged (docker run --privileged ...)"
               if not rootless.wanted() else "entering the user namespace failed")
        return False, f"{how}: 'ip netns add' failed ({said(r)}): {fix}"
    try:
        r = run([ip, "netns", "exec", name, nft, "list", "tables"])
        if r.returncode:
            return False, (f"{how}: nftables does not work inside a network namespace ({said(r)}): this kernel "
                           "may lack nf_tables; the recorded world works without it")
    finally:
        run([ip, "netns", "del", name])
    extras = systools.missing(["conntrack"] + ([] if rootless.wanted() else ["tcpdump"]))
    msg = f"{how}: a namespace was made, entered and nft ran inside it (ip and nft are installed)"
    if extras:
        msg += (f"; without {', '.join(extras)} there are no conntrack tables/captures "
                f"({systools.install_fix([systools.PACKAGES.get(t, t) for t in extras])})")
    return True, msg
