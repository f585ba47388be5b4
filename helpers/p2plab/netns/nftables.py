"""A ``NatBehavior`` written as an nftables ruleset for a Linux NAT router namespace.

What the Linux kernel can and cannot be (RFC 4787 terms):

mapping
    Linux conntrack NAT keeps the inside port whenever the translated 5-tuple is unique
    (``masquerade``): every destination sees the same outside port, i.e. *endpoint-independent
    mapping with port preservation* - until a conntrack entry already holds that tuple (the
    "conntrack clash", see ``input`` below). ``masquerade fully-random`` draws a new random port
    for every new conntrack entry (= every destination address and port): *address-and-port-
    dependent mapping with random ports*, the ``symmetric`` preset.
    Not expressible: *address-dependent mapping* (Linux never shares one mapping among the ports
    of one address), *sequential* port allocation, and endpoint-independent mapping with
    *non-preserving* (random/sequential) ports: the kernel either keeps the port or
    randomises per connection. These raise ``LabUnavailableError`` (or are approximated with a
    note when the lab is built with ``approximate=True``).

filtering
    conntrack alone admits inbound packets only on an existing entry: *address-and-port-
    dependent filtering* (port-restricted cone, symmetric). *Endpoint-independent* (full cone)
    and *address-dependent* (restricted cone) filtering are built with a dynamic nftables map:
    after the NAT has translated an outbound packet, a filter chain at ``srcnat + 10`` records
    ``outside port -> inside address . port`` (``ct original ip saddr . ct original proto-src``)
    and, for address-dependent filtering, the set of (outside port, remote address) pairs. A
    ``prerouting`` rule DNATs new inbound UDP/TCP flows to the recorded inside endpoint when the
    filter admits them. Both time out after ``mapping_timeout``.

hairpinning
    Linux does not hairpin by itself (a LAN packet to the NAT's own public address is delivered
    to the router). When on, the same map DNATs LAN packets sent to a public ``ip:port`` to the
    inside endpoint and SNATs them to the public address, so the receiver sees the sender's
    public endpoint. Hairpinned packets are admitted whatever the filtering (like most home
    routers).

input
    The router's own input chain drops unsolicited packets from the WAN unless
    ``conntrack_clash=True``: then an early packet from a peer is accepted by the router itself,
    leaves a conntrack entry, and the later outbound mapping must pick another port.

mapping timeout
    set per namespace with the ``nf_conntrack_udp_timeout*`` sysctls. Linux refreshes a mapping
    on inbound packets too (``inbound_refresh`` cannot be turned off). A NAT with several
    outside addresses masquerades to its first one (no paired pooling).
"""

from __future__ import annotations

import ipaddress

from ..errors import LabUnavailableError
from ..nat import AD, APD, EI, NatBehavior

TABLE = "p2plab-nat"


def check_expressible(behavior: NatBehavior, approximate: bool = False) -> list[str]:
    """Raise LabUnavailableError if nftables cannot build ``behavior``; return notes on approximations."""
    problems = []
    b = behavior
    if b.mapping == AD:
        problems.append(
            "address-dependent mapping: Linux conntrack NAT either keeps one outside port for every "
            "destination (endpoint-independent) or picks a new one per destination address AND port "
            "(masquerade random/fully-random); it has no mapping shared by the ports of one address")
    if b.mapping == EI and b.port_allocation != "preserving":
        problems.append(
            f"endpoint-independent mapping with {b.port_allocation} ports: Linux keeps the inside port "
            "when it can; asking it for random ports (masquerade random/fully-random) also makes "
            "the mapping depend on the destination")
    if b.mapping == APD and b.port_allocation != "random":
        problems.append(
            f"address-and-port-dependent mapping with {b.port_allocation} ports: Linux makes a new "
            "mapping per destination only when it randomises the port (fully-random); with "
            "port preservation the same port is reused for every destination")
    if problems and not approximate:
        raise LabUnavailableError(
            f"the real Linux lab cannot build NAT behaviour {b.name!r} with nftables: "
            + "; ".join(problems)
            + ". Run it in the simulator (p2plab.sim), use a preset the lab supports (full-cone, "
            "restricted-cone, port-restricted-cone, symmetric, linux-masquerade), or pass "
            "approximate=True to build the nearest Linux NAT.")
    notes = []
    if problems:
        approx = "masquerade fully-random" if b.mapping != EI else "masquerade (port-preserving)"
        notes.append(f"{b.name}: approximated by {approx} because " + "; ".join(problems))
    return notes


