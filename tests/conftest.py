"""Shared test helpers.

``need(tool)`` skips a test with a visible reason when a system tool is missing - except under
CI=true, where a missing capability is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Skip (or, under CI=true, fail) because a capability is missing."""
    if IN_CI:
        pytest.fail(f"CI=true and a required capability is missing: {reason}")
    pytest.skip(reason)


def need(*tools: str) -> None:
    """Require system tools on PATH (e.g. need('tshark'))."""
    absent = [t for t in tools if shutil.which(t) is None]
    if absent:
        missing(f"needs {', '.join(absent)} (run 'make test' as root to install them with apt-get)")


def can_make_netns() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"p2plab-probe-{os.getpid()}"
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return ok


def need_netns() -> None:
    """Require the ability to create network namespaces (root) and nftables."""
    need("ip", "nft")
    if not can_make_netns():
        missing("needs root and network namespaces (ip netns add) for the real Linux lab")
