"""An aiortc ``RTCPeerConnection`` (PyPI ``aiortc``) as a Python process on a lab host.

The host starts ``python -m p2plab.webrtc.aiortc_peer CONFIG`` in the host's namespace (with
``Lab.popen``) and drives it with one JSON line per request on its stdin; each request gets one
JSON line back on stdout. The requests mirror what the host asks a browser
(``p2plab.webrtc.chromium.ChromiumPeer``): ``offer``, ``answer``, ``accept_answer``,
``add_candidate``, ``poll``, ``stats``, ``close``.

aiortc does not trickle: ``setLocalDescription`` gathers every candidate (host, srflx from the
STUN server, relay from the TURN server) before it returns, and they are all in its SDP. It does
accept trickled candidates from the other side (``addIceCandidate``), and ``None`` (end of
candidates) tells its ICE agent (aioice) that no more will come.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import selectors
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import LabUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from ..netns import Lab


def require_aiortc() -> str:
    """aiortc's version; ``LabUnavailableError`` with the fix when it is not installed."""
    try:
        import aiortc
    except ImportError:
        raise LabUnavailableError("the Python package aiortc is not installed: pip install -e '.[webrtc]' "
                                  "(or pip install aiortc)") from None
    return str(getattr(aiortc, "__version__", "?"))


# -- host side ---------------------------------------------------------------------------------

class AiortcPeer:
    """The host's handle on an aiortc peer running in ``host``'s namespace (same methods as ChromiumPeer)."""

    kind = "aiortc"

    def __init__(self, lab: Lab, host: str, *, ice_servers: list[dict], offerer: bool, message: str,
                 mdns: bool = True) -> None:
        import subprocess

        self.host = host
        self.mdns = mdns
        cfg = json.dumps({"iceServers": ice_servers, "offerer": offerer, "message": message})
        self.proc = lab.popen(host, [sys.executable, "-m", "p2plab.webrtc.aiortc_peer", cfg],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.popen.stdout, selectors.EVENT_READ)
        self._buf = b""
        self.version = self._ask({"op": "hello"}, timeout=30)["version"]

    def _ask(self, request: dict, timeout: float = 20.0) -> dict:
        p = self.proc.popen
        try:
            p.stdin.write((json.dumps(request) + "\n").encode())
            p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise RuntimeError(f"the aiortc peer on {self.host} has exited: {self._stderr()}") from None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise TimeoutError(f"the aiortc peer on {self.host} did not answer {request['op']!r} "
                                   f"within {timeout} s")
            import os

            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"the aiortc peer on {self.host} exited (code {p.poll()}): {self._stderr()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the aiortc peer on {self.host} failed at {request['op']!r}: {reply['error']}")
        return reply

    def _stderr(self) -> str:
        p = self.proc.popen
        if p.poll() is None:
            return "(still running)"
        return p.stderr.read().decode(errors="replace")[-2000:]

    def offer(self) -> str:
        return self._ask({"op": "offer"}, timeout=30)["sdp"]

    def answer(self, offer_sdp: str) -> str:
        return self._ask({"op": "answer", "sdp": offer_sdp}, timeout=30)["sdp"]

    def accept_answer(self, answer_sdp: str) -> None:
        self._ask({"op": "accept_answer", "sdp": answer_sdp})

    def add_candidate(self, candidate: dict | None) -> None:
        self._ask({"op": "add_candidate", "candidate": candidate})

    def poll(self) -> dict:
        return self._ask({"op": "poll"})

    def stats(self) -> dict:
        return self._ask({"op": "stats"})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ask({"op": "close"}, timeout=5)
        with contextlib.suppress(Exception):
            self.proc.popen.stdin.close()
            self.proc.popen.wait(5)
        self.proc.terminate()


# -- lab side: the process itself --------------------------------------------------------------

def _servers(ice_servers: list[dict]) -> list:
    from aiortc import RTCIceServer

    return [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ice_servers]


def _cand(c: Any) -> dict:
    return {"type": c.type, "address": c.host, "port": c.port, "protocol": c.transport.lower(),
            "relatedAddress": c.related_address, "relatedPort": c.related_port}


async def _main(cfg: dict) -> None:
    import aiortc
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.sdp import candidate_from_sdp

    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    st: dict[str, Any] = {"got": [], "states": [], "opened": None}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=_servers(cfg["iceServers"])))

    def now() -> float:
        return round(time.monotonic() - t0, 4)

    @pc.on("iceconnectionstatechange")
    def _ice() -> None:
        st["states"].append(["iceConnectionState", pc.iceConnectionState, now()])

    @pc.on("icegatheringstatechange")
    def _gathering() -> None:
        st["states"].append(["iceGatheringState", pc.iceGatheringState, now()])

    @pc.on("connectionstatechange")
    def _conn() -> None:
        st["states"].append(["connectionState", pc.connectionState, now()])

    def wire(ch: Any) -> None:
        def opened() -> None:
            st["opened"] = now()
            st["states"].append(["dataChannel", "open", now()])
            ch.send(cfg["message"])

        ch.on("message", lambda m: st["got"].append(m if isinstance(m, str) else m.decode(errors="replace")))
        if ch.readyState == "open":
            opened()
        else:
            ch.on("open", opened)

    if cfg["offerer"]:
        wire(pc.createDataChannel("p2plab"))
    else:
        pc.on("datachannel", wire)

    def selected() -> dict | None:
        sctp = pc.sctp
        conn = getattr(getattr(getattr(sctp, "transport", None), "transport", None), "_connection", None)
        pair = conn._nominated.get(1) if conn is not None else None
        if pair is None:
            return None
        return {"local": _cand(pair.local_candidate), "remote": _cand(pair.remote_candidate),
                "state": "succeeded", "nominated": True}

    async def handle(req: dict) -> dict:
        op = req["op"]
        if op == "hello":
            return {"version": aiortc.__version__}
        if op == "offer":
            await pc.setLocalDescription(await pc.createOffer())
            return {"sdp": pc.localDescription.sdp}
        if op == "answer":
            await pc.setRemoteDescription(RTCSessionDescription(req["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            return {"sdp": pc.localDescription.sdp}
        if op == "accept_answer":
            await pc.setRemoteDescription(RTCSessionDescription(req["sdp"], "answer"))
            return {}
        if op == "add_candidate":
            c = req["candidate"]
            if not c or not c.get("candidate"):
                await pc.addIceCandidate(None)
                return {}
            cand = candidate_from_sdp(c["candidate"].split(":", 1)[1])
            cand.sdpMid, cand.sdpMLineIndex = c.get("sdpMid"), c.get("sdpMLineIndex")
            await pc.addIceCandidate(cand)
            return {}
        if op == "poll":
            return {"out": [], "got": st["got"], "states": st["states"], "ice": pc.iceConnectionState,
                    "connection": pc.connectionState, "opened": st["opened"]}
        if op == "stats":
            return {"reports": [], "selected": selected()}
        if op == "close":
            await pc.close()
            return {}
        return {"error": f"unknown request {op!r}"}

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        req = json.loads(line)
        try:
            reply = await handle(req)
        except Exception as exc:  # noqa: BLE001 - reported to the host, which raises it there
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if req["op"] == "close":
            break
    with contextlib.suppress(Exception):
        await pc.close()


if __name__ == "__main__":
    asyncio.run(_main(json.loads(sys.argv[1])))
