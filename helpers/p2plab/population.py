"""Population experiments: many peers behind a mix of NATs, each punching to several others.

``run_population(1000, fanout=10)`` builds one simulated internet with a rendezvous server and
homes behind NAT routers (two devices per home, since the documentation address ranges hold
only 762 "public" addresses), lets every peer try a real hole punch to ``fanout`` random others,
and reports the share of direct connections and the relay bandwidth the rest would need.

The default NAT mix is an *assumption built on one measurement*: Ford, Srisuresh and Kegel
(USENIX 2005) found that about 82% of the NATs they tested support UDP hole punching, so 18% of
homes get a symmetric NAT here; how the other 82% split between the cone behaviours is our
choice, not a measured figure. Pass your own ``mix`` to explore.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError
from .punch import RENDEZVOUS_PORT, PunchConfig, PunchPeer, RendezvousServer
from .topology import SERVER_IP, Topology

DEFAULT_MIX = {
    "full-cone": 0.10,
    "restricted-cone": 0.12,
    "port-restricted-cone": 0.30,
    "linux-masquerade": 0.30,
    "symmetric": 0.18,
}
PUBLIC_POOL = [
    str(ip) for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
    for ip in ipaddress.ip_network(net).hosts()
    if str(ip) not in (SERVER_IP, "192.0.2.2")
]


@dataclass
class PopulationResult:
    """What a population experiment found."""

    peers: int
    attempts: int
    direct: int
    by_pair: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (nat, nat) -> [direct, total]
    hops: int = 0
    sim_seconds: float = 0.0

    @property
    def direct_share(self) -> float:
        return self.direct / self.attempts if self.attempts else 0.0

    def relay_bandwidth_mbps(self, bitrate_mbps: float = 2.0) -> float:
        """Relay bandwidth for the attempts that failed: each relayed stream goes in and out of the relay."""
        return (self.attempts - self.direct) * bitrate_mbps * 2

    def table(self):
        """Success per NAT pair as a DataFrame."""
        import pandas as pd

        rows = [{"nat_a": a, "nat_b": b, "direct": d, "attempts": n, "share": round(d / n, 3)}
                for (a, b), (d, n) in sorted(self.by_pair.items())]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        return (f"{self.peers} peers, {self.attempts} punch attempts: {self.direct} direct "
                f"({self.direct_share:.1%}), {self.attempts - self.direct} need a relay")


def run_population(peers: int = 1000, fanout: int = 10, mix: dict[str, float] | None = None, seed: int = 0,
                   give_up_after: float = 1.0, record: bool = False) -> PopulationResult:
    """Run ``peers`` peers, each punching to ``fanout`` others, in one simulated network."""
    from .sim import Network

    mix = dict(mix or DEFAULT_MIX)
    if peers < 2 or fanout < 1 or fanout >= peers:
        raise ConfigurationError(f"need peers >= 2 and 1 <= fanout < peers; got peers={peers}, fanout={fanout}")
    homes = (peers + 1) // 2
    if homes > len(PUBLIC_POOL):
        raise ConfigurationError(f"at most {2 * len(PUBLIC_POOL)} peers fit the documentation address ranges")
    total = sum(mix.values())
    if total <= 0:
        raise ConfigurationError("the NAT mix needs at least one preset with a positive share")
    rng = random.Random(seed)
    names, weights = list(mix), [w / total for w in mix.values()]
    topo = Topology("population")
    nat_of: list[str] = []
    for h in range(homes):
        kind = rng.choices(names, weights)[0]
        lan = f"10.{h // 256}.{h % 256}.0/24"
        topo.add_nat(f"n{h}", PUBLIC_POOL[h], lan, kind, latency=0.005 + rng.random() * 0.03)
        for d in range(2):
            if 2 * h + d < peers:
                topo.add_host(f"p{2 * h + d}", f"10.{h // 256}.{h % 256}.{10 + d}", behind=f"n{h}", latency=0.001)
                nat_of.append(kind)
    topo.add_server("server", SERVER_IP)
    net = Network.build(topo, seed=seed, record=record)
    net.run_protocol("server", RendezvousServer(), RENDEZVOUS_PORT)
    server = (SERVER_IP, RENDEZVOUS_PORT)
    pairs: set[tuple[int, int]] = set()
    for i in range(peers):
        for j in rng.sample([x for x in range(peers) if x != i], fanout):
            pairs.add((min(i, j), max(i, j)))
    runners = []
    next_port = [20000] * peers
    cfg = PunchConfig(give_up_after=give_up_after, try_private=False)
    for i, j in sorted(pairs):
        a = f"{i}>{j}"
        b = f"{j}>{i}"
        ra = net.run_protocol(f"p{i}", PunchPeer(a, b, server, cfg), next_port[i])
        rb = net.run_protocol(f"p{j}", PunchPeer(b, a, server, cfg), next_port[j])
        next_port[i] += 1
        next_port[j] += 1
        runners.append((i, j, ra, rb))
    net.run(until=give_up_after + 5.0)
    result = PopulationResult(peers, len(runners), 0, hops=net.hops, sim_seconds=net.now)
    for i, j, ra, rb in runners:
        ok = ra.protocol.connected is not None and rb.protocol.connected is not None
        key = tuple(sorted((nat_of[i], nat_of[j])))
        cell = result.by_pair.setdefault(key, [0, 0])
        cell[0] += ok
        cell[1] += 1
        result.direct += ok
    return result


def summary_dict(result: PopulationResult, bitrate_mbps: float = 2.0) -> dict[str, Any]:
    return {"peers": result.peers, "attempts": result.attempts, "direct": result.direct,
            "direct_share": round(result.direct_share, 4),
            "relay_mbps": result.relay_bandwidth_mbps(bitrate_mbps)}
