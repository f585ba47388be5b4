"""ICE between Alice and Bob in the real Linux lab (netns world), with TURN over UDP, TCP and TLS.

``run_ice_lab(nat_a, nat_b)`` builds ``topology.punch(nat_a, nat_b)`` as network namespaces, runs
p2plab's STUN server (UDP 3478) and TURN server (UDP and TCP 3479, TLS 443 with a certificate made
for the lab) on the server host, and one ``IceAgent`` on each of Alice and Bob. Each agent tries
its TURN servers in order - ``turn:192.0.2.1:3479``, ``turn:192.0.2.1:3479?transport=tcp``,
``turns:192.0.2.1:443`` - and keeps the first that allocates. Behind ``udp-blocked`` (only TCP to
port 443 leaves) the UDP attempt times out (after 1.5 s), the TCP connection to 3479 is never answered (1.5 s), and TLS
on 443 gets through: the selected pair is relayed, reached over TLS.

``fallback=False`` gives the agents the UDP TURN server only (as ``python -m p2plab record ice``
does): behind ``udp-blocked`` ICE then fails.

Browsers gather from all their TURN servers at once; p2plab's agent tries them one after the
other, so that each failure and its cost can be seen in ``turn_attempts``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..addresses import fmt
from .run import STUN_PORT, TURN_PORT, TURN_TLS_PORT

# Short timers, so that a lesson can run the scenario live: STUN/UDP TURN while gathering send 2 requests
# (0 and 0.5 s) and give up at 1.5 s (RFC 8489 Rc = 2, Rm = 2, RTO 500 ms); a TCP or TLS connection that is
# not up within 1.5 s counts as failed. Browsers wait longer; the order of events is the same.
GATHER = (2, 2)
CONNECT_TIMEOUT = 1.5


def turn_urls(server_ip: str, fallback: bool = True) -> list[str]:
    """The TURN URIs (RFC 7065) the lab's agents try, in order."""
    urls = [f"turn:{server_ip}:{TURN_PORT}"]
    if fallback:
        urls += [f"turn:{server_ip}:{TURN_PORT}?transport=tcp", f"turns:{server_ip}:{TURN_TLS_PORT}"]
    return urls


@dataclass
class IceLabResult:
    """One ICE run in the real lab. ``time``: seconds from the agents' start (gathering included)
    until both had a selected pair; ``relay_protocol``: how Alice reaches her TURN server when her
    selected candidate is relayed ("udp", "tcp", "tls"); ``alice``/``bob``: each agent's own report
    (candidates, ``turn_attempts``, ``connections``, notes)."""

    nat_a: str
    nat_b: str
    success: bool
    direct: bool
    reason: str
    time: float | None
    local_type: str | None = None
    remote_type: str | None = None
    relay_protocol: str | None = None
    relay_server: str | None = None
    fallback: bool = True
    alice: dict[str, Any] = field(default_factory=dict)
    bob: dict[str, Any] = field(default_factory=dict)
    trace: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"world": "netns", "nat_a": self.nat_a, "nat_b": self.nat_b, "success": self.success,
                "direct": self.direct, "relayed": self.success and not self.direct,
                "local_type": self.local_type, "remote_type": self.remote_type,
                "relay_protocol": self.relay_protocol, "relay_server": self.relay_server,
                "time": None if self.time is None else round(self.time, 3), "reason": self.reason,
                "turn_fallback": self.fallback,
                "turn_attempts": {"alice": self.alice.get("turn_attempts", []),
                                  "bob": self.bob.get("turn_attempts", [])},
                "connections": {"alice": self.alice.get("connections", []), "bob": self.bob.get("connections", [])}}

    def __str__(self) -> str:
        lines = []
        for who, rep in (("alice", self.alice), ("bob", self.bob)):
            for a in rep.get("turn_attempts", []):
                verdict = "ok" if a["ok"] else "FAILED"
                lines.append(f"  {who}: TURN over {a['transport'].upper():3} to {a['server']:<17} "
                             f"t={a['started']:.2f}-{a['ended'] if a['ended'] is None else format(a['ended'], '.2f')} s "
                             f"{verdict}: {a['why']}")
        head = f"{self.nat_a} x {self.nat_b} (real Linux lab): "
        if not self.success:
            return head + f"ICE FAILED\n{self.reason}\n" + "\n".join(lines)
        how = "DIRECT" if self.direct else "RELAYED"
        via = ""
        if self.local_type == "relay" and self.relay_protocol:
            via = f" (TURN over {self.relay_protocol.upper()} to {self.relay_server})"
        return (head + f"{how} via {self.local_type}{via} - {self.remote_type}, connected after {self.time:.2f} s\n"
                + self.reason + ("\nTURN attempts:\n" + "\n".join(lines) if lines else ""))


