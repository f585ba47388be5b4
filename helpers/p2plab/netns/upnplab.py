"""UPnP IGD in the real Linux lab, told as one story: ``run_upnp_story()`` (the ``portmap-upnp`` recording).

1. Debian's miniupnpd runs on Alice's router (nat-a) as installed. Alice finds it by SSDP
   (``M-SEARCH`` to 239.255.255.250:1900), reads its device description over HTTP, asks
   ``GetExternalIPAddress`` (answer: an empty string) and ``AddPortMapping`` for port 5000: refused
   with UPnP error 501 ActionFailed, because the router's WAN address (203.0.113.10, RFC 5737) is on
   miniupnpd's list of reserved addresses - what it would see behind a carrier-grade NAT.
2. miniupnpd starts again with ``ext_perform_stun``: it asks the lab's RFC 5780 STUN server whether
   packets reach its WAN address unchanged. They do, so it trusts that address and the same
   ``AddPortMapping`` is granted; its nftables DNAT rule appears on the router.
3. Bob, whom Alice never contacted, sends a datagram to 203.0.113.10:5000: the kernel forwards it to
   Alice through that rule (her router is a symmetric NAT, which would drop it otherwise), and her
   echo goes back to him.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .. import topology as t

PORT = 5000  # alice's port, and the external port she asks for
BOB_PORT = 6000
SSDP_LINGER = 1.1  # seconds: miniupnpd answers each search target after a random delay below MX = 1 s


def _stop_miniupnpd(lab: Any, proc: Any, nat: str) -> str:
    """Stop a miniupnpd started with ``start_miniupnpd`` and make sure it is gone before the next one binds
    its ports (in a rootless lab SIGTERM reaches nsenter, not always the daemon: kill it by its pid file)."""
    log = proc.log()
    pidfile = lab.workdir / f"miniupnpd-{nat}.pid"
    deadline = time.monotonic() + 5.0
    while pidfile.exists() and time.monotonic() < deadline:
        pid = pidfile.read_text().strip()
        if not pid.isdigit() or lab.exec(nat, ["kill", pid]).returncode:
            break  # no such process any more (it removes its pid file as it exits)
        time.sleep(0.05)
    return log


def _exchange(phase: str, ex: dict[str, Any]) -> dict[str, Any]:
    """One SOAP call in words: the request's arguments, the HTTP status, the answer or the fault."""
    from ..portmap import upnp

    row: dict[str, Any] = {"phase": phase, "action": ex["action"], "http_status": ex["status"]}
    try:
        values = upnp.parse_soap_response(ex["status"], ex["response"], ex["action"])
    except upnp.UpnpActionError as exc:
        row["answer"] = f"UPnPError {exc.code} {exc.name}"
    else:
        row["answer"] = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "(no output arguments)"
    return row


def _request_args(ex: dict[str, Any]) -> str:
    import re

    pairs = re.findall(rb"<(New\w+)>([^<]*)</New\w+>", ex["request"])
    return ", ".join(f"{k.decode()}={v.decode()}" for k, v in pairs)


def run_upnp_story(capture: bool = True) -> dict[str, Any]:
    """Run the three steps above in a fresh lab; returns ``trace``, ``ok``, ``reason``, ``refused`` and
    ``granted`` (what Alice's ``igd.map_port`` saw each time), ``soap`` (one row per SOAP call),
    ``rule`` (miniupnpd's DNAT rule), ``bob`` (what came back to Bob) and the two daemon logs."""
    from .. import systools
    from ..errors import ConfigurationError
    from ..portmap import igd
    from ..portmap import lab as pml
    from .lab import Lab

    if systools.find("miniupnpd") is None:
        raise ConfigurationError("the portmap-upnp scenario runs Debian's miniupnpd on the lab router, and it is "
                                 f"not installed: {systools.install_fix(['miniupnpd-nftables'])}")
    topo = t.punch("symmetric", "symmetric")
    alice, router = topo.nodes["alice"], topo.nodes["nat-a"]
    ask = {"client_ip": alice.ip, "lan": router.lan, "gateway": router.lan_ip, "ssdp_linger": SSDP_LINGER}
    out: dict[str, Any] = {}
    with Lab(topo, capture=capture) as lab:
        daemon = pml.start_miniupnpd(lab, "nat-a", upnp=True)
        refused = lab.run_python("alice", igd.map_port, PORT, **ask)
        out["log_refused"] = _stop_miniupnpd(lab, daemon, "nat-a")
        _, stun = pml.start_stun(lab)
        daemon = pml.start_miniupnpd(lab, "nat-a", upnp=True, stun=stun)
        granted = lab.run_python("alice", igd.map_port, PORT, **ask)
        ruleset = lab.nft_ruleset("nat-a")
        echo = lab.start_protocol("alice", "p2plab.recorded:Echo", port=PORT, duration=2.0, stop_on=("echoed",),
                                  linger=0.1)
        bob = lab.start_protocol("bob", "p2plab.recorded:Hello", port=BOB_PORT, duration=2.0, stop_on=("reply",),
                                 linger=0.1,
                                 kwargs={"target": [router.ips[0], PORT], "text": "hello alice"})
        bob.wait(10)
        echo.wait(10)
        bob_events = json.loads(bob.json_result.read_text()).get("events", [])
        out["log_granted"] = _stop_miniupnpd(lab, daemon, "nat-a")
        out["trace"] = lab.trace() if capture else None
    rule = next((line.strip() for line in ruleset.split(pml.MINIUPNPD_TABLE, 1)[-1].splitlines()
                 if "dnat" in line), "")
    replies = [e for e in bob_events if e["kind"] == "reply"]
    fail = next((e for e in refused["events"] if e["kind"] == "failed"), {})
    out.update(refused=refused, granted=granted, rule=rule, bob=replies)
    out["soap"] = [{**_exchange(phase, ex), "arguments": _request_args(ex)}
                   for phase, got in (("as installed", refused), ("after its STUN check", granted))
                   for ex in got["exchanges"]]
    out["ok"] = bool(fail.get("code") == 501 and granted["state"] == "mapped" and rule and replies)
    if out["ok"]:
        ext = granted["external"]
        out["reason"] = (f"miniupnpd refused AddPortMapping with UPnP error 501 ActionFailed (its WAN address "
                         f"{router.ips[0]} is reserved: the carrier-grade NAT case); after its STUN check it "
                         f"granted {ext[0]}:{ext[1]} -> {alice.ip}:{PORT}, and bob's datagram reached alice "
                         "through its DNAT rule and her echo came back")
    else:
        out["reason"] = (f"unexpected: first answer {fail.get('code')} {fail.get('result')}, then "
                         f"{granted['state']}; rule {rule!r}; bob's replies {replies}")
    return out
