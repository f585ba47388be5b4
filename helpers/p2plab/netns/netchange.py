"""The network change in the real Linux lab: Alice's namespace moves to another NAT mid-call.

``run_network_change()`` builds ``p2plab.scenarios.network_change.topology()`` (Alice behind
``nat-a``, Bob behind ``nat-b``, the mobile carrier's NAT ``nat-mobile``), runs p2plab's STUN and
TURN servers and two ``IceAgent``s on real sockets (``p2plab.aio.Driver``), lets them send
"media" every 0.2 s, and then **moves Alice**: ``move_host`` deletes her veth link to
``nat-a``'s LAN, gives her namespace a new veth into ``nat-mobile``'s bridge with the address
100.64.7.10 and a new default route. Her socket is bound to the wildcard address, so it keeps its
port and takes the new address, as on a phone.

With ``detect="interface"`` Alice's application learns of the move at once (the parent process
drops a file in the shared signalling folder, standing in for the OS's network-change
notification) and calls ``restart(gather=True)``. With ``detect="consent"`` it waits for
RFC 7675 consent to expire; the lab shortens consent to ``consent_timeout`` seconds (default 6,
checks every 1 s) so that a run takes seconds, not a minute - the real value is 30 s.

Times are ``time.monotonic()`` seconds, one clock for every process of the machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, LabUnavailableError

MEDIA_INTERVAL = 0.2


def move_host(lab: Any, host: str, behind: str, ip: str) -> str:
    """Move ``host``'s namespace behind the NAT ``behind`` with address ``ip`` (real links).

    The old uplink (a veth pair) is deleted, a new veth pair joins ``behind``'s LAN bridge, and the
    default route points at that NAT. The capture (if running) learns the new interfaces."""
    import ipaddress
    import subprocess

    from . import rootless
    from .lab import Interface

    topo = lab.topology
    node, nat = topo.nodes.get(host), topo.nodes.get(behind)
    if node is None or node.kind == "nat":
        raise ConfigurationError(f"{host!r} is not a host of this lab")
    if nat is None or nat.kind != "nat":
        raise ConfigurationError(f"{behind!r} is not a NAT of this lab; choose one of "
                                 f"{', '.join(n.name for n in topo.nats())}")
    if ipaddress.ip_address(ip) not in ipaddress.ip_network(nat.lan):
        raise ConfigurationError(f"{ip} is outside {behind}'s inside network {nat.lan}")
    old = next(i for i in lab.interfaces if i.node == host and i.role == "uplink")
    bridge = next(i for i in lab.interfaces if i.node == behind and i.role == "lan")
    ns, nat_ns = lab.ns(host), lab.ns(behind)
    up, down = f"p2plab-{lab.id}-mvu", f"p2plab-{lab.id}-mvd"
    plen = ipaddress.ip_network(nat.lan).prefixlen
    for argv in (["-n", ns, "link", "del", old.name],
                 ["link", "add", up, "netns", ns, "type", "veth", "peer", "name", down, "netns", nat_ns],
                 ["-n", nat_ns, "link", "set", down, "master", bridge.name], ["-n", nat_ns, "link", "set", down, "up"],
                 ["-n", ns, "addr", "add", f"{ip}/{plen}", "dev", up], ["-n", ns, "link", "set", up, "up"],
                 ["-n", ns, "route", "add", "default", "via", nat.lan_ip, "dev", up]):
        r = subprocess.run(rootless.wrap(["ip", *argv]), capture_output=True, text=True)
        if r.returncode:
            raise LabUnavailableError(f"moving {host} failed at 'ip {' '.join(argv)}': {r.stderr.strip()}")
    lab.interfaces = [i for i in lab.interfaces if not (i.node == host and i.role == "uplink")
                      and not (i.role == "lan-port" and i.label == f"lan-port-{host}")]
    lab.interfaces.append(Interface(host, up, "eth0", "uplink", [ip], down))
    lab.interfaces.append(Interface(behind, down, f"lan-port-{host}", "lan-port", [], up))
    cap = getattr(lab, "_capture", None)
    if cap is not None:
        from .capture import _ifindex_of

        for n, namespace in ((host, ns), (behind, nat_ns)):
            cap.ifindex[n] = {**cap.ifindex.get(n, {}), **_ifindex_of(namespace)}
    return f"{host} moved from {old.addresses[0] if old.addresses else '?'} behind {node.behind} to {ip} behind {behind}"


def agent_main(name: str, controlling: bool, ip: str, server_ip: str, signal_dir: str, detect: str,
               new_ip: str = "", consent_interval: float = 1.0, consent_timeout: float = 6.0,
               run_for: float = 20.0) -> dict[str, Any]:
    """One ICE agent with an application on real sockets (runs in a lab namespace).

    The socket is bound to the wildcard address (so it survives an address change); the agent is
    told its address. Signalling goes through JSON files in ``signal_dir``: ``<name>-<generation>.json``.
    Alice restarts (gathering again from ``new_ip``) when the file ``moved`` appears
    (``detect="interface"``) or when consent is lost; Bob restarts when Alice's new offer comes.
    Returns the steps (monotonic times) and media counts.
    """
    import asyncio
    import random

    from ..aio import Driver
    from ..ice.agent import IceAgent, IceConfig, IceStateError
    from ..ice.run import AGENT_PORT, STUN_PORT, TURN_USERS
    from ..ice.run import TURN_PORT as ICE_TURN_PORT
    from ..recorded import _candidate_from_json, _candidate_json

    other = "bob" if name == "alice" else "alice"
    box = Path(signal_dir)
    steps: list[list] = []
    media = {"sent": 0, "refused": 0, "received": 0}

    class Agent(IceAgent):
        def start(self, now: float, local_addr: Any = None) -> None:  # the wildcard socket's real address
            super().start(now, (ip, int(local_addr[1])))

    def put(gen: int, ufrag: str, password: str, candidates: list) -> None:
        mine = {"ufrag": ufrag, "password": password, "candidates": [_candidate_json(c) for c in candidates]}
        tmp = box / f".{name}-{gen}.json"
        tmp.write_text(json.dumps(mine))
        tmp.rename(box / f"{name}-{gen}.json")

    def get(gen: int) -> dict[str, Any] | None:
        p = box / f"{other}-{gen}.json"
        return json.loads(p.read_text()) if p.exists() else None

    async def main() -> dict[str, Any]:
        cfg = IceConfig(consent=True, consent_interval=consent_interval, consent_timeout=consent_timeout)
        agent = Agent(name, controlling=controlling, stun_server=(server_ip, STUN_PORT),
                      turn_server=(server_ip, ICE_TURN_PORT), turn_username=name,
                      turn_password=TURN_USERS[name], rng=random.Random(name), config=cfg)
        gen, remote_gen, restarted = 0, -1, False

        def on_event(ev: Any) -> None:
            nonlocal gen
            if ev.kind == "gathering-complete":
                put(gen, ev.ufrag, ev.password, ev.candidates)
                if gen:
                    steps.append(["gathered", time.monotonic(), name, f"{len(ev.candidates)} new candidates"])
            elif ev.kind == "completed":
                steps.append(["completed", time.monotonic(), name,
                              f"{ev.local.type} {ev.local.addr[0]}:{ev.local.addr[1]} <-> "
                              f"{ev.remote.type} {ev.remote.addr[0]}:{ev.remote.addr[1]}"])
            elif ev.kind == "consent-lost":
                steps.append(["consent-lost", time.monotonic(), name, ev.why])
            elif ev.kind == "data":
                media["received"] += 1
                if gen and media.get("first_after") is None:
                    media["first_after"] = time.monotonic()

        async with Driver(agent, ("0.0.0.0", AGENT_PORT), on_event=on_event) as d:
            deadline = time.monotonic() + run_for
            next_media = time.monotonic() + MEDIA_INTERVAL
            while time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                theirs = get(remote_gen + 1)
                if theirs is not None and (remote_gen + 1 <= gen or name == "bob"):
                    remote_gen += 1
                    if remote_gen > gen:  # bob: alice restarted; restart too and answer
                        gen = remote_gen
                        steps.append(["offer", time.monotonic(), name, "alice's new candidates arrived; restart"])
                        mine = d.call(agent.restart)
                        put(gen, mine["ufrag"], mine["password"], mine["candidates"])
                    elif gen:
                        steps.append(["answer", time.monotonic(), name, "bob's answer arrived"])
                    d.call(agent.set_remote, theirs["ufrag"], theirs["password"],
                           [_candidate_from_json(c) for c in theirs["candidates"]])
                if name == "alice" and not restarted and any(st[0] == "completed" for st in steps):
                    moved = (box / "moved").exists()
                    if (detect == "interface" and moved) or (detect == "consent" and agent.consent_lost):
                        restarted = True
                        gen = 1
                        steps.append(["restart", time.monotonic(), name, "restart(gather=True)"])
                        d.call(agent.restart, None, True, (new_ip, AGENT_PORT))
                if time.monotonic() >= next_media:
                    next_media += MEDIA_INTERVAL
                    if agent.data_pair is not None:
                        try:
                            d.call(agent.send_data, f"media {name}".encode())
                            media["sent"] += 1
                        except IceStateError:
                            media["refused"] += 1
                if name == "bob" and (box / "alice-done").exists():
                    break
                if name == "alice" and gen and agent.selected is not None and media.get("first_after") \
                        and time.monotonic() > media["first_after"] + 0.5:
                    break
            # finish together: close the agent (no more media or consent checks), say so, and keep the
            # socket open until the other side has closed too, so nothing meets a closed port (ICMP)
            sel, state = agent.selected, agent.state
            d.call(agent.close)
            (box / f"{name}-done").write_text("")
            until = time.monotonic() + 3.0
            while not (box / f"{other}-done").exists() and time.monotonic() < until:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
        return {"steps": steps, "media": media, "state": state,
                "selected": None if sel is None else [sel.local.type, list(sel.local.addr), sel.remote.type,
                                                      list(sel.remote.addr)]}

    return asyncio.run(main())


def run_network_change(detect: str = "interface", *, consent_timeout: float = 6.0, move_after: float = 1.0,
                       capture: bool = True) -> dict[str, Any]:
    """Run the network change in the real lab. Returns ``{"trace", "steps", "outcome"}``; each step's
    ``after_move`` is seconds after the move (real time, one machine clock)."""
    from .. import topology as t
    from ..recorded import ice_servers_main
    from ..scenarios.network_change import MOBILE_IP
    from ..scenarios.network_change import topology as nc_topology
    from .lab import Lab

    if detect not in ("consent", "interface"):
        raise ConfigurationError(f"detect is 'consent' or 'interface'; got {detect!r}")
    run_for = move_after + (consent_timeout if detect == "consent" else 0) + 8.0
    with Lab(nc_topology(), capture=capture) as lab:
        box = lab.workdir / "signaling"
        box.mkdir()
        srv = lab.start_python("server", ice_servers_main, t.SERVER_IP, run_for + 4)
        time.sleep(0.6)
        a = lab.start_python("alice", agent_main, "alice", True, t.ALICE_IP, t.SERVER_IP, str(box), detect,
                             MOBILE_IP, 1.0, consent_timeout, run_for)
        b = lab.start_python("bob", agent_main, "bob", False, t.BOB_IP, t.SERVER_IP, str(box), detect,
                             "", 1.0, consent_timeout, run_for)
        deadline = time.monotonic() + 15
        while not any(box.glob("alice-0.json")) or not any(box.glob("bob-0.json")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(move_after)
        moved_at = time.monotonic()
        note = move_host(lab, "alice", "nat-mobile", MOBILE_IP)
        (box / "moved").write_text(note)
        ra = a.result(run_for + 30)
        rb = b.result(30)
        srv.terminate()
        trace = lab.trace() if capture else None
    steps = [{"step": "moved", "after_move": 0.0, "who": "alice", "what": note}]
    for who, r in (("alice", ra), ("bob", rb)):
        for s, at, _, what in r["steps"]:
            steps.append({"step": s, "after_move": round(at - moved_at, 3), "who": who, "what": what})
    steps.sort(key=lambda s: s["after_move"])
    again = [s for s in steps if s["step"] == "completed" and s["after_move"] > 0]
    ok = ra.get("selected") is not None and len(again) >= 1 and ra.get("state") == "completed"
    first = ra["media"].pop("first_after", None)
    rb["media"].pop("first_after", None)
    outcome = {"ok": ok, "detect": detect, "reconnected": ok,
               "time_to_reconnect": max(s["after_move"] for s in again) if again else None,
               "new_pair": ra.get("selected"), "alice_media": ra["media"], "bob_media": rb["media"],
               "first_media_after_move": None if first is None else round(first - moved_at, 3),
               "reason": (f"alice moved to {MOBILE_IP} behind nat-mobile; ICE restarted and selected "
                          f"{ra['selected'][0]}-{ra['selected'][2]}" if ok else
                          f"ICE did not recover: alice {ra.get('state')}, bob {rb.get('state')}")}
    if not ok and not steps:
        raise LabUnavailableError("the network-change run produced nothing")
    return {"trace": trace, "steps": steps, "outcome": outcome}


__all__ = ["move_host", "agent_main", "run_network_change"]
