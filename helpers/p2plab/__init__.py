"""p2plab: the helper package of "Through the NAT", a course on peer-to-peer networking.

It builds, runs, captures, dissects and draws real packets in three worlds:

* ``p2plab.sim`` - a deterministic simulated network with NAT routers of every RFC 4787 behaviour,
* ``p2plab.netns`` - real Linux network namespaces with nftables NAT (root or user namespaces),
* recorded pcaps in ``data/`` for machines that cannot run the real lab.

Heavy libraries (scapy, pandas, plotly) load only when first used, so ``import p2plab`` is fast.
Run ``python -m p2plab doctor`` to see which worlds this machine can run.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Trace": ("p2plab.trace", "Trace"),
    "P2PLabError": ("p2plab.errors", "P2PLabError"),
}
_SUBMODULES = {
    "sim", "trace", "errors", "addresses", "packet", "sansio", "topology", "nat", "punch", "stun",
    "turn", "ice", "netns", "viz", "widgets", "checks", "labs", "doctor", "world", "aio", "matrix",
    "costs", "population", "tcp",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"p2plab.{name}")
    raise AttributeError(f"module 'p2plab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
