"""The system programs the real lab runs (``ip``, ``nft``, ``tc``, ``conntrack``, ...), found where
distributions put them.

On Debian and Ubuntu, ``nft``, ``tc``, ``conntrack`` and (on older releases) ``ip`` live in
``/usr/sbin``, which is on root's PATH but not on an ordinary user's. A rootless lab needs them all
the same, so p2plab looks on PATH *and* in the sbin folders, and always runs a tool by its absolute
path::

    >>> from p2plab import systools
    >>> systools.find("sh") is not None
    True
    >>> systools.resolve(["sh", "-c", "true"])[0].startswith("/")
    True

When a tool is missing, :func:`require` raises ``LabUnavailableError`` with a fix that works for
the person running it: root on Debian is told the ``apt-get`` command; an ordinary user is told which
package to ask the machine's administrator for, and that the recorded world needs none of it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import LabUnavailableError

# Folders searched after PATH, in order (where distributions put administrator tools).
SBIN_DIRS: tuple[str, ...] = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin")

# The Debian/Ubuntu package of each tool the course uses.
PACKAGES: dict[str, str] = {
    "ip": "iproute2", "tc": "iproute2", "nft": "nftables", "conntrack": "conntrack",
    "tcpdump": "tcpdump", "tshark": "tshark", "turnserver": "coturn", "turnutils_uclient": "coturn",
    "chromium": "chromium", "unshare": "util-linux", "nsenter": "util-linux", "node": "nodejs",
    "miniupnpd": "miniupnpd-nftables", "upnpc": "miniupnpc",
}

_cache: dict[str, str | None] = {}


def find(tool: str) -> str | None:
    """The absolute path of ``tool`` (on PATH, else in /usr/local/sbin, /usr/sbin or /sbin), or None."""
    if os.path.isabs(tool):
        return tool if os.access(tool, os.X_OK) else None
    if tool in _cache and _cache[tool] is not None:
        return _cache[tool]
    found = shutil.which(tool)
    if not found:
        for folder in SBIN_DIRS:
            candidate = Path(folder) / tool
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found = str(candidate)
                break
    _cache[tool] = found
    return found


def forget() -> None:
    """Look tools up again next time (after installing one, or in tests that mask them)."""
    _cache.clear()


def is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid and geteuid() == 0)


def install_fix(packages: list[str]) -> str:
    """The fix for missing Debian ``packages`` that works for whoever runs this process."""
    names = " ".join(dict.fromkeys(packages))
    if is_root() and shutil.which("apt-get"):
        return f"apt-get install {names}"
    if is_root():
        return f"install the package(s) {names} with this system's package manager"
    return (f"ask the administrator of this machine to install the package(s) {names} (Debian/Ubuntu names); "
            f"until then the course uses the simulator and the recorded world")


def missing(tools: list[str] | tuple[str, ...]) -> list[str]:
    """The tools in ``tools`` that this machine does not have."""
    return [t for t in tools if find(t) is None]


def require(tool: str) -> str:
    """The absolute path of ``tool``; ``LabUnavailableError`` naming its package and a working fix if absent."""
    path = find(tool)
    if path is None:
        pkg = PACKAGES.get(tool, tool)
        raise LabUnavailableError(f"the program {tool!r} (package {pkg}) is not installed, neither on PATH nor "
                                  f"in {', '.join(SBIN_DIRS[:3])}: {install_fix([pkg])}")
    return path


def resolve(argv: list[str]) -> list[str]:
    """``argv`` with its program replaced by its absolute path when p2plab can find it.

    A program it cannot find is left as it is, so the error comes from the command itself (a
    learner's ``lab.exec("alice", ["my-tool"])`` says "No such file" for ``my-tool``).
    """
    if not argv:
        return list(argv)
    head = str(argv[0])
    path = head if os.path.isabs(head) else (find(head) or head)
    return [path, *map(str, argv[1:])]
