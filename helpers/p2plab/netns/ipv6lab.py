"""IPv6 through two stateful firewalls in the real lab: ``run_ipv6_punch()``.

The lab of ``p2plab.topology.punch`` gets IPv6 next to its IPv4 (which it does not use here):

* Alice ``2001:db8:a::10`` behind ``nat-a`` (LAN ``2001:db8:a::/64``), Bob ``2001:db8:b::20`` behind
  ``nat-b`` (``2001:db8:b::/64``); each router reaches the core over a link of its own
  (``2001:db8:ff0a::/64``, ``2001:db8:ff0b::/64``) and the core routes only the two home prefixes,
  with no default route, so nothing leaves the lab.
* Nothing translates addresses. Each router runs the firewall RFC 6092 asks for, in nftables
  (``table ip6``): forward what the inside sends out, and let in only what conntrack knows as the
  reply to it (``ct state established,related``), which filters by address and port.

Alice and Bob know each other's addresses (signalling is not the point here) and each sends
``count`` datagrams ``gap`` apart, Bob starting ``bob_delay`` later, or not at all
(``bob_sends=False``). A small capturer in every namespace records the datagrams, and the trace
says where each was forwarded, delivered or dropped.
"""

from __future__ import annotations

import time
from typing import Any

from .. import topology as t
from ..topology import INTERNET

ALICE6, BOB6 = "2001:db8:a::10", "2001:db8:b::20"
ALICE_PORT, BOB_PORT = 5000, 6000
HOMES = {"nat-a": ("2001:db8:a::1", "2001:db8:a::/64", "2001:db8:ff0a::", "alice", ALICE6),
         "nat-b": ("2001:db8:b::1", "2001:db8:b::/64", "2001:db8:ff0b::", "bob", BOB6)}
TABLE6 = "p2plab-fw6"


def firewall6_ruleset(lan: str, wan: str) -> str:
    """The nftables script of a home router's IPv6 firewall (no NAT): inside out, replies back in."""
    return (f"table ip6 {TABLE6} {{\n"
            "  chain forward {\n"
            "    type filter hook forward priority filter; policy drop;\n"
            "    ct state established,related accept comment \"replies to what the inside sent\"\n"
            f"    iifname \"{lan}\" oifname \"{wan}\" accept comment \"the inside may send anything out\"\n"
            "  }\n"
            "}\n")


def punch6_main(ip: str, port: int, peer: list, name: str, count: int, gap: float, delay: float,
                send: bool = True, linger: float = 0.3, start_at: float = 0.0) -> dict[str, Any]:
    """Send ``count`` datagrams to ``peer`` ``gap`` apart, the first ``delay`` after the wall-clock time
    ``start_at`` (or after starting), unless ``send`` is False; collect what arrives until ``linger``
    after the last send. (The lab's namespaces share one clock, so two peers keep their order.)"""
    import socket
    import time as _time

    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind((ip, port))
    sock.settimeout(0.01)
    t0 = _time.monotonic() + max(0.0, start_at - _time.time()) if start_at else _time.monotonic()
    sends = [delay + i * gap for i in range(count)] if send else []
    end = (sends[-1] if sends else delay + count * gap) + linger
    got, sent = [], 0
    while (now := _time.monotonic() - t0) < end:
        if sent < len(sends) and now >= sends[sent]:
            sent += 1
            sock.sendto(f"{name} punch {sent}".encode(), (peer[0], int(peer[1])))
        try:
            data, addr = sock.recvfrom(2048)
        except TimeoutError:
            continue
        got.append(data.decode(errors="replace"))
    sock.close()
    return {"sent": sent, "got": got}


def _setup(lab) -> None:
    from .. import systools
    from ..errors import LabUnavailableError
    from .nat64lab import _sh

    # no duplicate address detection (nobody else is on these links): with it, each link's fe80:: address
    # stays "tentative" for about a second, and neighbour discovery across the link can fail meanwhile
    v6on = ("for f in /proc/sys/net/ipv6/conf/*/accept_dad; do echo 0 > $f; done; "
            "for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 0 > $f; done; "
            "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding; ")
    names = {(i.node, i.label): i.name for i in lab.interfaces}
    core = []
    for router, (gw, net, link, host, addr) in HOMES.items():
        wan, lan, eth = names[(router, "wan")], names[(router, "lan")], names[(host, "eth0")]
        down = names[(INTERNET, f"to-{router}")]
        core += [f"ip addr add {link}1/64 dev {down} nodad", f"ip -6 route add {net} via {link}2 dev {down}"]
        _sh(lab, router, v6on + f"ip addr add {link}2/64 dev {wan} nodad && ip addr add {gw}/64 dev {lan} nodad && "
            f"ip -6 route add default via {link}1 dev {wan}")
        _sh(lab, host, v6on + f"ip addr add {addr}/64 dev {eth} nodad && ip -6 route add default via {gw} dev {eth}")
        r = lab.exec(router, [systools.require("nft"), "-f", "-"], input=firewall6_ruleset(lan, wan))
        if r.returncode:
            raise LabUnavailableError(f"the IPv6 firewall of {router} could not be loaded: {r.stderr.strip()[:300]}")
    _sh(lab, INTERNET, v6on + " && ".join(core))