def run_ice_lab(nat_a: str = "udp-blocked", nat_b: str = "port-restricted-cone", *, fallback: bool = True,
                capture: bool = True, timeout: float = 10.0) -> IceLabResult:
    """Run ICE across two real NATs (see the module docstring); needs the netns world."""
    from .. import topology as t
    from ..netns import Lab
    from ..recorded import ice_agent_main, ice_servers_main

    with Lab(t.punch(nat_a, nat_b), capture=capture) as lab:
        assert lab.workdir is not None
        box = lab.workdir / "signaling"
        box.mkdir()
        certdir = lab.workdir / "tls"
        from ..turn.stream import lab_certificate

        cert, _ = lab_certificate(certdir, hosts=(t.SERVER_IP,))
        srv = lab.start_python("server", ice_servers_main, t.SERVER_IP, timeout * 3,
                               str(certdir) if fallback else None)
        time.sleep(0.8)  # let the servers import and bind before the agents gather
        urls = turn_urls(t.SERVER_IP, fallback)
        kw = {"timeout": timeout, "turn_urls": urls, "cafile": str(cert), "gather": GATHER,
              "connect_timeout": CONNECT_TIMEOUT}
        a = lab.start_python("alice", ice_agent_main, "alice", True, t.ALICE_IP, t.SERVER_IP, str(box), **kw)
        b = lab.start_python("bob", ice_agent_main, "bob", False, t.BOB_IP, t.SERVER_IP, str(box), **kw)
        ra, rb = a.result(timeout * 3 + 20), b.result(timeout * 3 + 20)
        trace = lab.trace() if capture else None
        srv.terminate()
    ok = bool(ra.get("ok") and rb.get("ok"))
    res = IceLabResult(nat_a, nat_b, ok, False, "", None, fallback=fallback, alice=ra, bob=rb, trace=trace)
    if ok:
        res.local_type, res.remote_type = ra["local"][0], ra["remote"][0]
        res.direct = "relay" not in (res.local_type, res.remote_type)
        res.time = max(ra["after"], rb["after"])
        res.relay_protocol = ra.get("relay_protocol")
        res.relay_server = fmt(tuple(ra["relay_server"])) if ra.get("relay_server") else None
        via = ""
        if res.local_type == "relay":
            via = f", alice's relay reached over {res.relay_protocol.upper()} at {res.relay_server}"
        res.reason = (f"alice nominated her {res.local_type} candidate with bob's {res.remote_type} candidate ("
                      + ("direct" if res.direct else "through the TURN relay") + via + ")")
    else:
        res.reason = f"ICE failed: alice {ra.get('reason')}; bob {rb.get('reason')}"
        blocked = [n for n in (nat_a, nat_b) if _blocks_udp(n)]
        if blocked and not fallback:
            res.reason += (f". {' and '.join(blocked)} lets no UDP out (STUN, UDP TURN and every check are dropped) "
                           "and these agents had only UDP TURN: give them TURN over TCP/TLS on port 443")
    return res


def _blocks_udp(name: str) -> bool:
    from ..nat import preset

    b = preset(name)
    return b.egress_only is not None and not any(p == "udp" for p, _ in b.egress_only)


__all__ = ["run_ice_lab", "IceLabResult", "turn_urls", "STUN_PORT", "TURN_PORT", "TURN_TLS_PORT"]
