"""The recorded world: captures made in the real Linux lab, shipped in ``data/`` for everyone else.

``python -m p2plab record`` (root, Linux) runs each key scenario in the netns world and saves

* ``data/<name>.pcap`` - every packet at every interface, a pcap that Wireshark/tshark open,
* ``data/<name>.csv``  - the trace's rows (node, interface, direction, action, reason, ...),
* ``data/<name>.json`` - the outcome (direct or not, reason) and how it was recorded.

``load(name)`` reads them back as a ``Trace`` (world ``"recorded"``), so every figure works the same.
``real_run(name)`` is what notebooks call: it runs the scenario in the real lab when this machine
can, and otherwise loads the recording, and says which happened.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigurationError, TraceError
from .sansio import Addr, DatagramProtocol
from .trace import COLUMNS, Trace

DATA = Path(__file__).resolve().parents[2] / "data"


class Echo(DatagramProtocol):
    """Sends every datagram back to where it came from."""

    def datagram_received(self, data: bytes, addr: Addr, now: float) -> None:
        self.now = now
        self.send(data, addr)
        self.emit("echoed", peer=addr, size=len(data))


class Hello(DatagramProtocol):
    """Sends ``text`` to ``target`` ``count`` times, ``interval`` apart, after ``delay``; reports replies."""

    def __init__(self, target: Addr, text: str = "hello", count: int = 1, interval: float = 0.2,
                 delay: float = 0.0) -> None:
        super().__init__()
        self.target = (target[0], int(target[1]))
        self.text = text
        self.left = count
        self.interval = interval
        self.delay = delay

    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        self.set_timer(now + self.delay, "send")

    def on_timer(self, name: str, now: float) -> None:
        if self.left > 0:
            self.send(self.text.encode(), self.target)
            self.left -= 1
            if self.left:
                self.set_timer(now + self.interval, "send")

    def datagram_received(self, data: bytes, addr: Addr, now: float) -> None:
        self.now = now
        self.emit("reply", peer=addr, text=data.decode("utf-8", "replace"))


@dataclass
class Scenario:
    name: str
    what: str
    run: Callable[[], tuple[Trace, dict[str, Any]]]


def _lab_run(topo, starts: list[tuple[str, str, int, dict, float]], wait: float) -> tuple[Trace, dict]:
    """Start protocols (host, factory, port, kwargs, duration) in a fresh lab, capture, return trace + events."""
    from .netns import Lab

    events: dict[str, list] = {}
    with Lab(topo, capture=True) as lab:
        procs = [(host, lab.start_protocol(host, factory, port=port, kwargs=kwargs, duration=duration))
                 for host, factory, port, kwargs, duration in starts]
        for host, proc in procs:
            proc.wait(wait + 10)
            try:
                events[host] = json.loads(proc.json_result.read_text()).get("events", [])
            except (OSError, ValueError):
                events[host] = []
        trace = lab.trace()
    return trace, {"events": events}


def _direct() -> tuple[Trace, dict]:
    from . import topology as t

    trace, out = _lab_run(t.direct(), [
        ("bob", "p2plab.recorded:Echo", 6000, {}, 0.6),
        ("alice", "p2plab.recorded:Hello", 5000, {"target": [t.BOB_PUBLIC_IP, 6000], "text": "hello bob"}, 0.3),
    ], 1)
    out["ok"] = any(e["kind"] == "reply" for e in out["events"]["alice"])
    out["reason"] = "alice and bob have public addresses: nothing stands between them"
    return trace, out


def _nat_translation() -> tuple[Trace, dict]:
    from . import topology as t

    trace, out = _lab_run(t.one_nat("port-restricted-cone"), [
        ("server", "p2plab.recorded:Echo", 7000, {}, 0.9),
        ("alice", "p2plab.recorded:Hello", 5000, {"target": [t.SERVER_IP, 7000], "text": "hello server"}, 0.3),
        ("bob", "p2plab.recorded:Hello", 6000,
         {"target": [t.ALICE_NAT_IP, 5000], "text": "unsolicited", "delay": 0.1}, 0.3),
    ], 1)
    out["ok"] = not any(e["kind"] == "reply" for e in out["events"]["bob"])
    out["reason"] = "alice's outbound packet created a mapping; bob's unsolicited packet found none it may use"
    return trace, out


def _stun() -> tuple[Trace, dict]:
    from . import topology as t

    trace, out = _lab_run(t.one_nat("port-restricted-cone"), [
        ("server", "p2plab.stun.server:StunServer", 3478, {}, 0.7),
        ("alice", "p2plab.stun.client:StunClient", 5000, {"server": [t.SERVER_IP, 3478]}, 0.3),
    ], 1)
    mapped = [e for e in out["events"]["alice"] if e["kind"] == "mapped"]
    out["ok"] = bool(mapped)
    out["reason"] = f"mapped address {mapped[0]['address']}" if mapped else "no answer from the STUN server"
    return trace, out


def _punch(nat_a: str, nat_b: str, **kw: Any) -> Callable[[], tuple[Trace, dict]]:
    def run() -> tuple[Trace, dict]:
        from .netns import run_punch

        res = run_punch(nat_a, nat_b, **kw)
        out = {"ok": res["direct"], "direct": res["direct"], "reason": res["reason"], "nat_a": nat_a, "nat_b": nat_b}
        if res.get("portmap"):
            out["portmap"] = {k: v for k, v in res["portmap"].items() if k != "server_log"}
        return res["trace"], out

    return run


def _portmap_cgn() -> tuple[Trace, dict]:
    from . import topology as t

    topo = t.cgn("symmetric", "port-restricted-cone", "symmetric")
    return _punch("symmetric", "symmetric", portmap="pcp", topology=topo, give_up_after=1.0)()


TURN_USER, TURN_PASSWORD, TURN_PORT = "alice", "secret", 3478


def turn_server_main(ip: str, port: int, seconds: float) -> dict[str, Any]:
    """Run p2plab's TURN server on real sockets for ``seconds`` (in a lab namespace)."""
    import asyncio

    from .aio import Driver
    from .turn.server import TurnServer

    async def main() -> dict[str, Any]:
        server = TurnServer({TURN_USER: TURN_PASSWORD}, allowed_peers=["198.51.100.0/24", "203.0.113.0/24"])
        async with Driver(server, (ip, port)):
            await asyncio.sleep(seconds)
        return dict(server.stats)

    return asyncio.run(main())


