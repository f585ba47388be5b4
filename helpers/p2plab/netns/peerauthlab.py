"""Who is on the other end, in the real Linux lab: Mallory races packets at Alice's punched hole.

``run_peer_auth(auth=True, attacker=True)`` builds ``p2plab.scenarios.peer_auth.topology()``
(Alice behind a full-cone NAT built with nftables, Bob behind a port-restricted cone NAT, the
rendezvous server, and Mallory at 203.0.113.66 on the internet) and runs the same sans-I/O
programs as the simulator on real sockets: ``AuthPeer`` for Alice and Bob, ``Mallory``, and the
rendezvous server, which **leaks** Alice's public endpoint into a file Mallory reads (the
stand-in for whatever way an attacker learns it). Bob's application starts ``bob_delay``
seconds after Alice's, so Mallory wins the race to Alice's hole, as she does in the simulator.

The key pairs come from the same seeds as in the simulator; each peer knows the other's
fingerprint before the punch, as if it had come in the SDP (``a=fingerprint``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

PORT = 5000


def rendezvous_main(ip: str, signal_dir: str, seconds: float) -> dict[str, Any]:
    """The rendezvous server on real sockets; writes where Alice registered from to ``alice-endpoint.json``."""
    import asyncio

    from ..aio import Driver
    from ..punch import RENDEZVOUS_PORT, RendezvousServer

    box = Path(signal_dir)

    def on_event(ev: Any) -> None:
        if ev.kind == "registered" and ev.name == "alice" and not (box / "alice-endpoint.json").exists():
            tmp = box / ".alice-endpoint.json"
            tmp.write_text(json.dumps(list(ev.public)))
            tmp.rename(box / "alice-endpoint.json")

    async def main() -> dict[str, Any]:
        server = RendezvousServer()
        async with Driver(server, (ip, RENDEZVOUS_PORT), on_event=on_event):
            await asyncio.sleep(seconds)
        return {"introduced": sorted(map(list, server.introduced))}

    return asyncio.run(main())


def peer_main(name: str, ip: str, server_ip: str, auth: bool, seed: int, seconds: float,
              delay: float = 0.0, signal_dir: str = "") -> dict[str, Any]:
    """Alice or Bob (``AuthPeer``) on a real socket; returns verdicts, whom it talks to, what it received."""
    import asyncio

    from .. import peerauth
    from ..aio import Driver
    from ..punch import RENDEZVOUS_PORT
    from ..scenarios.peer_auth import SECRET, AuthPeer

    other = "bob" if name == "alice" else "alice"
    box = Path(signal_dir)
    ids = {n: peerauth.Identity.from_seed(f"p2plab-{n}-{seed}") for n in ("alice", "bob")}
    role = "initiator" if name == "alice" else "responder"
    text = SECRET if name == "alice" else "bob to alice: got it"
    verdicts: list[dict[str, Any]] = []
    driver: list[Any] = []

    def on_event(ev: Any) -> None:
        if ev.kind == "verdict":
            verdicts.append({"at": name, "from": f"{ev.source[0]}:{ev.source[1]}", "kind": ev.message,
                             "verdict": "accepted" if ev.accepted else "rejected", "why": ev.why,
                             "wall": driver[0]._t0 + ev.time})  # the loop's clock is time.monotonic()

    async def main() -> dict[str, Any]:
        await asyncio.sleep(delay)
        peer = AuthPeer(name, other, (server_ip, RENDEZVOUS_PORT), ids[name], ids[other].fingerprint, role, auth,
                        seed=seed * 2 + (1 if name == "alice" else 2), text=text)
        d = Driver(peer, (ip, PORT), on_event=on_event)
        driver.append(d)
        async with d:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await asyncio.sleep(0.02)
                if peer.received and peer.peer_endpoint is not None:
                    break
            await asyncio.sleep(0.2)  # let the last answers cross
            if signal_dir:  # finish together, so that no late packet meets a closed port (ICMP errors)
                (box / f"{name}-done").write_text("")
                until = time.monotonic() + 3.0
                while not (box / f"{other}-done").exists() and time.monotonic() < until:
                    await asyncio.sleep(0.02)
        ep = peer.peer_endpoint
        return {"peer": None if ep is None else list(ep), "received": [[list(s), t] for s, t in peer.received],
                "verdicts": verdicts, "holes": [list(h) for h in peer.holes]}

    return asyncio.run(main())


def mallory_main(ip: str, signal_dir: str, seed: int, seconds: float) -> dict[str, Any]:
    """Mallory on a real socket: waits for the leaked endpoint, then attacks (``scenarios.peer_auth.Mallory``)."""
    import asyncio

    from .. import peerauth
    from ..aio import Driver
    from ..scenarios.peer_auth import Mallory

    box = Path(signal_dir)

    async def main() -> dict[str, Any]:
        bob = peerauth.Identity.from_seed(f"p2plab-bob-{seed}")
        m = Mallory(peerauth.Identity.from_seed(f"p2plab-mallory-{seed}"), bob.public, seed=seed * 2 + 3)
        async with Driver(m, (ip, PORT)) as d:
            end = time.monotonic() + seconds
            leak = box / "alice-endpoint.json"
            while not leak.exists() and time.monotonic() < end:
                await asyncio.sleep(0.002)
            if leak.exists():
                target = json.loads(leak.read_text())
                d.call(m.attack, (target[0], int(target[1])), d.now())
            while time.monotonic() < end and not (box / "stop").exists():
                await asyncio.sleep(0.02)
        return {"tried": m.tried, "read": m.read, "target": list(m.target) if m.target else None}

    return asyncio.run(main())


def run_peer_auth(auth: bool = True, attacker: bool = True, *, seed: int = 0, bob_delay: float = 0.3,
                  seconds: float = 3.0, capture: bool = True) -> dict[str, Any]:
    """Run the scenario in the real lab. Returns ``{"trace", "verdicts", "outcome"}``."""
    from .. import topology as t
    from ..scenarios.peer_auth import MALLORY_IP, SECRET
    from ..scenarios.peer_auth import topology as pa_topology
    from .lab import Lab

    names = {t.ALICE_NAT_IP: "alice", t.BOB_NAT_IP: "bob", MALLORY_IP: "mallory"}
    with Lab(pa_topology(attacker=attacker), capture=capture) as lab:
        box = lab.workdir / "signaling"
        box.mkdir()
        srv = lab.start_python("server", rendezvous_main, t.SERVER_IP, str(box), seconds + 3)
        m = lab.start_python("mallory", mallory_main, MALLORY_IP, str(box), seed, seconds + 1) if attacker else None
        time.sleep(0.4)  # let the server and mallory import and bind
        a = lab.start_python("alice", peer_main, "alice", t.ALICE_IP, t.SERVER_IP, auth, seed, seconds, 0.0,
                             str(box))
        b = lab.start_python("bob", peer_main, "bob", t.BOB_IP, t.SERVER_IP, auth, seed, seconds, bob_delay,
                             str(box))
        ra, rb = a.result(seconds + 30), b.result(seconds + 30)
        (box / "stop").write_text("")
        rm = m.result(seconds + 30) if m is not None else {"tried": [], "read": []}
        srv.terminate()
        trace = lab.trace() if capture else None
    verdicts = []
    for v in ra["verdicts"] + rb["verdicts"]:
        v = dict(v)
        v["sender"] = names.get(v["from"].rpartition(":")[0], "?")
        verdicts.append(v)
    verdicts.sort(key=lambda v: v.pop("wall"))

    def who(ep: list | None) -> str | None:
        return None if ep is None else names.get(ep[0], f"{ep[0]}:{ep[1]}")

    outcome = {"auth": auth, "attacker": attacker, "alice_talks_to": who(ra["peer"]), "bob_talks_to": who(rb["peer"]),
               "delivered": any(text == SECRET for _, text in rb["received"]), "mallory_read": rm["read"],
               "mallory_tried": rm["tried"], "rejected": sum(1 for v in verdicts if v["verdict"] == "rejected")}
    outcome["ok"] = outcome["alice_talks_to"] == "bob" if auth else outcome["alice_talks_to"] is not None
    outcome["reason"] = (f"alice talks to {outcome['alice_talks_to']}; mallory read "
                         f"{len(rm['read'])} message(s); {outcome['rejected']} packet(s) rejected")
    return {"trace": trace, "verdicts": verdicts, "outcome": outcome}


__all__ = ["run_peer_auth", "peer_main", "mallory_main", "rendezvous_main"]
