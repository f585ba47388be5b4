"""pytest set-up shared by the unit tests and nbval's notebook checks.

nbval compares every stored output with what a fresh run produces. A few MIME types carry bytes
that depend on library versions or random ids (plotly's JSON, widget model ids, pandas' HTML);
they are left out of the comparison here. text/plain is always compared, and every figure and
table in the course also prints a text summary, so the comparison still checks what a learner reads.
"""

from __future__ import annotations

import logging
import os

import pytest

os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

SKIP_COMPARE = (
    "application/vnd.plotly.v1+json",
    "application/vnd.jupyter.widget-view+json",
    "text/html",
    "application/javascript",
    "image/png",
    "image/svg+xml",
)


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += SKIP_COMPARE


# ---- who runs the tests ------------------------------------------------------------------------
# CI runs the suite as root, then parts of it as an ordinary user and on a machine without
# namespaces (tools/ci-as-users.sh). Two rules keep those runs honest:
#
# * Under CI=true nothing is skipped: a skip becomes a failure that names its reason.
# * A test marked ``needs_root`` checks something only root can have (labs of other processes in
#   the shared /run/netns, captures on the host's loopback); it is deselected, not skipped, when
#   the suite runs as an ordinary user, and its rootless counterpart runs instead.

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_root: checks what only root can have; deselected for other users")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    keep = [i for i in items if i.get_closest_marker("needs_root") is None]
    dropped = [i for i in items if i.get_closest_marker("needs_root") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true and this test was skipped ({reason}): under CI nothing may be skipped"