def masquerade_statements(behavior: NatBehavior) -> list[str]:
    """UDP/TCP with the port range and randomisation; everything else (ICMP) plain."""
    lo, hi = behavior.port_range
    ports = f" to :{lo}-{hi}" if (lo, hi) != (1, 65535) else ""
    flags = " fully-random" if behavior.mapping != EI else ""
    return [f"meta l4proto {{ udp, tcp }} masquerade{ports}{flags}", "masquerade"]


def nat_ruleset(behavior: NatBehavior, wan: str, lan: str, public_ips: list[str], lan_net: str,
                table: str = TABLE) -> str:
    """The nftables script (for ``nft -f -``) of one NAT router."""
    b = behavior
    t = f"{int(b.mapping_timeout)}s"
    pub = "{ " + ", ".join(public_ips) + " }"
    lan_net = str(ipaddress.ip_network(lan_net, strict=False))
    need_map = b.filtering in (EI, AD) or b.hairpinning
    shared = f"ip saddr {public_ips[0]} " if b.static else ""  # learn only the address the hosts share
    lines = [f"table ip {table} {{"]
    if need_map:
        lines += [
            "  # outside (proto . port) -> inside address . port, learned from translated outbound packets",
            "  map eim { type inet_proto . inet_service : ipv4_addr . inet_service; "
            f"flags dynamic,timeout; timeout {t}; size 65535; }}",
        ]
    if b.filtering == AD:
        lines += [
            "  # (proto . outside port . remote address) the inside has sent to: address-dependent filtering",
            "  set adf { type inet_proto . inet_service . ipv4_addr; "
            f"flags dynamic,timeout; timeout {t}; size 65535; }}",
        ]
    lines += ["  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;"]
    lines += static_rules(b, wan)[0]
    lines += forward_rules(b, wan, public_ips[0])
    if b.filtering == EI:
        lines.append(f'    iifname "{wan}" ct state new meta l4proto {{ udp, tcp }} '
                     "dnat ip to meta l4proto . th dport map @eim comment \"endpoint-independent filtering\"")
    elif b.filtering == AD:
        lines.append(f'    iifname "{wan}" ct state new meta l4proto {{ udp, tcp }} '
                     "meta l4proto . th dport . ip saddr @adf "
                     "dnat ip to meta l4proto . th dport map @eim comment \"address-dependent filtering\"")
    if b.hairpinning:
        lines.append(f'    iifname "{lan}" ip daddr {pub} ct state new meta l4proto {{ udp, tcp }} '
                     "dnat ip to meta l4proto . th dport map @eim comment \"hairpinning\"")
    lines += dmz_rules(b, wan, public_ips[0])
    lines += ["  }", "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
              *static_rules(b, wan)[1],
              *(f'    oifname "{wan}" ip saddr != {pub} {m}' for m in masquerade_statements(b))]
    if b.hairpinning:
        lines.append(f'    oifname "{lan}" ip saddr {lan_net} ct status dnat snat ip to {public_ips[0]} '
                     'comment "hairpinning: the receiver sees the public endpoint"')
    lines += ["  }"]
    if need_map:
        lines += ["  chain learn {", "    type filter hook postrouting priority srcnat + 10; policy accept;",
                  f'    oifname "{wan}" {shared}ct status snat meta l4proto {{ udp, tcp }} '
                  "update @eim { meta l4proto . th sport : ct original ip saddr . ct original proto-src }"]
        if b.filtering == AD:
            lines.append(f'    oifname "{wan}" ct status snat meta l4proto {{ udp, tcp }} '
                         "update @adf { meta l4proto . th sport . ip daddr }")
        lines += ["  }"]
    lines += [
        "  chain forward {", "    type filter hook forward priority filter; policy drop;",
        "    ct state established,related accept",
        *egress_rules(b, wan, lan),
        "    ct status dnat accept",
        "  }",
        "  chain input {", "    type filter hook input priority filter; policy accept;",
    ]
    if b.conntrack_clash:
        lines.append('    # conntrack_clash=True: the router accepts unsolicited WAN packets itself')
    else:
        lines += [f'    iifname "{wan}" ct state established,related accept',
                  f'    iifname "{wan}" icmp type echo-request accept',
                  f'    iifname "{wan}" drop comment "unsolicited packets for the router itself"']
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def egress_rules(behavior: NatBehavior, wan: str, lan: str) -> list[str]:
    """The forward chain's rules for traffic from the LAN out: everything, or - with an egress
    firewall (``behavior.egress_only``, the ``udp-blocked`` preset) - only the listed protocol and
    destination ports; the rest is counted and dropped with the reason in the rule's comment.
    Replies come back through ``ct state established,related accept`` as for any NAT."""
    if behavior.egress_only is None:
        return [f'    iifname "{lan}" oifname "{wan}" accept']
    rules = [f'    iifname "{lan}" oifname "{wan}" {proto} dport {port} accept' for proto, port in behavior.egress_only]
    allowed = " and ".join(f"{proto.upper()} to port {port}" for proto, port in behavior.egress_only)
    rules.append(f'    iifname "{lan}" oifname "{wan}" counter drop comment "{behavior.name} firewall: only {allowed} may leave"')
    return rules


