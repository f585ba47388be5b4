"""A network described once, built in any world.

A ``Topology`` lists hosts, servers and NAT routers and who sits behind whom. The simulator
(``p2plab.sim.Network.build``) and the real Linux lab (``p2plab.netns.Lab``) build the same
description, so one scenario runs in either world. The ``internet`` core router is implicit:
a node whose ``behind`` is ``"internet"`` hangs off it.

The ready-made scenarios (``direct``, ``private``, ``one_nat``, ``punch``, ``cgn``, ``same_nat``)
use the course's addresses: private ranges inside, the documentation ranges of RFC 5737
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) as "public" addresses, 100.64.0.0/10 for CGNAT.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .addresses import check_ip
from .errors import ConfigurationError, TopologyError
from .nat import NatBehavior, preset

INTERNET = "internet"

# The course's cast and their addresses.
ALICE_LAN, ALICE_IP, ALICE_NAT_IP = "192.168.1.0/24", "192.168.1.10", "203.0.113.10"
BOB_LAN, BOB_IP, BOB_NAT_IP = "192.168.0.0/24", "192.168.0.25", "198.51.100.20"
SERVER_IP, SERVER_ALT_IP = "192.0.2.1", "192.0.2.2"
ALICE_PUBLIC_IP, BOB_PUBLIC_IP = "203.0.113.7", "198.51.100.9"


@dataclass
class Node:
    """One host, server or NAT router of a topology."""

    name: str
    kind: str  # "host" | "server" | "nat"
    ips: list[str]  # a host's/server's addresses; a NAT's outside (public) addresses
    behind: str = INTERNET
    latency: float = 0.010  # one-way seconds on the link to ``behind``
    jitter: float = 0.0
    loss: float = 0.0
    nat: NatBehavior | None = None
    lan: str | None = None  # a NAT's inside subnet
    lan_ip: str | None = None  # a NAT's inside address
    portmap: bool = False  # a NAT that runs a PCP/NAT-PMP server on its inside address (p2plab.portmap)

    @property
    def ip(self) -> str:
        return self.ips[0]


@dataclass
class Topology:
    """Hosts, servers and NATs, and who sits behind whom. Build it, then run it in a world."""

    name: str = "custom"
    nodes: dict[str, Node] = field(default_factory=dict)

    def _add(self, node: Node) -> Node:
        if not node.name or not node.name.replace("-", "").replace("_", "").isalnum():
            raise TopologyError(f"node name {node.name!r} must be letters, digits, '-' or '_', e.g. 'alice'")
        if node.name in self.nodes or node.name == INTERNET:
            raise TopologyError(f"there is already a node called {node.name!r}; give each node its own name")
        if node.behind != INTERNET and node.behind not in self.nodes:
            raise TopologyError(
                f"{node.name!r} is behind {node.behind!r}, which is not in this topology yet: add the NAT "
                f"first, or use behind='internet'"
            )
        if node.behind != INTERNET and self.nodes[node.behind].kind != "nat":
            raise TopologyError(f"{node.name!r} can only sit behind a NAT or the internet, not a {self.nodes[node.behind].kind}")
        for value, what in ((node.latency, "latency"), (node.jitter, "jitter")):
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(
                    f"{what} of {node.name!r} must be a number of seconds >= 0, e.g. 0.010 for 10 ms; got {value!r}"
                )
        if not 0 <= node.loss <= 1:
            raise ConfigurationError(f"loss of {node.name!r} is a probability, 0 to 1 (e.g. 0.01 for 1 %); got {node.loss!r}")
        if node.behind != INTERNET:
            lan = ipaddress.ip_network(self.nodes[node.behind].lan)
            for ip in node.ips:
                if ipaddress.ip_address(ip) not in lan:
                    raise TopologyError(f"{node.name!r} has address {ip}, outside its NAT's inside network {lan}")
        self.nodes[node.name] = node
        return node

    def add_host(self, name: str, ip: str, behind: str = INTERNET, latency: float = 0.010,
                 jitter: float = 0.0, loss: float = 0.0) -> Node:
        """Add a host (a peer such as Alice) with one address."""
        return self._add(Node(name, "host", [check_ip(ip, f"address of {name}")], behind, latency, jitter, loss))

    def add_server(self, name: str, ip: str, *more_ips: str, behind: str = INTERNET,
                   latency: float = 0.010) -> Node:
        """Add a server (STUN, rendezvous, TURN); extra addresses enable RFC 5780 tests."""
        ips = [check_ip(ip, f"address of {name}")] + [check_ip(x, f"address of {name}") for x in more_ips]
        return self._add(Node(name, "server", ips, behind, latency))

    def add_nat(self, name: str, public_ip: str | list[str], lan: str, behavior: str | NatBehavior = "port-restricted-cone",
                behind: str = INTERNET, latency: float = 0.010, lan_ip: str | None = None,
                portmap: bool = False) -> Node:
        """Add a NAT router: outside address(es), the inside subnet, and its behaviour (a preset name or a NatBehavior).
        ``portmap=True`` runs a PCP/NAT-PMP server on its inside address (UDP 5351)."""
        ips = [public_ip] if isinstance(public_ip, str) else list(public_ip)
        ips = [check_ip(x, f"outside address of {name}") for x in ips]
        try:
            net = ipaddress.ip_network(lan, strict=False)
        except ValueError:
            raise TopologyError(f"inside network {lan!r} of {name!r} is not a subnet; write it like '192.168.1.0/24'") from None
        lan_ip = check_ip(lan_ip) if lan_ip else str(next(net.hosts()))
        return self._add(Node(name, "nat", ips, behind, latency, nat=preset(behavior), lan=str(net), lan_ip=lan_ip,
                              portmap=bool(portmap)))

    def hosts(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind in ("host", "server")]

    def nats(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == "nat"]

    def describe(self) -> str:
        """One line per node."""
        lines = []
        for n in self.nodes.values():
            if n.kind == "nat":
                lines.append(f"{n.name}: NAT {n.nat.name} inside {n.lan} ({n.lan_ip}), outside {', '.join(n.ips)}, behind {n.behind}")
            else:
                lines.append(f"{n.name}: {n.kind} {', '.join(n.ips)}, behind {n.behind}")
        return "\n".join(lines)


# -- the course's scenarios --------------------------------------------------------------

def direct() -> Topology:
    """Alice and Bob with public addresses, no NAT (notebook 01)."""
    t = Topology("direct")
    t.add_host("alice", ALICE_PUBLIC_IP)
    t.add_host("bob", BOB_PUBLIC_IP)
    return t


def one_nat(nat: str | NatBehavior = "port-restricted-cone") -> Topology:
    """Alice behind one NAT, Bob and a server on public addresses (notebooks 02-05)."""
    t = Topology("one-nat")
    t.add_nat("nat-a", ALICE_NAT_IP, ALICE_LAN, nat)
    t.add_host("alice", ALICE_IP, behind="nat-a", latency=0.001)
    t.add_host("bob", BOB_PUBLIC_IP)
    t.add_server("server", SERVER_IP, SERVER_ALT_IP)
    return t


def punch(nat_a: str | NatBehavior = "port-restricted-cone", nat_b: str | NatBehavior = "port-restricted-cone") -> Topology:
    """Alice and Bob each behind their own NAT, a rendezvous/STUN server in between (notebooks 05-11)."""
    t = Topology("punch")
    t.add_nat("nat-a", ALICE_NAT_IP, ALICE_LAN, nat_a)
    t.add_nat("nat-b", BOB_NAT_IP, BOB_LAN, nat_b, latency=0.015)
    t.add_host("alice", ALICE_IP, behind="nat-a", latency=0.001)
    t.add_host("bob", BOB_IP, behind="nat-b", latency=0.001)
    t.add_server("server", SERVER_IP, SERVER_ALT_IP)
    return t


def cgn(home_nat: str | NatBehavior = "port-restricted-cone", carrier_nat: str | NatBehavior = "port-restricted-cone",
        nat_b: str | NatBehavior = "port-restricted-cone") -> Topology:
    """Alice behind a home NAT behind a carrier-grade NAT (RFC 6598 addresses between them)."""
    t = Topology("cgn")
    t.add_nat("cgn", ALICE_NAT_IP, "100.64.0.0/10", carrier_nat, lan_ip="100.64.0.1")
    t.add_nat("nat-a", "100.64.1.2", ALICE_LAN, home_nat, behind="cgn", latency=0.002)
    t.add_host("alice", ALICE_IP, behind="nat-a", latency=0.001)
    t.add_nat("nat-b", BOB_NAT_IP, BOB_LAN, nat_b, latency=0.015)
    t.add_host("bob", BOB_IP, behind="nat-b", latency=0.001)
    t.add_server("server", SERVER_IP, SERVER_ALT_IP)
    return t


def same_nat(nat: str | NatBehavior = "port-restricted-cone", hairpinning: bool | None = None) -> Topology:
    """Alice and Carol behind the same NAT (hairpinning as the preset has it unless given), a server outside."""
    t = Topology("same-nat")
    t.add_nat("nat-a", ALICE_NAT_IP, ALICE_LAN,
              preset(nat) if hairpinning is None else preset(nat, hairpinning=hairpinning))
    t.add_host("alice", ALICE_IP, behind="nat-a", latency=0.001)
    t.add_host("carol", "192.168.1.11", behind="nat-a", latency=0.001)
    t.add_server("server", SERVER_IP, SERVER_ALT_IP)
    return t


SCENARIOS = {"direct": direct, "one-nat": one_nat, "punch": punch, "cgn": cgn, "same-nat": same_nat}
