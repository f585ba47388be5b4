"""The real Linux lab: a ``p2plab.topology.Topology`` built as network namespaces with nftables NAT.

* ``Lab(topology)`` - build it (context manager), run commands and Python on its hosts, capture
  every interface into a ``Trace`` (world ``"netns"``), read each NAT's conntrack table.
* ``run_punch(nat_a, nat_b)`` - a real UDP hole punch between alice and bob via a rendezvous
  server, through kernel NATs; ``conntrack_clash=True`` shows Linux's conntrack clash.
* ``run_tcp_punch(nat_a, nat_b)`` - the standard TCP punch (listen and connect from one port).
* ``available()`` - can this machine run it? The lab's own probe: it makes, enters and tests a namespace.
* ``down(all=True)`` - remove labs left behind (``python -m p2plab lab down --all``).

Needs iproute2 and nftables, and root (with tcpdump for captures) or, without root, unprivileged
user namespaces: then every lab of the process lives inside one user namespace of its own (see
``p2plab.netns.rootless``); conntrack for conntrack tables. See ``p2plab.netns.nftables`` for which NAT behaviours Linux
can build.
"""

from __future__ import annotations

from .cleanup import sweep
from .lab import Lab, LabProcess, available
from .punchlab import run_punch
from .tcppunch import run_tcp_punch

__all__ = ["Lab", "LabProcess", "available", "down", "run_punch", "run_tcp_punch", "sweep"]


def down(all: bool = False) -> list[str]:  # noqa: A002 - mirrors the CLI flag
    """Remove labs whose owner has gone (and, with ``all=True``, every p2plab lab). Returns lab ids."""
    return sweep(everything=all)
