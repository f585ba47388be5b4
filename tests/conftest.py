"""Shared test helpers.

``need(tool)`` skips a test with a visible reason when a system tool is missing - except under
CI=true, where a missing capability is a failure, never a silent skip.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Skip (or, under CI=true, fail) because a capability is missing."""
    if IN_CI:
        pytest.fail(f"CI=true and a required capability is missing: {reason}")
    pytest.skip(reason)


def need(*tools: str) -> None:
    """Require system tools, found on PATH or in the sbin folders (e.g. need('tshark'))."""
    from p2plab import systools

    absent = systools.missing(tools)
    if absent:
        pkgs = [systools.PACKAGES.get(t, t) for t in absent]
        missing(f"needs {', '.join(absent)}: {systools.install_fix(pkgs)}")


def can_make_netns() -> bool:
    """Can this process run the real lab (as root, or rootless in a user namespace)? The lab's own probe."""
    from p2plab.netns import available

    return available()[0]


def need_netns() -> None:
    """Require the real Linux lab: root with network namespaces, or an ordinary user with user namespaces."""
    from p2plab.netns import available

    ok, why = available()
    if not ok:
        missing(f"needs the real Linux lab, which cannot run here: {why}")


def lab_namespaces() -> list[str]:
    """The p2plab lab namespaces that exist now, wherever this process's labs live (root or rootless)."""
    from p2plab.netns import cleanup

    return cleanup.lab_namespaces()