def udp_echo_main(ip: str, port: int, seconds: float) -> int:
    """Echo every UDP datagram back for ``seconds``; returns how many were echoed."""
    import socket
    import time

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, port))
    sock.settimeout(0.1)
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        try:
            data, addr = sock.recvfrom(65535)
        except TimeoutError:
            continue
        sock.sendto(data, addr)
        n += 1
    sock.close()
    return n


def turn_client_main(ip: str, server: list, peer: list, lines: list[str], timeout: float = 5.0) -> dict[str, Any]:
    """Allocate a relay, permit ``peer``, send ``lines`` through the relay, collect the echoes."""
    import asyncio

    from .aio import Driver
    from .turn.client import TurnClient

    async def main() -> dict[str, Any]:
        client = TurnClient((server[0], int(server[1])), TURN_USER, TURN_PASSWORD)
        out: dict[str, Any] = {"replies": []}
        async with Driver(client, (ip, 5000)) as d:  # the client allocates as soon as it starts
            ev = await d.wait_for(("allocated", "error", "timeout"), timeout)
            if ev.kind != "allocated":
                out["error"] = f"{ev.kind}: {ev.data}"
                return out
            out["relayed"] = list(ev.relayed)
            out["mapped"] = list(ev.mapped)
            d.call(client.create_permission, (peer[0], int(peer[1])))
            await d.wait_for(("permission", "error"), timeout)
            for line in lines:
                d.call(client.send_to, line.encode(), (peer[0], int(peer[1])))
                got = await d.wait_for("data", timeout)
                out["replies"].append(bytes(got.payload).decode())
            # give the relay back (Refresh LIFETIME=0) and wait for the answer before the socket closes
            d.call(client.close)
            await d.wait_for(("deallocated", "error", "timeout"), timeout)
        return out

    return asyncio.run(main())


