"""``run_webrtc``: two real WebRTC stacks (Chromium, aiortc) connect across the lab's NATs.

>>> r = run_webrtc("chromium", "chromium", "port-restricted-cone", "symmetric", turn=True)  # doctest: +SKIP
>>> r["connected"], r["selected"]["local"]["type"], r["selected"]["remote"]["type"]        # doctest: +SKIP
(True, 'relay', 'prflx')

The world is ``topology.punch(nat_a, nat_b)`` built as real namespaces: Alice (192.168.1.10)
behind nat-a, Bob (192.168.0.25) behind nat-b, and the server host (192.0.2.1) running p2plab's
STUN server (UDP 3478) and, always, its TURN server (UDP 3479, users alice and bob); ``turn=True``
gives the peers the TURN server in their ``iceServers``, otherwise they only know the STUN server.
Alice's peer (``client``) offers and opens a DataChannel; Bob's (``peer``) answers. Each sends one
message on the channel; the run is ``connected`` when both messages arrived.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, LabUnavailableError
from ..nat import PRESETS

KINDS = ("chromium", "aiortc")
STUN_PORT, TURN_PORT = 3478, 3479
TURN_USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def ice_servers(server_ip: str, user: str, turn: bool) -> list[dict[str, str]]:
    """The ``iceServers`` of an ``RTCConfiguration`` pointing at p2plab's servers in the lab."""
    servers = [{"urls": f"stun:{server_ip}:{STUN_PORT}"}]
    if turn:
        servers.append({"urls": f"turn:{server_ip}:{TURN_PORT}?transport=udp", "username": user,
                        "credential": TURN_USERS[user]})
    return servers


def check_available(kinds: tuple[str, ...] | list[str]) -> None:
    """Raise ``LabUnavailableError`` (cause and fix in words) unless the lab and every stack in ``kinds`` can run."""
    from ..netns import available

    for kind in kinds:
        if kind not in KINDS:
            raise ConfigurationError(f"unknown WebRTC stack {kind!r}; choose from {', '.join(KINDS)}")
    if "chromium" in kinds:
        from .chromium import find_chromium, require_playwright

        find_chromium()
        require_playwright()
    if "aiortc" in kinds:
        from .aiortc_peer import require_aiortc

        require_aiortc()
    ok, why = available()
    if not ok:
        raise LabUnavailableError(f"WebRTC runs in the real Linux lab, which cannot run here: {why}")


def _kind(name: str) -> str:
    k = str(name).strip().lower()
    if k not in KINDS:
        raise ConfigurationError(f"unknown WebRTC stack {name!r}; choose from {', '.join(KINDS)}")
    return k


def _host_candidates(log: list[dict], sender: str) -> list[str]:
    """The host candidates' addresses ``sender`` told the other side (trickled or inside its SDP)."""
    from .signalling import sdp_candidates

    lines = [m["text"] for m in log if m["from"] == sender and m["kind"] == "candidate"]
    for m in log:
        if m["from"] == sender and m["kind"] in ("offer", "answer"):
            lines += sdp_candidates(m["text"])
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) > 7 and parts[7] == "host" and parts[2].lower() == "udp":
            out.append(parts[4])
    return sorted(set(out))


