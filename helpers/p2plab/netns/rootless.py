"""Labs without root: one user namespace (with its own mount, pid and network namespaces) per process.

An ordinary user may create a user namespace in which it is "root" (when the kernel allows
unprivileged user namespaces). Every lab namespace is then created *inside* it, by one holder
process per Python process::

    unshare --user --map-root-user --net --mount --pid --fork --kill-child  (tmpfs on /run)

and every ``ip``/``nft``/``tc`` command and lab process runs through
``nsenter -t <holder> -U -m -p -n``. Nothing of a rootless lab is visible from the host's root
namespace, and killing the holder (it dies with this process: PDEATHSIG) takes every namespace
and process of every rootless lab with it, because the kernel kills a pid namespace with its init.

Two things differ from labs run as root: tcpdump cannot drop privileges there (setgroups is
denied), so captures use ``p2plab.netns.pycapture``; and link latency needs ``sch_netem`` exactly
as with root.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from ..errors import LabUnavailableError

ENV = "P2PLAB_ROOTLESS"
_lock = threading.Lock()
_holder: Holder | None = None


def wanted() -> bool:
    """Rootless mode: when not root, or forced with P2PLAB_ROOTLESS=1 (how the tests exercise it as root)."""
    return os.environ.get(ENV) == "1" or os.geteuid() != 0


def possible() -> tuple[bool, str]:
    """Can this machine make the user namespace a rootless lab needs?"""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return False, "unshare/nsenter (util-linux) are missing"
    try:
        r = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", "true"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"unshare could not run: {exc}"
    if r.returncode:
        return False, f"this kernel does not let ordinary users make user namespaces ({r.stderr.strip()})"
    return True, "unprivileged user namespaces work here (unshare --user --net --mount)"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Holder:
    """The process that owns the user, mount, pid and network namespaces of this process's rootless labs."""

    def __init__(self) -> None:
        script = "mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/p2plab && echo READY && exec sleep infinity"
        self.proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--net", "--mount", "--propagation", "private", "--pid",
             "--fork", "--kill-child", "--", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.proc.kill()
            raise LabUnavailableError(f"could not make the user namespace for a rootless lab: {line} {err}".strip())
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        self.pid = int(children[0])  # 'sleep', pid 1 of the new pid namespace
        self.prefix = ["nsenter", "-t", str(self.pid), "-U", "-m", "-p", "-n", "--"]
        self.netns_dir = Path(f"/proc/{self.pid}/root/run/netns")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()  # its child (pid 1 of the pid namespace) gets SIGKILL, and with it everything
        with contextlib.suppress(Exception):
            self.proc.wait(5)


def holder() -> Holder:
    """This process's holder, started on first use."""
    global _holder
    with _lock:
        if _holder is None or not _holder.alive():
            _holder = Holder()
            atexit.register(_holder.close)
        return _holder


def wrap(argv: list[str]) -> list[str]:
    """``argv`` as it must be run for the current mode (unchanged as root)."""
    return holder().prefix + list(argv) if wanted() else list(argv)


def netns_dir() -> Path:
    """Where the lab namespaces are mounted, seen from this process."""
    return holder().netns_dir if wanted() else Path("/run/netns")
