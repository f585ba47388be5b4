"""pytest set-up shared by the unit tests and nbval's notebook checks.

nbval compares every stored output with what a fresh run produces. A few MIME types carry bytes
that depend on library versions or random ids (plotly's JSON, widget model ids, pandas' HTML);
they are left out of the comparison here. text/plain is always compared, and every figure and
table in the course also prints a text summary, so the comparison still checks what a learner reads.
"""

from __future__ import annotations

import logging
import os

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
