"""A real UDP hole punch in the Linux lab: ``run_punch(nat_a, nat_b)``.

The same sans-I/O protocol objects as the simulator (``p2plab.punch.RendezvousServer`` and
``PunchPeer``) run on real UDP sockets in the alice, bob and server namespaces (driven by
``p2plab.netns.runner``), through kernel NATs built from the presets.

``conntrack_clash=True`` opens nat-a's input chain; with ``bob_first=True`` Bob's first punches
reach nat-a before Alice has sent anything to Bob. The router accepts them itself and conntrack
keeps an entry ``bob -> nat-a:5000``; when Alice then punches Bob, her mapping can no longer
keep port 5000 (that reply tuple is taken), Bob keeps punching the old port and the punch fails.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..nat import NatBehavior, preset
from ..topology import SERVER_IP, Topology
from ..topology import punch as punch_topology

RENDEZVOUS_PORT = 7000
PEER_PORT = 5000


def make_peer(name: str, peer: str, server: list | tuple, start_delay: float = 0.0, give_up_after: float = 3.0,
              punch_interval: float = 0.1, try_private: bool = True, advertise: list | tuple | None = None):
    """A ``p2plab.punch.PunchPeer`` from JSON-friendly arguments (used by the runner)."""
    from ..punch import PunchConfig, PunchPeer

    cfg = PunchConfig(start_delay=start_delay, give_up_after=give_up_after, punch_interval=punch_interval,
                      try_private=try_private, advertise=(advertise[0], int(advertise[1])) if advertise else None)
    return PunchPeer(name, peer, (server[0], int(server[1])), cfg)


def _name(b: Any) -> str:
    return b if isinstance(b, str) else getattr(b, "name", "custom")


def run_punch(nat_a: str | NatBehavior = "port-restricted-cone", nat_b: str | NatBehavior = "port-restricted-cone",
              *, conntrack_clash: bool | None = None, bob_first: bool = False, head_start: float = 0.5,
              give_up_after: float = 3.0, capture: bool = True, topology: Topology | None = None,
              approximate: bool = False, portmap: str | None = None, upnp_stun: bool = True) -> dict[str, Any]:
    """Punch a hole between alice and bob through real kernel NATs; returns what happened.

    Keys: ``direct`` (bool), ``packets`` (punch packets sent), ``time`` (seconds from the first
    punch until both sides had a direct path, or None), ``reason`` (in words), ``world`` ("netns"),
    ``nat_a``/``nat_b``, ``events`` (per host), ``conntrack`` (DataFrame per NAT, taken at the end),
    ``trace`` (a ``Trace`` when ``capture``), ``timings``.

    ``conntrack_clash`` sets nat-a's ``conntrack_clash`` (router input open); ``bob_first`` gives
    Bob's punches a ``head_start`` (seconds) so they reach nat-a before Alice sends to Bob.

    ``portmap="pcp"`` or ``"natpmp"``: p2plab's port mapping server runs on nat-a
    (``p2plab.portmap.lab``); Alice asks it for a mapping of her port 5000 before punching and
    advertises the granted endpoint at the rendezvous. ``portmap`` (the key) says what she got.

    ``portmap="upnp"``: nat-a runs Debian's miniupnpd (UPnP IGD) instead and Alice uses p2plab's UPnP
    client (``p2plab.portmap.igd``). The lab router's external address is a reserved documentation
    address, so miniupnpd would refuse; with ``upnp_stun=True`` (the default) it first checks with
    the lab's STUN server that its WAN is reachable unchanged and then grants mappings
    (``ext_perform_stun``); ``upnp_stun=False`` shows the refusal.
    """
    from .lab import Lab

    a = preset(nat_a) if conntrack_clash is None else preset(nat_a, conntrack_clash=conntrack_clash)
    b = preset(nat_b)
    topo = topology or punch_topology(a, b)
    server = [SERVER_IP, RENDEZVOUS_PORT]
    delay_a = head_start if bob_first else 0.0
    duration = delay_a + give_up_after + 2.0
    out: dict[str, Any] = {"nat_a": _name(nat_a), "nat_b": _name(nat_b), "world": "netns"}
    t0 = time.perf_counter()
    if portmap is not None:
        from ..portmap import check_protocol

        portmap = "upnp" if str(portmap).strip().lower() == "upnp" else check_protocol(portmap)
    advertise = None
    with Lab(topo, capture=capture, approximate=approximate) as lab:
        out["lab"] = lab.id
        pm_srv = None
        if portmap is not None:
            from ..portmap import lab as pml

            alice = topo.nodes["alice"]
            gw = topo.nodes[alice.behind].lan_ip
            if portmap == "upnp":
                got, pm_srv = _upnp(lab, topo, upnp_stun)
            else:
                pm_srv = pml.start(lab, "nat-a")
                got = lab.run_python("alice", pml.request, portmap, gw, PEER_PORT, client_ip=alice.ip, wait=3.0)
            mapped = [e for e in got["events"] if e["kind"] == "mapped"]
            failed = [e for e in got["events"] if e["kind"] == "failed"]
            out["portmap"] = {"protocol": portmap, "ok": bool(mapped), "external": got.get("external"),
                              "lifetime": mapped[0]["lifetime"] if mapped else None,
                              "result": "SUCCESS" if mapped else (failed[0]["result"] if failed else None),
                              "message": failed[0]["message"] if failed else "",
                              "warning": mapped[0].get("warning", "") if mapped else ""}
            if portmap == "upnp" and failed:
                out["portmap"]["code"] = failed[0].get("code")
            advertise = got.get("external") if mapped else None
        srv = lab.start_protocol("server", "p2plab.punch:RendezvousServer", port=RENDEZVOUS_PORT,
                                 duration=duration + 1.0)
        peers = {}
        for name, other, delay in (("alice", "bob", delay_a), ("bob", "alice", 0.0)):
            peers[name] = lab.start_protocol(
                name, "p2plab.netns.punchlab:make_peer", port=PEER_PORT, duration=duration,
                stop_on=("connected", "failed"), linger=0.5,
                kwargs={"name": name, "peer": other, "server": server, "start_delay": delay,
                        "give_up_after": give_up_after,
                        **({"advertise": advertise} if advertise and name == "alice" else {})})
        results = {}
        for name, proc in peers.items():
            proc.wait(duration + 10)
            results[name] = json.loads(proc.json_result.read_text())
        srv.terminate()
        srv.wait(5)
        if pm_srv is not None:
            out["portmap"]["server_log"] = (pm_srv.log().splitlines() if portmap == "upnp"
                                            else pml.stop(lab, pm_srv)["log"])
        out["conntrack"] = {n.name: lab.conntrack(n.name) for n in topo.nats()}
        out["trace"] = lab.trace() if capture else None
        out["notes"] = list(lab.notes)
    out["timings"] = {"total": round(time.perf_counter() - t0, 3), **{k: round(v, 4) for k, v in lab.timings.items()}}
    out["events"] = {name: r.get("events", []) for name, r in results.items()}
    _outcome(out, results, a, b)
    if out.get("portmap") is not None:
        from ..punch import portmap_sentence

        out["reason"] = f"{portmap_sentence(out['portmap'])} {out['reason']}"
    return out


def _upnp(lab: Any, topo: Topology, stun: bool) -> tuple[dict[str, Any], Any]:
    """miniupnpd on nat-a (checking its WAN with STUN first when ``stun``); Alice maps PEER_PORT with UPnP."""
    from .. import systools
    from ..errors import ConfigurationError
    from ..portmap import igd
    from ..portmap import lab as pml

    if systools.find("miniupnpd") is None:
        raise ConfigurationError("--portmap upnp runs Debian's miniupnpd on the lab router, and it is not "
                                 f"installed: {systools.install_fix(['miniupnpd-nftables'])}")
    addr = pml.start_stun(lab)[1] if stun else None
    daemon = pml.start_miniupnpd(lab, "nat-a", upnp=True, stun=addr)
    alice = topo.nodes["alice"]
    router = topo.nodes[alice.behind]
    got = lab.run_python("alice", igd.map_port, PEER_PORT, client_ip=alice.ip, lan=router.lan,
                         gateway=router.lan_ip, lease=3600)
    return got, daemon


def _outcome(out: dict, results: dict, a: NatBehavior, b: NatBehavior) -> None:
    for name, r in results.items():
        if not r.get("ok", False):
            raise RuntimeError(f"the punch peer on {name} crashed:\n{r.get('error', '')}")
    ev = {name: {e["kind"]: e for e in r["events"]} for name, r in results.items()}
    packets = sum(next((e.get("punches", 0) for e in r["events"] if e["kind"] in ("connected", "failed")), 0)
                  for r in results.values())
    out["packets"] = packets
    conn = {n: e["connected"] for n, e in ev.items() if "connected" in e}
    if len(conn) == 2:
        starts = [c["time"] - c["after"] for c in conn.values()]
        out["direct"] = True
        out["time"] = round(max(c["time"] for c in conn.values()) - min(starts), 6)
        out["reason"] = (f"direct path: alice talks to bob at {_fmt(conn['alice']['endpoint'])}, bob to alice at "
                         f"{_fmt(conn['bob']['endpoint'])}. Each side's outbound punch opened its own kernel NAT "
                         "(a conntrack entry) for the other's punches.")
        return
    out["direct"] = False
    out["time"] = None
    out["reason"] = _why_not(out, ev, a, b)


def _fmt(ep) -> str:
    return f"{ep[0]}:{ep[1]}"


def _why_not(out: dict, ev: dict, a: NatBehavior, b: NatBehavior) -> str:
    reasons = []
    for me, other, nat in (("alice", "bob", "nat-a"), ("bob", "alice", "nat-b")):
        df = out["conntrack"].get(nat)
        if df is None or df.empty:
            continue
        mine = df[(df["kind"] == "mapping") & (df["inside"].str.endswith(f":{PEER_PORT}"))]
        to_server = set(mine.loc[mine["remote"].str.endswith(f":{RENDEZVOUS_PORT}"), "outside"])
        to_peer = set(mine.loc[~mine["remote"].str.endswith(f":{RENDEZVOUS_PORT}"), "outside"])
        changed = to_peer - to_server
        if to_server and changed:
            reasons.append(f"{nat} gave {me} {', '.join(sorted(to_server))} toward the server but "
                           f"{', '.join(sorted(changed))} toward {other}, so {other} punched a port that was "
                           "never opened for it")
            local = df[df["kind"] == "to the router itself"]
            if len(local) and sorted(to_server)[0] in set(local["outside"]):
                row = local[local["outside"] == sorted(to_server)[0]].iloc[0]
                reasons.append(f"conntrack clash on {nat}: {other}'s early packet from {row['remote']} to "
                               f"{row['outside']} was accepted by the router itself (input chain open) and "
                               f"left a conntrack entry, so {me}'s mapping could not keep port "
                               f"{row['outside'].rsplit(':', 1)[1]}")
    trace = out.get("trace")
    if trace is not None and len(trace):
        df = trace.df
        drops = df[(df["action"] == "dropped") & df["summary"].str.startswith("P2P PUNCH")]
        for node, reason in drops.groupby("node", sort=False)["reason"].first().items():
            if node != "internet":
                reasons.append(f"{node} dropped punches: {reason}")
    for name, e in ev.items():
        if "failed" in e:
            reasons.append(f"{name}: {e['failed'].get('reason', 'failed')}")
    return "no direct path. " + " | ".join(reasons or ["neither peer heard from the other"])
