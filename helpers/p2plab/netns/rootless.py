"""Labs without root: one user namespace (with its own mount, pid and network namespaces) per process.

An ordinary user may create a user namespace in which it is "root" (when the kernel allows
unprivileged user namespaces). Every lab namespace is then created *inside* it, by one holder
process per Python process::

    unshare --user --map-root-user --net --mount --pid --fork --kill-child  (tmpfs on /run)

and every ``ip``/``nft``/``tc`` command and lab process runs through
``nsenter --preserve-credentials -t <holder> -U -m -p -n``. (``--map-root-user`` writes "deny" to
the namespace's setgroups file, so an ordinary user's ``nsenter -U`` must keep its credentials instead
of calling setgroups; its uid is already root inside through the uid map. Root is exempt from this
rule, so only a test run by a real unprivileged user shows it.) Nothing of a rootless lab is visible from the host's root
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
import signal
import subprocess
import threading
from pathlib import Path

from .. import systools
from ..errors import LabUnavailableError

ENV = "P2PLAB_ROOTLESS"
_lock = threading.Lock()
_holder: Holder | None = None


def wanted() -> bool:
    """Rootless mode: when not root, or forced with P2PLAB_ROOTLESS=1 (how the tests exercise it as root)."""
    return os.environ.get(ENV) == "1" or os.geteuid() != 0


def possible() -> tuple[bool, str]:
    """Can this machine make the user namespace a rootless lab needs? A quick check (``unshare`` only);
    :func:`p2plab.netns.lab.probe` does everything a lab does."""
    tools = systools.missing(["unshare", "nsenter"])
    if tools:
        return False, f"{' and '.join(tools)} (package util-linux) {'is' if len(tools) == 1 else 'are'} not installed"
    try:
        r = subprocess.run([systools.require("unshare"), "--user", "--map-root-user", "--net", "--mount", "true"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"unshare could not run: {exc}"
    if r.returncode:
        return False, userns_refusal(r.stderr)
    return True, "unprivileged user namespaces work here (unshare --user --net --mount)"


def userns_refusal(stderr: str) -> str:
    """Why ``unshare --user`` failed, in words: switched off by the kernel's settings, or refused by a container."""
    said = " ".join((stderr or "").split())[:160] or "no message"
    for path, bad in (("/proc/sys/kernel/unprivileged_userns_clone", "0"),
                      ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
                      ("/proc/sys/user/max_user_namespaces", "0")):
        try:
            if Path(path).read_text().strip() == bad:
                key = path.removeprefix("/proc/sys/").replace("/", ".")
                return f"this kernel has unprivileged user namespaces switched off ({key} = {bad}; unshare said: {said})"
        except OSError:
            continue
    return (f"this machine refuses to let an ordinary user create user namespaces (unshare said: {said}); "
            "containers (Docker's default seccomp profile, many JupyterHub spawners) often forbid them")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Holder:
    """The process that owns the user, mount, pid and network namespaces of this process's rootless labs."""

    def __init__(self) -> None:
        script = "mount -t tmpfs tmpfs /run && mkdir -p /run/netns /run/p2plab && echo READY && exec sleep infinity"
        self.proc = subprocess.Popen(
            [systools.require("unshare"), "--user", "--map-root-user", "--net", "--mount", "--propagation", "private", "--pid",
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
        self.prefix = [systools.require("nsenter"), "--preserve-credentials", "-t", str(self.pid),
                       "-U", "-m", "-p", "-n", "--"]
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
    """``argv`` as it must be run for the current mode, its program by absolute path (as root: just that)."""
    argv = systools.resolve(argv)
    return holder().prefix + argv if wanted() else argv


def netns_dir() -> Path:
    """Where the lab namespaces are mounted, seen from this process."""
    return holder().netns_dir if wanted() else Path("/run/netns")
