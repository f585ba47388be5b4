"""Signalling through the host: the offer, the answer and every trickled candidate, kept as text.

WebRTC leaves signalling to the application: the two peers must swap their session descriptions
(SDP, RFC 8866, used as offer and answer by RFC 8829 JSEP) and their ICE candidates (RFC 8838
"trickle ICE" sends them one by one as they are gathered) by any channel they like, usually a web
server. Here that channel is the host process: it takes the offerer's SDP, hands it to the answerer,
hands the answer back, and relays candidates as they trickle out of each peer. Nothing of this
crosses the lab's NATs, exactly like a web server's messages that the NATs never see as ICE.

Every message is logged as a dict ``{"t", "from", "to", "kind", "text"}`` where ``kind`` is
``offer``, ``answer``, ``candidate`` or ``end-of-candidates`` and ``text`` the SDP or the
``candidate:`` line exactly as the peer produced it.

A peer is any object with ``offer()``, ``answer(sdp)``, ``accept_answer(sdp)``,
``add_candidate(dict | None)``, ``poll()``, ``stats()`` and ``close()``
(``ChromiumPeer``, ``AiortcPeer``).
"""

from __future__ import annotations

import time
from typing import Any


def relay(offerer: Any, answerer: Any, names: tuple[str, str] = ("alice", "bob"), *, message_a: str,
          message_b: str, timeout: float = 12.0, interval: float = 0.02) -> dict[str, Any]:
    """Run offer/answer and trickle between two peers until both DataChannels carried their message.

    Returns ``{"log", "connected", "time", "polls"}``: ``time`` is the seconds from the offer to the
    moment both peers had received the other's DataChannel message (``None`` if that never happened
    within ``timeout``).
    """
    a, b = names
    log: list[dict[str, Any]] = []
    t0 = time.monotonic()

    def note(frm: str, to: str, kind: str, text: str) -> None:
        log.append({"t": round(time.monotonic() - t0, 4), "from": frm, "to": to, "kind": kind, "text": text})

    offer = offerer.offer()
    note(a, b, "offer", offer)
    answer = answerer.answer(offer)
    note(b, a, "answer", answer)
    offerer.accept_answer(answer)
    peers = {a: (offerer, answerer, b), b: (answerer, offerer, a)}
    polls: dict[str, dict] = {}
    done_at = None
    while time.monotonic() - t0 < timeout:
        for name, (me, other, other_name) in peers.items():
            polls[name] = state = me.poll()
            for cand in state.get("out", []):
                if cand is None or not cand.get("candidate"):
                    note(name, other_name, "end-of-candidates", "")
                    if getattr(other, "kind", "") == "aiortc":
                        other.add_candidate(None)  # aioice waits for this before it gives up on a pair
                    continue
                note(name, other_name, "candidate", cand["candidate"])
                other.add_candidate(cand)
        if (message_b in polls.get(a, {}).get("got", []) and message_a in polls.get(b, {}).get("got", [])):
            done_at = time.monotonic() - t0
            break
        if any(p.get("connection") == "failed" for p in polls.values()):
            break
        time.sleep(interval)
    return {"log": log, "connected": done_at is not None, "time": round(done_at, 3) if done_at else None,
            "polls": polls}


def sdp_candidates(sdp: str) -> list[str]:
    """The ``a=candidate:`` lines of an SDP (aiortc puts all of its candidates there)."""
    return [line[2:].strip() for line in sdp.splitlines() if line.startswith("a=candidate:")]
