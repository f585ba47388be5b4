"""Real WebRTC in the real lab: Chromium and aiortc connect across the lab's NATs.

* ``run_webrtc(client, peer, nat_a, nat_b, turn=..., mdns=..., pcap=...)`` - one DataChannel
  from Alice's stack to Bob's through kernel NATs, with p2plab's STUN and TURN servers (``run``).
* ``chromium`` - headless Chromium launched inside a lab namespace and driven by Playwright.
* ``aiortc_peer`` - an aiortc ``RTCPeerConnection`` as a process inside a lab namespace.
* ``signalling`` - offer/answer and trickled candidates relayed by the host, kept as SDP text.

``python -m p2plab webrtc --client chromium --nat-a symmetric --nat-b symmetric --turn`` runs one.
"""

from __future__ import annotations

from .run import run_webrtc, summary

__all__ = ["run_webrtc", "summary"]