def run_ipv6_punch(bob_sends: bool = True, count: int = 3, gap: float = 0.1, bob_delay: float = 0.05,
                   capture: bool = True) -> dict[str, Any]:
    """Run the punch in a fresh lab. Returns ``trace`` (every datagram at every interface, IPv6),
    ``alice``/``bob`` (what each sent and got), ``outcome`` (``ok``: both got the other's datagrams,
    or with ``bob_sends=False``: none of Alice's got through) and ``ruleset`` (nat-b's firewall)."""
    from .lab import Lab
    from .nat64lab import capture_main, wait_ready

    with Lab(t.punch("port-restricted-cone", "port-restricted-cone"), capture=False) as lab:
        _setup(lab)
        stop = lab.workdir / "capture.stop"
        nodes = [INTERNET, "nat-a", "nat-b", "alice", "bob"] if capture else []
        caps = {n: lab.start_python(n, capture_main, 10.0, ALICE_PORT, str(stop)) for n in nodes}
        wait_ready(list(caps.values()))
        epoch = time.time()
        start = epoch + 0.9  # both peers have imported and opened their sockets by then
        b = lab.start_python("bob", punch6_main, BOB6, BOB_PORT, [ALICE6, ALICE_PORT], "bob", count, gap,
                             bob_delay, send=bob_sends, start_at=start)
        a = lab.start_python("alice", punch6_main, ALICE6, ALICE_PORT, [BOB6, BOB_PORT], "alice", count, gap, 0.0,
                             start_at=start)
        alice, bob = a.result(20), b.result(20)
        stop.touch()
        seen = {n: c.result(10) for n, c in caps.items()}
        ruleset = lab.exec("nat-b", ["nft", "list", "table", "ip6", TABLE6]).stdout
        labels = {(i.node, i.name): i.label for i in lab.interfaces}
    trace = _trace(seen, labels, epoch) if capture else None
    a_got = any(m.startswith("bob") for m in alice["got"])
    b_got = any(m.startswith("alice") for m in bob["got"])
    ok = (a_got and b_got) if bob_sends else not b_got
    reason = (f"alice got {len(alice['got'])} of bob's datagrams and bob {len(bob['got'])} of alice's"
              + ("" if bob_sends else ": bob sent nothing, so his firewall let nothing in"))
    return {"trace": trace, "alice": alice, "bob": bob, "ruleset": ruleset,
            "outcome": {"ok": ok, "direct": bool(a_got and b_got), "reason": reason}}


def _trace(seen: dict[str, list[dict]], labels: dict, epoch: float):
    """One trace from the capturers: hosts' packets ``sent``/``delivered``; a router's incoming packet
    ``forwarded`` when it left again, else ``dropped`` (no conntrack entry for it)."""
    from ..trace import COLUMNS, Trace, _row_from_raw

    items = []
    for node, pkts in seen.items():
        for p in pkts:
            label = labels.get((node, p["ifname"]))
            if label is None or label.startswith("lan-port"):
                continue  # loopback, or a bridge port (seen again on 'lan')
            items.append((p["wall"] - epoch, node, label, p["outgoing"], bytes.fromhex(p["hex"])))
    items.sort(key=lambda it: (it[0], it[3]))
    rows, packets = [], []
    ids: dict[bytes, int] = {}
    for ts, node, label, out, raw in items:
        row = list(_row_from_raw(ts, node, label, "out" if out else "in", "captured", raw, ""))
        row[COLUMNS.index("packet_id")] = ids.setdefault(raw[48:], 61000 + len(ids))
        rows.append(row)
        packets.append(raw)
    act, why = COLUMNS.index("action"), COLUMNS.index("reason")
    for i, row in enumerate(rows):
        node = row[1]
        if node in ("alice", "bob"):
            row[act] = "sent" if row[3] == "out" else "delivered"
        elif row[3] == "in":
            left = any(r[1] == node and r[3] == "out" and packets[j][48:] == packets[i][48:]
                       for j, r in enumerate(rows))
            row[act] = "forwarded" if left else "dropped"
            if not left:
                row[why] = (f"{node}'s IPv6 firewall: no conntrack entry for [{row[4]}]:{row[5]} > [{row[6]}]:"
                            f"{row[7]}, so it is unsolicited (nftables: policy drop)")
        else:
            row[act] = "forwarded"
    return Trace([tuple(r) for r in rows], packets, world="netns", meta={"epoch": epoch})
