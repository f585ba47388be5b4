"""Owning, finding and removing labs: nothing a lab creates outlives it.

Every lab has a 4-hex id. Its namespaces are ``p2plab-<id>-<node>`` and its veth ends
``p2plab-<id>-<n><side>`` (created directly inside the namespaces, so none ever appears in the
root namespace); nftables tables live inside the NAT namespaces and die with them. A lab is
recorded in ``/run/p2plab/<id>.json`` (owner pid and its start time, namespaces, keep flag)
*before* anything is created and the record is removed *last*, so:

* ``Lab.close()`` runs on normal exit, exceptions, SIGTERM (handler) and at interpreter exit;
* after a ``kill -9`` the next ``Lab`` start removes labs whose owner is dead (``sweep()``);
* ``python -m p2plab lab down --all`` removes every p2plab namespace whatever its owner.

Removing a namespace first kills the processes still inside it (tcpdump, runners), found by
comparing ``/proc/<pid>/ns/net`` with the namespace's inode as ``ip netns pids`` does.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import threading
import time
import weakref
from pathlib import Path

STATE_DIR = Path(os.environ.get("P2PLAB_STATE_DIR")
                 or ("/run/p2plab" if os.geteuid() == 0 else Path.home() / ".cache" / "p2plab" / "labs"))
NETNS_DIR = Path("/run/netns")
PREFIX = "p2plab-"
LAB_NS_RE = re.compile(r"^p2plab-([0-9a-f]{4})-")
CLONE_NEWNET = 0x40000000

_live: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()
_handlers_installed = False


# -- processes ------------------------------------------------------------------------------

def proc_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of ``pid``, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when given, started at ``start_time``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return False
    return start_time is None or int(fields[19]) == start_time


def pids_in_namespaces(names: list[str]) -> dict[int, str]:
    """pid -> namespace name, for every process whose network namespace is one of ``names``."""
    from . import rootless

    inodes = {}
    netns_dir = rootless.netns_dir()
    for name in names:
        try:
            s = os.stat(netns_dir / name)
            inodes[(s.st_dev, s.st_ino)] = name
        except OSError:
            pass
    if not inodes:
        return {}
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            s = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue
        name = inodes.get((s.st_dev, s.st_ino))
        if name is not None and int(entry.name) != os.getpid():
            found[int(entry.name)] = name
    return found


def kill_pids(pids, grace: float = 0.0) -> None:
    """SIGTERM (when ``grace``) then SIGKILL the given processes, by id."""
    pids = list(pids)
    if grace:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.01)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 3.0  # SIGKILL is delivered asynchronously: wait until they are gone
    while True:
        for pid in pids:  # reap our own children so they do not linger as zombies
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        if not any(pid_alive(p) for p in pids) or time.monotonic() > deadline:
            break
        time.sleep(0.01)


# -- namespaces ------------------------------------------------------------------------------

def list_netns() -> list[str]:
    """Names of the network namespaces where this process's labs live (none when labs cannot run here)."""
    from ..errors import LabUnavailableError
    from . import rootless

    try:
        return sorted(p.name for p in rootless.netns_dir().iterdir())
    except (OSError, LabUnavailableError):
        return []


def lab_namespaces(lab_id: str | None = None) -> list[str]:
    """Namespaces that belong to p2plab labs (all labs, or the lab ``lab_id``)."""
    out = []
    for name in list_netns():
        m = LAB_NS_RE.match(name)
        if m and (lab_id is None or m.group(1) == lab_id):
            out.append(name)
    return out


def delete_namespaces(names: list[str]) -> None:
    """Kill every process inside the namespaces, then delete them (veths and nft tables go too)."""
    names = [n for n in names if n.startswith(PREFIX)]
    if not names:
        return
    pids = pids_in_namespaces(names)
    if pids:
        kill_pids(pids)
        deadline = time.monotonic() + 2.0
        while pids_in_namespaces(names) and time.monotonic() < deadline:
            time.sleep(0.01)
    existing = set(list_netns())
    batch = "".join(f"netns del {n}\n" for n in names if n in existing)
    if batch:
        from . import rootless

        subprocess.run(rootless.wrap(["ip", "-force", "-batch", "-"]), input=batch.encode(), capture_output=True)