def _turn_relay() -> tuple[Trace, dict]:
    from . import topology as t
    from .netns import Lab

    with Lab(t.one_nat("symmetric"), capture=True) as lab:
        srv = lab.start_python("server", turn_server_main, t.SERVER_IP, TURN_PORT, 4.0)
        echo = lab.start_python("bob", udp_echo_main, t.BOB_PUBLIC_IP, 6000, 4.0)
        time.sleep(0.6)  # let the server import and bind before alice's first Allocate
        result = lab.run_python("alice", turn_client_main, t.ALICE_IP, [t.SERVER_IP, TURN_PORT],
                                [t.BOB_PUBLIC_IP, 6000], ["hello bob", "via the relay"], timeout=30)
        trace = lab.trace()
        srv.terminate()
        echo.terminate()
    ok = result.get("replies") == ["hello bob", "via the relay"]
    reason = (f"alice's relay {result.get('relayed')} carried her lines to bob and his echoes back"
              if ok else f"relay failed: {result}")
    return trace, {"ok": ok, "reason": reason, "relayed": result.get("relayed")}


def ice_servers_main(ip: str, seconds: float, certdir: str | None = None) -> dict[str, Any]:
    """p2plab's STUN server (3478) and TURN server (3479) on real sockets for ``seconds``.

    With ``certdir`` (a folder holding the lab certificate, ``turn.stream.lab_certificate``) the
    TURN server also listens on TCP 3479 and on TLS 443 (``ice.run.TURN_TLS_PORT``), for clients
    in networks that block UDP."""
    import asyncio

    from .aio import Driver
    from .ice.run import STUN_PORT, TURN_TLS_PORT, TURN_USERS
    from .ice.run import TURN_PORT as ICE_TURN_PORT
    from .stun.server import StunServer
    from .turn.server import TurnServer

    async def main() -> dict[str, Any]:
        stun, turn = StunServer(), TurnServer(dict(TURN_USERS))
        async with Driver(stun, (ip, STUN_PORT)), Driver(turn, (ip, ICE_TURN_PORT)) as td:
            listeners = []
            if certdir is not None:
                from .turn.stream import lab_certificate, serve_streams, server_ssl_context

                cert, key = lab_certificate(certdir, hosts=(ip,))
                listeners.append(await serve_streams(td, ip, ICE_TURN_PORT))
                listeners.append(await serve_streams(td, ip, TURN_TLS_PORT, server_ssl_context(cert, key)))
            await asyncio.sleep(seconds)
            for listener in listeners:
                listener.close()
        return {"stun": dict(stun.stats), "turn": dict(turn.stats)}

    return asyncio.run(main())


