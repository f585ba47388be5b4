"""The sans-I/O STUN code runs unchanged in the simulator, and RFC 5780 discovery names each preset."""

from __future__ import annotations

import random

import pytest

from p2plab import sim, topology
from p2plab.nat import PRESETS
from p2plab.stun import StunClient, StunServer


def test_binding_reveals_the_nat_mapping():
    net = sim.Network.build(topology.one_nat("port-restricted-cone"), seed=0)
    net.run_protocol("server", StunServer(), 3478)
    client = net.run_protocol("alice", StunClient(("192.0.2.1", 3478), rng=random.Random(1)), 5000)
    net.run(until=2)
    mapped = [e for e in client.events if e.kind == "mapped"]
    assert mapped and mapped[0].address == ("203.0.113.10", 5000)


@pytest.mark.parametrize("name", list(PRESETS))
def test_rfc5780_discovery_names_every_preset(name):
    from p2plab.stun.discovery import NatDiscovery

    net = sim.Network.build(topology.one_nat(name), seed=0)
    net.run_protocol("server", StunServer(alt_ip="192.0.2.2", alt_port=3479), 3478)
    run = net.run_protocol("alice", NatDiscovery(("192.0.2.1", 3478), rng=random.Random(1)), 5000)
    net.run(until=60)
    result = [e for e in run.events if e.kind == "nat-type"][-1]
    assert (result.mapping, result.filtering) == (PRESETS[name].mapping, PRESETS[name].filtering)
    assert result.classic == PRESETS[name].classic_name