_libc = None


@contextlib.contextmanager
def in_netns(name: str):
    """Run the body of the ``with`` (this thread only) inside namespace ``name``."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - would be a kernel bug
                raise OSError(ctypes.get_errno(), "could not return to the original network namespace")
    finally:
        os.close(own)
        os.close(target)


# -- the records in /run/p2plab -------------------------------------------------------------

def state_path(lab_id: str) -> Path:
    return STATE_DIR / f"{lab_id}.json"


def claim_id(lab_id: str, record: dict) -> bool:
    """Create the lab's record exclusively; False if the id is taken."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(state_path(lab_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1)
    return True


def write_record(lab_id: str, record: dict) -> None:
    tmp = state_path(lab_id).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(state_path(lab_id))


def read_records() -> dict[str, dict]:
    out = {}
    try:
        files = sorted(STATE_DIR.glob("*.json"))
    except OSError:
        return out
    for f in files:
        try:
            out[f.stem] = json.loads(f.read_text())
        except (OSError, ValueError):
            out[f.stem] = {}
    return out


def remove_lab(lab_id: str, record: dict | None = None) -> list[str]:
    """Remove everything of lab ``lab_id`` (processes, namespaces, work files, record)."""
    record = record or {}
    names = sorted(set(lab_namespaces(lab_id)) | {n for n in record.get("namespaces", []) if LAB_NS_RE.match(n)})
    extra = [p for p in record.get("pids", []) if pid_alive(p[0], p[1])] if record.get("pids") else []
    kill_pids([p[0] for p in extra])
    delete_namespaces(names)
    workdir = record.get("workdir")
    if workdir and record.get("remove_workdir", True) and Path(workdir).name.startswith(PREFIX):
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(OSError):
        state_path(lab_id).unlink()
    return names


def owner_alive(record: dict) -> bool:
    return bool(record) and pid_alive(int(record.get("owner_pid", -1)), record.get("owner_start"))


def sweep(everything: bool = False, keep_ids: set[str] | None = None) -> list[str]:
    """Remove labs whose owner process is dead (all labs when ``everything``). Returns lab ids removed."""
    keep_ids = keep_ids or set()
    removed = []
    records = read_records()
    for lab_id, rec in records.items():
        if lab_id in keep_ids:
            continue
        if everything or (not rec.get("keep") and not owner_alive(rec)):
            remove_lab(lab_id, rec)
            removed.append(lab_id)
    # namespaces with no record at all: the record is written before and removed after them
    orphan_ids = {LAB_NS_RE.match(n).group(1) for n in lab_namespaces()} - set(records) - keep_ids
    for lab_id in sorted(orphan_ids):
        remove_lab(lab_id)
        removed.append(lab_id)
    if everything:  # anything else named p2plab-* (e.g. a probe left by a crashed doctor)
        delete_namespaces([n for n in list_netns() if n.startswith(PREFIX) and not LAB_NS_RE.match(n)])
    return removed


# -- exit paths ----------------------------------------------------------------------------

def register_live(lab) -> None:
    global _handlers_installed
    with _lock:
        _live.add(lab)
        if _handlers_installed:
            return
        _handlers_installed = True
    atexit.register(close_all)
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum, frame):
            close_all()
            if callable(previous):
                previous(signum, frame)
            else:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, on_sigterm)
        # SIGHUP (terminal closed) ends the program the same way
        if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None):
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGHUP, on_sigterm)


def unregister_live(lab) -> None:
    with _lock:
        _live.discard(lab)


def close_all() -> None:
    """Close every lab this process owns (the atexit/SIGTERM path)."""
    for lab in list(_live):
        with contextlib.suppress(Exception):
            lab.close()