def _candidate_json(c: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(c)


def _candidate_from_json(d: dict[str, Any]) -> Any:
    from .ice.candidates import Candidate

    d = dict(d)
    for key in ("addr", "base", "related", "server"):
        if d.get(key) is not None:
            d[key] = (d[key][0], int(d[key][1]))
    return Candidate(**d)


def ice_agent_main(name: str, controlling: bool, ip: str, server_ip: str, signal_dir: str,
                   timeout: float = 8.0, turn_urls: list[str] | None = None, cafile: str | None = None,
                   gather: tuple[int, int] | None = None, connect_timeout: float = 3.0) -> dict[str, Any]:
    """One ICE agent on real sockets; candidates are exchanged through files in ``signal_dir``
    (the lab's hosts share the file system: a stand-in for a signaling server).

    ``turn_urls`` (RFC 7065 URIs, e.g. ``turns:192.0.2.1:443``): TURN servers tried in order, over
    UDP, TCP or TLS (trusting the certificate ``cafile``); default: UDP TURN on port 3479 only.
    ``gather``: (requests, wait factor) of the STUN/UDP TURN transactions while gathering (RFC 8489
    Rc and Rm) - fewer means a blocked UDP server is given up sooner; ``connect_timeout``: seconds to wait
    for a TCP/TLS connection to a TURN server."""
    import asyncio
    import contextlib
    import random
    from pathlib import Path

    from .aio import Driver
    from .ice.agent import IceAgent, IceConfig
    from .ice.run import AGENT_PORT, STUN_PORT, TURN_USERS
    from .ice.run import TURN_PORT as ICE_TURN_PORT

    other = "bob" if name == "alice" else "alice"
    box = Path(signal_dir)

    async def main() -> dict[str, Any]:
        config = IceConfig(gather_rc=gather[0], gather_rm=gather[1]) if gather else None
        turn: dict[str, Any] = ({"turn_servers": list(turn_urls)} if turn_urls
                                else {"turn_server": (server_ip, ICE_TURN_PORT)})
        agent = IceAgent(name, controlling=controlling, stun_server=(server_ip, STUN_PORT),
                         turn_username=name, turn_password=TURN_USERS[name], rng=random.Random(name),
                         config=config, **turn)
        if turn_urls:
            from .ice.streams import IceDriver

            driver: Driver = IceDriver(agent, (ip, AGENT_PORT), cafile=cafile, connect_timeout=connect_timeout)
        else:
            driver = Driver(agent, (ip, AGENT_PORT))
        async with driver as d:
            ev = await d.wait_for("gathering-complete", timeout)
            mine = {"ufrag": ev.ufrag, "password": ev.password,
                    "candidates": [_candidate_json(c) for c in ev.candidates]}
            tmp = box / f".{name}.json"
            tmp.write_text(json.dumps(mine))
            tmp.rename(box / f"{name}.json")
            deadline = time.monotonic() + timeout
            while not (box / f"{other}.json").exists():
                if time.monotonic() > deadline:
                    return {"ok": False, "reason": f"no candidates from {other}"}
                await asyncio.sleep(0.01)
            theirs = json.loads((box / f"{other}.json").read_text())
            d.call(agent.set_remote, theirs["ufrag"], theirs["password"],
                   [_candidate_from_json(c) for c in theirs["candidates"]])
            try:
                done = await d.wait_for(("completed", "failed"), timeout)
            except TimeoutError:  # checks still running: every pair so far has failed or is unanswered
                from .sansio import Event

                done = Event("failed", d.now(), {"reason": f"no working candidate pair within {timeout:g} s of "
                                                           f"the checks starting ({agent.state})"})
            await asyncio.sleep(0.3)  # let the last answers and nominations cross
            # finish together: each agent closes (deleting its TURN allocation) once both are done, and
            # keeps its socket open until the server answered, so no packet meets a closed port
            (box / f"{name}.done").write_text("1")
            deadline = time.monotonic() + timeout
            while not (box / f"{other}.done").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            d.call(agent.close)
            with contextlib.suppress(Exception):
                await d.wait_for("released", 3.0)
            await asyncio.sleep(0.2)
            extra = {"gathered_after": ev.time, "candidates": [str(c) for c in ev.candidates],
                     "turn_attempts": list(agent.turn_attempts), "notes": list(agent.notes),
                     "connections": list(getattr(d, "connections", []))}
            if done.kind == "failed":
                return {"ok": False, "reason": done.reason, **extra}
            local = done.local
            return {"ok": True, "local": [local.type, list(local.addr)],
                    "remote": [done.remote.type, list(done.remote.addr)], "after": done.after,
                    "relay_protocol": local.relay_protocol if local.type == "relay" else None,
                    "relay_server": list(local.server) if local.type == "relay" and local.server else None, **extra}

    return asyncio.run(main())


def _ice(nat_a: str, nat_b: str) -> Callable[[], tuple[Trace, dict]]:
    def run() -> tuple[Trace, dict]:
        from . import topology as t
        from .netns import Lab

        with Lab(t.punch(nat_a, nat_b), capture=True) as lab:
            box = lab.workdir / "signaling"
            box.mkdir()
            srv = lab.start_python("server", ice_servers_main, t.SERVER_IP, 12.0)
            time.sleep(0.6)  # let the servers import and bind before the agents gather
            a = lab.start_python("alice", ice_agent_main, "alice", True, t.ALICE_IP, t.SERVER_IP, str(box))
            b = lab.start_python("bob", ice_agent_main, "bob", False, t.BOB_IP, t.SERVER_IP, str(box))
            ra, rb = a.result(60), b.result(60)
            trace = lab.trace()
            srv.terminate()
        ok = bool(ra.get("ok") and rb.get("ok"))
        if ok:
            direct = "relay" not in (ra["local"][0], ra["remote"][0])
            reason = (f"alice nominated her {ra['local'][0]} candidate with bob's {ra['remote'][0]} candidate "
                      f"({'direct' if direct else 'through the TURN relay'})")
        else:
            direct, reason = False, f"ICE failed: alice {ra.get('reason')}, bob {rb.get('reason')}"
        return trace, {"ok": ok, "direct": direct, "reason": reason, "alice": ra, "bob": rb}

    return run


def _portmap_upnp() -> tuple[Trace, dict]:
    from .netns.upnplab import run_upnp_story

    r = run_upnp_story()
    found = next((e for e in r["refused"]["events"] if e["kind"] == "found"), {})
    described = next((e for e in r["refused"]["events"] if e["kind"] == "described"), {})
    details = {"location": found.get("location"), "server": found.get("server"),
               "service": described.get("service"), "control_url": described.get("control_url"),
               "soap": r["soap"], "rule": r["rule"], "external": r["granted"]["external"]}
    return r["trace"], {"ok": r["ok"], "reason": r["reason"], "details": details}


def _ice_udp_blocked() -> tuple[Trace, dict]:
    """ICE when alice's network lets only TCP to port 443 out: her UDP TURN and TCP TURN attempts fail,
    TURN over TLS on 443 wins (``p2plab.ice.labrun``)."""
    from .ice.labrun import run_ice_lab

    res = run_ice_lab("udp-blocked", "port-restricted-cone", fallback=True, capture=True)
    d = res.as_dict()
    details = {k: d[k] for k in ("local_type", "remote_type", "relay_protocol", "relay_server", "time",
                                 "turn_attempts", "connections")}
    return res.trace, {"ok": res.success, "direct": res.direct, "reason": res.reason, "details": details}


def _reversal() -> tuple[Trace, dict]:
    from .netns.reversal import run_reversal

    res = run_reversal("port-restricted-cone", "reversal")
    return res.trace, {"ok": res.direct, "direct": res.direct, "reason": res.reason, "how": res.how}


def _port_forward() -> tuple[Trace, dict]:
    from .netns.forwarding import run_forwarding

    res = run_forwarding("forward")
    return res.trace, {"ok": res.reached, "reason": res.reason, "reply_from": res.reply_from}


def _icmp_nat() -> tuple[Trace, dict]:
    from .icmpnat import echo_ids
    from .netns.icmplab import run_icmp_nat

    trace, out = run_icmp_nat()
    ids = echo_ids(trace)
    reason = ("two echo requests with identifier 0x1234 (alice, carol): nat-a sent them out with identifiers "
              f"{', '.join(hex(i) for i in ids['outside id'])}; the traceroute's ICMP errors and the TCP "
              "segments came back translated")
    return trace, {"ok": out["ok"], "reason": reason}
def _webrtc(nat_a: str, nat_b: str, turn: bool | str, mdns: bool = False) -> Callable[[], tuple[Trace, dict]]:
    """Two headless Chromiums (``p2plab.webrtc``) open a DataChannel across the NATs (STUN, and TURN if ``turn``:
    ``"bob"`` gives only bob the TURN server, so that one relay path exists and every run takes it; ``mdns``:
    Chromium hides its host addresses behind ``.local`` names, its default)."""
    def run() -> tuple[Trace, dict]:
        from .webrtc import run_webrtc
        from .webrtc.chromium import candidate_pairs, selected_reports

        r = run_webrtc("chromium", "chromium", nat_a, nat_b, turn=turn, mdns=mdns, capture=True, linger=1.5)
        sel = r["selected"] or {"local": {"type": None}, "remote": {"type": None}}
        if r["connected"]:
            reason = (f"alice's Chromium selected its {sel['local']['type']} candidate with bob's "
                      f"{sel['remote']['type']} candidate ({'direct' if r['direct'] else 'through the TURN relay'})")
        else:
            reason = "the browsers did not connect"
        transport = {h: next((x for x in reports if x.get("type") == "transport"), {})
                     for h, reports in r["stats"].items()}
        details = {"offer": r["offer"], "answer": r["answer"], "signalling": r["signalling"],
                   "selected": r["selected"], "selected_bob": r["selected_bob"], "time": r["time"],
                   "states": r["states"], "transport": transport, "versions": r["versions"],
                   "host_candidates_seen": r["host_candidates_seen"], "pairs": candidate_pairs(r["stats"]["alice"]),
                   "selected_reports": selected_reports(r["stats"]["alice"]), "mdns": mdns}
        return r["trace"], {"ok": r["connected"], "direct": r["direct"], "reason": reason, "details": details}

    return run
def _nat64() -> tuple[Trace, dict]:
    from .netns.nat64lab import PREFIX, run_nat64

    r = run_nat64()
    out = dict(r["outcome"])
    out["details"] = {"router": r["router"], "alice": r["alice"], "prefix": PREFIX}
    return r["trace"], out


def _ipv6_firewall() -> tuple[Trace, dict]:
    from .netns.ipv6lab import run_ipv6_punch

    r = run_ipv6_punch()
    out = dict(r["outcome"])
    out["details"] = {"alice": r["alice"], "bob": r["bob"], "ruleset": r["ruleset"]}
    return r["trace"], out


def _network_change() -> tuple[Trace, dict]:
    from .netns.netchange import run_network_change

    r = run_network_change("interface")
    out = dict(r["outcome"])
    out["details"] = {"steps": r["steps"], "time_to_reconnect": out.get("time_to_reconnect"),
                      "new_pair": out.get("new_pair")}
    return r["trace"], out


def _peer_auth() -> tuple[Trace, dict]:
    from .netns.peerauthlab import run_peer_auth

    r = run_peer_auth(auth=True, attacker=True)
    out = dict(r["outcome"])
    out["details"] = {"verdicts": r["verdicts"], "alice_talks_to": out["alice_talks_to"],
                      "mallory_read": out["mallory_read"], "mallory_tried": out["mallory_tried"]}
    return r["trace"], out


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("direct", "alice and bob on public addresses exchange UDP", _direct),
    Scenario("nat-translation", "alice behind a NAT talks to a server; bob's unsolicited packet is dropped",
             _nat_translation),
    Scenario("stun", "alice asks a STUN server for her public address", _stun),
    Scenario("punch-success", "a hole punch between two port-restricted cone NATs",
             _punch("port-restricted-cone", "port-restricted-cone")),
    Scenario("punch-symmetric", "a failed hole punch against a symmetric NAT",
             _punch("port-restricted-cone", "symmetric", give_up_after=1.0)),
    Scenario("conntrack-clash", "Linux's conntrack clash: bob's early packet spoils alice's mapping",
             _punch("linux-masquerade", "linux-masquerade", conntrack_clash=True, bob_first=True,
                    give_up_after=1.0)),
    Scenario("turn-relay", "alice behind a symmetric NAT relays through a TURN server to bob", _turn_relay),
    Scenario("ice", "ICE between alice and bob behind two port-restricted cone NATs", _ice(
        "port-restricted-cone", "port-restricted-cone")),
    Scenario("ice-relayed", "ICE between alice and bob behind two symmetric NATs: only the relay works",
             _ice("symmetric", "symmetric")),
    Scenario("ice-udp-blocked", "ICE when alice's network lets only TCP to port 443 out: TURN over UDP and TCP "
             "fail, TURN over TLS on 443 gets through and the pair is relayed", _ice_udp_blocked),
    Scenario("portmap-pcp", "alice asks her router for a PCP mapping, then punches bob: symmetric x symmetric "
             "works", _punch("symmetric", "symmetric", portmap="pcp")),
    Scenario("portmap-cgn", "alice's home router grants a PCP mapping, but it sits behind a carrier-grade NAT: "
             "the mapping is on the wrong box and the punch fails", _portmap_cgn),
    Scenario("portmap-upnp", "alice asks her router's miniupnpd for a UPnP IGD mapping: refused (error 501) while "
             "its WAN address looks reserved, granted after its STUN check; bob's datagram then reaches alice",
             _portmap_upnp),
    Scenario("reversal", "connection reversal: bob (public) asks the server, alice behind a NAT calls him", _reversal),
    Scenario("port-forward", "a port forward on alice's router lets bob's unsolicited datagram in", _port_forward),
    Scenario("icmp-nat", "ping, traceroute and TCP through a kernel NAT: ICMP identifiers, quoted headers, "
             "checksums", _icmp_nat),
    Scenario("webrtc-direct", "two Chromium browsers open a WebRTC DataChannel across two port-restricted "
             "cone NATs (STUN only)", _webrtc("port-restricted-cone", "port-restricted-cone", turn=False)),
    Scenario("webrtc-relayed", "two Chromium browsers behind symmetric NATs: WebRTC connects only "
             "through bob's TURN relay", _webrtc("symmetric", "symmetric", turn="bob")),
    Scenario("webrtc-cone-symmetric", "two Chromium browsers, alice behind a full cone NAT, bob behind a symmetric "
             "NAT (STUN only): a direct path from bob's new mapping", _webrtc("full-cone", "symmetric", turn=False)),
    Scenario("webrtc-prc-symmetric", "two Chromium browsers, alice behind a port-restricted cone NAT, bob behind a "
             "symmetric NAT (only bob has TURN): through bob's relay", _webrtc("port-restricted-cone", "symmetric",
                                                                           turn="bob")),
    Scenario("webrtc-mdns", "two Chromium browsers with their default mDNS obfuscation: each sees the other's host "
             "candidate as a random .local name", _webrtc("port-restricted-cone", "port-restricted-cone", turn=False,
                                                       mdns=True)),
    Scenario("nat64", "IPv6-only alice reaches an IPv4 server through tayga (NAT64) and the router's NAT44",
             _nat64),
    Scenario("ipv6-firewall", "alice and bob on IPv6, no NAT, each behind a stateful nftables firewall: the first "
             "datagram dies at the other's firewall, then both directions get through", _ipv6_firewall),
    Scenario("network-change", "alice's namespace moves to another NAT mid-call; ICE restarts and finds a new path",
             _network_change),
    Scenario("peer-auth", "mallory races packets at alice's punched hole; the authenticated handshake rejects them",
             _peer_auth),
]}


