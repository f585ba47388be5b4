"""Connection reversal in the real Linux lab: ``run_reversal(nat)``.

The same sans-I/O objects as the simulator (``p2plab.reversal.ReversalServer`` and
``ReversalPeer``) run on real UDP sockets in the server, alice and bob namespaces, through a kernel
NAT built from the preset. The outcome is explained by ``p2plab.scenarios.reversal.explain``, so
both worlds say the same things in the same words.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..nat import NatBehavior, preset
from ..reversal import MODES, SERVER_PORT
from ..scenarios.reversal import ALICE_PORT, BOB_PORT, ReversalResult, explain, topology_for
from ..topology import SERVER_IP


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def run_reversal(nat: str | NatBehavior = "port-restricted-cone", mode: str = "reversal",
                 bob_nat: str | NatBehavior | None = None, *, give_up_after: float = 1.5,
                 capture: bool = True) -> ReversalResult:
    """Bob asks the rendezvous to connect him to Alice (behind a real kernel NAT ``nat``).

    ``mode`` is ``"reversal"`` or ``"direct"`` (see ``p2plab.scenarios.reversal.run_reversal``).
    Returns a ``ReversalResult`` (``world="netns"``) with the captured ``trace`` when ``capture``.
    """
    from ..errors import ConfigurationError
    from .lab import Lab

    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    topo = topology_for(preset(nat), None if bob_nat is None else preset(bob_nat))
    server = [SERVER_IP, SERVER_PORT]
    duration = give_up_after + 1.5
    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    with Lab(topo, capture=capture) as lab:
        srv = lab.start_protocol("server", "p2plab.reversal:ReversalServer", port=SERVER_PORT,
                                 duration=duration + 0.5)
        peers = {
            "alice": lab.start_protocol("alice", "p2plab.reversal:make_peer", port=ALICE_PORT, duration=duration,
                                        stop_on=("connected", "failed"), linger=0.3,
                                        kwargs={"name": "alice", "server": server,
                                                "give_up_after": give_up_after}),
            "bob": lab.start_protocol("bob", "p2plab.reversal:make_peer", port=BOB_PORT, duration=duration,
                                      stop_on=("connected", "failed"), linger=0.3,
                                      kwargs={"name": "bob", "server": server, "call": "alice", "mode": mode,
                                              "give_up_after": give_up_after}),
        }
        for name, proc in peers.items():
            proc.wait(duration + 10)
            results[name] = json.loads(proc.json_result.read_text())
        srv.terminate()
        srv.wait(5)
        trace = lab.trace() if capture else None
    for name, r in results.items():
        if not r.get("ok", False):
            raise RuntimeError(f"the reversal peer on {name} crashed:\n{r.get('error', '')}")
    events = {name: r.get("events", []) for name, r in results.items()}
    res = explain(events, trace, _name(nat), None if bob_nat is None else _name(bob_nat), mode, "netns")
    res.events["timings"] = [{"kind": "total", "time": round(time.perf_counter() - t0, 3)}]
    return res