def static_rules(behavior: NatBehavior, wan: str) -> tuple[list[str], list[str]]:
    """Static (one-to-one) NAT (``behavior.static``): a DNAT rule for prerouting and an SNAT rule for
    postrouting per (public address, inside address) pair; the SNAT rule comes before the masquerade."""
    pre = [f'    iifname "{wan}" ip daddr {pub} dnat ip to {inside} comment "static NAT"'
           for pub, inside in behavior.static]
    post = [f'    oifname "{wan}" ip saddr {inside} snat ip to {pub} comment "static NAT"'
            for pub, inside in behavior.static]
    return pre, post


def forward_rules(behavior: NatBehavior, wan: str, public_ip: str) -> list[str]:
    """Port forwards (``behavior.forwards``) as DNAT rules of the prerouting chain: a new flow to
    ``public_ip:port`` goes to the inside host; conntrack turns its replies back into ``public_ip:port``."""
    return [f'    iifname "{wan}" ip daddr {public_ip} {f.proto} dport {f.port} dnat ip to {f.to}:{f.to_port} '
            f'comment "port forward {f.proto} {f.port}"' for f in behavior.forwards]


def dmz_rules(behavior: NatBehavior, wan: str, public_ip: str) -> list[str]:
    """The DMZ host (``behavior.dmz``): the last prerouting rule sends every new inbound UDP/TCP flow
    that nothing above claimed to that inside host, on the same port."""
    if not behavior.dmz:
        return []
    return [f'    iifname "{wan}" ip daddr {public_ip} ct state new meta l4proto {{ udp, tcp }} '
            f'dnat ip to {behavior.dmz} comment "DMZ host"']


def sysctls(behavior: NatBehavior) -> dict[str, str]:
    t = str(int(behavior.mapping_timeout))
    unreplied = behavior.unreplied_timeout
    return {
        "net/netfilter/nf_conntrack_udp_timeout": t if unreplied is None else str(int(unreplied)),
        "net/netfilter/nf_conntrack_udp_timeout_stream": t,
        "net/netfilter/nf_conntrack_acct": "1",
    }


PORTMAP_TABLE = "p2plab-portmap"


def portmap_ruleset(mappings: list[tuple[int, str, int, str, int]], wan: str, table: str = PORTMAP_TABLE) -> str:
    """The nftables script that installs a router's PCP/NAT-PMP mappings (replacing the previous set).

    Each mapping ``(proto, inside ip, inside port, outside ip, outside port)`` becomes a DNAT rule
    (anyone's new flow to the outside port goes to the inside endpoint: endpoint-independent
    filtering) and an SNAT rule (the inside endpoint's own flows leave from the outside port, so the
    mapping is used both ways). Their chains run just before the router's ``p2plab-nat`` chains
    (priority dstnat - 1 and srcnat - 1), so they win over masquerade; the ``forward`` chain already
    accepts DNATed flows (``ct status dnat accept``).
    """
    names = {17: "udp", 6: "tcp"}
    lines = [f"table ip {table} {{}}", f"delete table ip {table}", f"table ip {table} {{",
             "  chain prerouting {", "    type nat hook prerouting priority dstnat - 1; policy accept;"]
    for proto, iip, iport, eip, eport in mappings:
        p = names[proto]
        lines.append(f'    iifname "{wan}" ip daddr {eip} {p} dport {eport} dnat ip to {iip}:{iport} '
                     f'comment "port mapping {eip}:{eport} -> {iip}:{iport}"')
    lines += ["  }", "  chain postrouting {", "    type nat hook postrouting priority srcnat - 1; policy accept;"]
    for proto, iip, iport, eip, eport in mappings:
        p = names[proto]
        lines.append(f'    oifname "{wan}" ip saddr {iip} {p} sport {iport} snat ip to {eip}:{eport} '
                     f'comment "port mapping {iip}:{iport} -> {eip}:{eport}"')
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