def record(names: list[str] | None = None, out: Path = DATA) -> list[Path]:
    """Run scenarios in the real lab and write data/<name>.pcap, .csv and .json."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(SCENARIOS):
        if name not in SCENARIOS:
            raise ConfigurationError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
        trace, outcome = SCENARIOS[name].run()
        trace.to_pcap(out / f"{name}.pcap")
        trace.df.drop(columns=["summary", "protocol", "length"]).to_csv(out / f"{name}.csv", index=False)
        meta = {"scenario": name, "what": SCENARIOS[name].what, "world": "netns",
                "ok": bool(outcome.get("ok")), "reason": outcome.get("reason", ""),
                "packets": len(trace)}
        if "direct" in outcome:
            meta["direct"] = bool(outcome["direct"])
        if "details" in outcome:  # what a scenario wants kept beside its capture (the browsers' SDP, ...)
            meta["details"] = outcome["details"]
        (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        written.append(out / f"{name}.pcap")
    return written


def load(name: str, data: Path = DATA) -> Trace:
    """The recorded trace of scenario ``name`` (world ``"recorded"``)."""
    import pandas as pd

    from ._scapy import rdpcap_ip

    pcap, csv = data / f"{name}.pcap", data / f"{name}.csv"
    if not pcap.exists() or not csv.exists():
        known = sorted(p.stem for p in data.glob("*.pcap"))
        raise TraceError(f"no recording called {name!r} in {data}; recorded: {', '.join(known) or 'none'} "
                         "(make them as root with: python -m p2plab record)")
    df = pd.read_csv(csv, keep_default_na=False)
    packets = [raw for _, raw in rdpcap_ip(pcap)]
    if len(packets) != len(df):
        raise TraceError(f"{csv.name} has {len(df)} rows but {pcap.name} {len(packets)} packets: re-record them")
    rows = []
    for rec in df.to_dict("records"):
        rows.append(tuple(rec.get(c) if c in rec else None for c in COLUMNS))
    meta = json.loads((data / f"{name}.json").read_text()) if (data / f"{name}.json").exists() else {}
    return Trace(rows, packets, world="recorded", meta={"source": str(pcap), **meta})


def outcome(name: str, data: Path = DATA) -> dict[str, Any]:
    """The recorded outcome of scenario ``name`` (direct, reason, ...)."""
    return json.loads((data / f"{name}.json").read_text())


def shape(trace: Trace) -> set[tuple[str, str, str]]:
    """What kinds of packet were seen where, ignoring counts and timing: {(node, action, kind)}."""
    df = trace.df
    kinds = df["summary"].str.split().str[:2].str.join(" ").str.replace(r"'.*", "", regex=True).str.strip()
    return set(zip(df["node"], df["action"], kinds))


@dataclass
class RealRun:
    """One key scenario from the real Linux lab: run just now (``world == "netns"``) or loaded from
    its recording (``world == "recorded"``)."""

    name: str
    trace: Trace
    outcome: dict[str, Any]
    world: str
    sentence: str

    def facts(self) -> str:
        """What happened, in words that are the same whichever world ran (timings and random ports left out)."""
        kinds = sorted({k for node, action, k in shape(self.trace)
                        if action == "sent" and node in ("alice", "bob", "server")})
        lines = [f"{self.name}: {SCENARIOS[self.name].what}", f"packet kinds the hosts sent: {', '.join(kinds)}"]
        if "direct" in self.outcome:
            lines.append(f"direct path between alice and bob: {'yes' if self.outcome['direct'] else 'no'}")
        else:
            lines.append(f"worked as the scenario expects: {'yes' if self.outcome.get('ok') else 'no'}")
        relay_protocol = (self.outcome.get("details") or {}).get("relay_protocol")
        if relay_protocol:  # how alice reached her TURN server (ice-udp-blocked): udp, tcp or tls
            lines.append(f"alice reached her TURN relay over {relay_protocol.upper()}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.facts()


def real_run(name: str, live: bool | None = None) -> RealRun:
    """Run scenario ``name`` in the real lab if this machine can, else load its recording.

    Never raises because of the machine: whatever stops the real lab here (not Linux, no user
    namespaces, a tool missing, a lab that fails to build or run), the recording of the same
    scenario is loaded and ``.sentence`` says, in one sentence, why and what would enable the real lab.
    ``P2PLAB_WORLD=netns`` (or ``live=True``) insists on the real lab and turns that into an error;
    ``P2PLAB_WORLD=recorded`` (or ``live=False``) always loads the recording.
    ``.facts()`` describes the result in words that are the same whichever world ran.
    """
    import os

    from .world import ENV_VAR, choose_world

    if name not in SCENARIOS:
        raise ConfigurationError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    insist = live is True or os.environ.get(ENV_VAR, "").strip().lower() == "netns"
    why, enable = "", ""
    if live is None:
        choice = choose_world("netns")
        live = choice.name == "netns"
        if not live and insist:
            from .errors import LabUnavailableError

            raise LabUnavailableError(f"{ENV_VAR}=netns insists on the real lab, which cannot run here: "
                                      f"{choice.reason}. Unset {ENV_VAR} to use the recordings")
        if not live and choice.preferred != "netns":
            why = f"{ENV_VAR}={choice.preferred} asks for the recordings"
        elif not live:
            from .world import capabilities

            why = f"this machine cannot run the real lab: {choice.reason}"
            enable = capabilities()["netns"].enable
    elif not live:
        why = "live=False asks for the recording"
    if live:
        try:
            trace, out = SCENARIOS[name].run()
        except Exception as exc:  # noqa: BLE001 - any failure of the real lab falls back to the recording
            if insist:
                raise
            why = f"the real lab failed while running it ({type(exc).__name__}: {_first_line(exc)})"
            enable = "run python -m p2plab doctor, and report this to the course's authors"
        else:
            return RealRun(name, trace, out, "netns",
                           f"Ran '{name}' just now in the real Linux lab (netns world): {len(trace)} packet events.")
    trace = load(name)
    sentence = (f"This is the recording data/{name}.pcap, made in the real Linux lab (netns world), "
                f"{len(trace)} packet events, because {why}")
    sentence += f". To run it live here: {enable}." if enable else "."
    return RealRun(name, trace, outcome(name), "recorded", sentence)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no message"


def _cmd(args: argparse.Namespace) -> int:
    from .netns import available

    ok, why = available()
    if not ok:
        print(f"error: recording needs the real Linux lab: {why}")
        return 2
    for path in record(args.names or None):
        print(f"wrote {path} (+ .csv, .json)")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("record", help="re-record the shipped captures in data/ from the real Linux lab (root)")
    p.add_argument("names", nargs="*", help=f"scenarios (default: all of {', '.join(SCENARIOS)})")
    p.set_defaults(func=_cmd)