def run_webrtc(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Connect a WebRTC DataChannel across two real NATs: see :func:`_run_webrtc` for the arguments.

    Playwright's synchronous API refuses to run in a thread whose asyncio loop is running, which is
    the case in every Jupyter kernel; there the run happens in a worker thread and this call waits.
    """
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_webrtc(*args, **kwargs)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="p2plab-webrtc") as pool:
        return pool.submit(_run_webrtc, *args, **kwargs).result()


def _run_webrtc(client: str = "chromium", peer: str | None = None, nat_a: str = "port-restricted-cone",
               nat_b: str = "port-restricted-cone", *, turn: bool | str = False, mdns: bool = False,
               pcap: str | Path | None = None, capture: bool | None = None, timeout: float = 12.0,
               linger: float = 0.5) -> dict[str, Any]:
    """Connect a WebRTC DataChannel from Alice's ``client`` to Bob's ``peer`` across two real NATs.

    ``client``/``peer``: ``"chromium"`` or ``"aiortc"`` (``peer`` defaults to ``client``).
    ``turn``: give both peers p2plab's TURN server as well as its STUN server (``"alice"`` or ``"bob"``:
    only that peer). ``mdns``: let
    Chromium hide its host addresses behind random ``.local`` names (its default; ``False`` passes
    ``--disable-features=WebRtcHideLocalIpsWithMdns``). ``pcap``: write every packet of the run there.
    ``linger``: seconds the connection stays up (and captured) after both messages arrived.

    Returns a dict: ``connected``, ``direct`` (connected and neither selected candidate is a relay),
    ``selected`` (Alice's selected pair: ``local``/``remote`` with ``type``, ``address``, ``port``),
    ``selected_bob``, ``time`` (seconds from the offer until both messages arrived),
    ``offer``/``answer`` (SDP text), ``signalling`` (every message the host relayed),
    ``host_candidates_seen`` (what each side learned of the other's host candidates), ``states``,
    ``stats`` (Alice's and Bob's ``getStats()`` reports, Chromium only), ``trace`` (a ``Trace``
    when captured), ``versions``, ``timings``.
    """
    from .. import topology as t
    from ..netns import Lab
    from ..recorded import ice_servers_main

    if turn not in (True, False, "alice", "bob"):
        raise ConfigurationError(f"turn must be True, False, 'alice' or 'bob' (who gets the TURN server), not {turn!r}")
    client = _kind(client)
    peer = _kind(peer or client)
    for name in (nat_a, nat_b):
        if name not in PRESETS:
            raise ConfigurationError(f"unknown NAT preset {name!r}; choose from {', '.join(PRESETS)}")
    check_available([client, peer])
    capture = bool(pcap) if capture is None else capture
    out: dict[str, Any] = {"client": client, "peer": peer, "nat_a": nat_a, "nat_b": nat_b, "turn": turn,
                           "mdns": mdns, "world": "netns"}
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(Lab(t.punch(nat_a, nat_b), capture=capture))
        out["lab"] = lab.id
        timings["lab up"] = round(time.perf_counter() - t_start, 3)
        srv = lab.start_python("server", ice_servers_main, t.SERVER_IP, timeout + 60.0)
        pw = None
        if "chromium" in (client, peer):
            from playwright.sync_api import sync_playwright

            pw = stack.enter_context(sync_playwright())
        t1 = time.perf_counter()
        peers = {}
        for host, kind, offerer, msg in (("alice", client, True, "hello bob, from alice"),
                                         ("bob", peer, False, "hello alice, from bob")):
            servers = ice_servers(t.SERVER_IP, host, turn is True or turn == host)
            if kind == "chromium":
                from .chromium import ChromiumPeer

                p = ChromiumPeer(pw, lab, host, ice_servers=servers, offerer=offerer, message=msg, mdns=mdns)
            else:
                from .aiortc_peer import AiortcPeer

                p = AiortcPeer(lab, host, ice_servers=servers, offerer=offerer, message=msg, mdns=mdns)
            stack.callback(p.close)
            peers[host] = p
        timings["peers started"] = round(time.perf_counter() - t1, 3)
        from .signalling import relay

        t1 = time.perf_counter()
        sig = relay(peers["alice"], peers["bob"], message_a="hello bob, from alice",
                    message_b="hello alice, from bob", timeout=timeout)
        timings["signalling+ICE+DTLS+SCTP"] = round(time.perf_counter() - t1, 3)
        if sig["connected"]:
            time.sleep(linger)  # the connection in use: consent checks, a TURN channel being bound
        stats = {h: p.stats() for h, p in peers.items()}
        if capture:  # stop before the peers close: the capture shows the connection, not its teardown
            out["trace"] = lab.trace()
            if pcap:
                out["trace"].to_pcap(Path(pcap))
                out["pcap"] = str(pcap)
        for p in peers.values():
            p.close()
        out["versions"] = {h: f"{p.kind} {p.version}" for h, p in peers.items()}
        srv.terminate()
        with contextlib.suppress(Exception):
            srv.wait(3)
    timings["total"] = round(time.perf_counter() - t_start, 3)
    sel = stats["alice"].get("selected")
    out["connected"] = sig["connected"]
    out["selected"] = sel
    out["selected_bob"] = stats["bob"].get("selected")
    types = {sel["local"]["type"], sel["remote"]["type"]} if sel else set()
    out["direct"] = bool(sig["connected"] and sel and "relay" not in types)
    out["relayed"] = bool(sig["connected"] and sel and "relay" in types)
    out["time"] = sig["time"]
    log = sig["log"]
    out["offer"] = next((m["text"] for m in log if m["kind"] == "offer"), "")
    out["answer"] = next((m["text"] for m in log if m["kind"] == "answer"), "")
    out["signalling"] = log
    out["host_candidates_seen"] = {"bob saw alice's": _host_candidates(log, "alice"),
                                   "alice saw bob's": _host_candidates(log, "bob")}
    out["states"] = {h: s.get("states", []) for h, s in sig["polls"].items()}
    out["channels"] = {h: {k: s.get(k) for k in ("channel", "sent", "got", "errors")} for h, s in sig["polls"].items()}
    out["stats"] = {h: s.get("reports", []) for h, s in stats.items()}
    out["timings"] = timings
    return out


# the public name shows the worker's signature and documentation (``run_webrtc?`` in a notebook)
run_webrtc.__signature__ = __import__("inspect").signature(_run_webrtc)  # type: ignore[attr-defined]
run_webrtc.__doc__ = f"{_run_webrtc.__doc__}\n    (In a Jupyter kernel the run happens in a worker thread: Playwright's sync API needs one.)\n"


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly part of a ``run_webrtc`` result (no trace, no stats reports)."""
    keep = ("client", "peer", "nat_a", "nat_b", "turn", "mdns", "world", "connected", "direct", "relayed",
            "selected", "selected_bob", "time", "host_candidates_seen", "versions", "timings", "offer", "answer",
            "pcap")
    return {k: result[k] for k in keep if k in result}
