"""Port forwarding and the DMZ host in the real Linux lab: ``run_forwarding(rule)``.

The same story as ``p2plab.scenarios.forwarding`` with a kernel NAT: Alice's router gets the
administrator's rule as nftables DNAT rules (``p2plab.netns.nftables.forward_rules`` and
``dmz_rules``), Alice runs an echo service, Bob knocks on the router's public port 8080.
"""

from __future__ import annotations

import json

from ..nat import NatBehavior
from ..scenarios.forwarding import BOB_PORT, SERVICE_PORT, ForwardingResult, explain, target_for, topology_for


def run_forwarding(rule: str = "forward", nat: str | NatBehavior = "port-restricted-cone", cgn: bool = False,
                   capture: bool = True) -> ForwardingResult:
    """Bob knocks on Alice's router's public address, port 8080, through real nftables rules.

    The result's ``ruleset`` attribute holds Alice's router's live nftables ruleset.
    """
    from .lab import Lab

    topo = topology_for(rule, nat, cgn)
    with Lab(topo, capture=capture) as lab:
        echo = lab.start_protocol("alice", "p2plab.recorded:Echo", port=SERVICE_PORT, duration=1.2)
        bob = lab.start_protocol("bob", "p2plab.recorded:Hello", port=BOB_PORT, duration=0.8,
                                 kwargs={"target": list(target_for(rule, cgn)), "text": "knock knock"},
                                 stop_on=("reply",))
        bob.wait(10)
        echo.wait(10)
        events = json.loads(bob.json_result.read_text()).get("events", [])
        ruleset = lab.nft_ruleset("nat-a")
        trace = lab.trace() if capture else None
    res = explain(events, trace, rule, nat if isinstance(nat, str) else nat.name, cgn, "netns")
    res.ruleset = ruleset  # type: ignore[attr-defined]
    return res
