"""Chromium inside a lab namespace, driven from the host by Playwright over a pipe.

Playwright starts the browser with ``--remote-debugging-pipe`` and talks to it on file
descriptors 3 and 4. Those survive ``ip netns exec`` (and, rootless, ``nsenter``), so a small
wrapper executable in the lab's work folder::

    #!/bin/sh
    exec setpriv --pdeathsig KILL -- [nsenter ... --] ip netns exec p2plab-XXXX-alice /usr/bin/chromium "$@"

puts the browser in Alice's namespace while the host process keeps the controls. The browser
loads no web page at all: it stays on ``about:blank`` and the host runs the WebRTC JavaScript in
it with ``page.evaluate``, so the only traffic the browser makes is the ICE, DTLS and SCTP of its
``RTCPeerConnection`` (and, with mDNS obfuscation, its multicast DNS on Alice's LAN).

Nothing is left behind: the browser's profile lives in the lab's work folder (removed with the
lab), every browser process runs inside a lab namespace (removed with the lab, which kills what
is inside), and ``--pdeathsig`` kills the browser if the Playwright driver that started it dies.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import systools
from ..errors import LabUnavailableError
from ..netns import rootless

if TYPE_CHECKING:  # pragma: no cover
    from ..netns import Lab

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
# Headless, and quiet: without the background-networking switches Chromium tries to reach Google's
# servers at start, which the lab (no route to the internet) would only refuse.
BASE_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
              "--disable-default-apps", "--disable-extensions", "--mute-audio",
              # no crash handler: it would daemonize out of the browser's process tree
              "--disable-breakpad", "--disable-crash-reporter",
              # no DNS at all: Chromium still looks up Google's hosts at start, which would only
              # send queries into the lab that nothing answers (WebRTC here uses IP addresses only)
              "--host-resolver-rules=MAP * ~NOTFOUND"]
# Chromium hides host candidates behind random .local names (mDNS) unless told not to:
NO_MDNS_FLAG = "--disable-features=WebRtcHideLocalIpsWithMdns"


def find_chromium() -> str:
    """The absolute path of Debian's Chromium; ``LabUnavailableError`` with the fix when it is absent."""
    for name in CHROMIUM_CANDIDATES:
        path = systools.find(name)
        if path:
            return path
    raise LabUnavailableError("Chromium is not installed, so there is no browser to put in the lab: "
                              f"{systools.install_fix(['chromium'])}")


def require_playwright() -> None:
    """Raise ``LabUnavailableError`` (with the fix) when the Python package playwright is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise LabUnavailableError("the Python package playwright drives the browser and is not installed: "
                                  "pip install -e '.[webrtc]' (it uses the system's Chromium; never "
                                  "'playwright install')") from None


def flags(mdns: bool = True) -> list[str]:
    """Chromium's command-line switches for a lab peer (``mdns=False`` shows real host addresses)."""
    if not mdns:
        return BASE_FLAGS + [NO_MDNS_FLAG]
    # the peer's .local names must reach Chromium's own mDNS resolver: it multicasts the query on the LAN
    return [f"{f}, EXCLUDE *.local" if f.startswith("--host-resolver-rules=") else f for f in BASE_FLAGS]


def wrapper(lab: Lab, host: str) -> Path:
    """Write (and return) an executable that starts Chromium inside ``host``'s namespace."""
    chromium = find_chromium()
    inner = rootless.wrap(["ip", "netns", "exec", lab.ns(host), chromium])
    setpriv = systools.find("setpriv")
    argv = ([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []) + inner
    path = lab.workdir / f"chromium-in-{host}"
    path.write_text("#!/bin/sh\n# Chromium in the lab namespace of " + host + "\nexec "
                    + " ".join(shlex.quote(a) for a in argv) + ' "$@"\n')
    path.chmod(0o755)
    return path


def launch(pw: Any, lab: Lab, host: str, *, mdns: bool = True) -> Any:
    """A Playwright ``BrowserContext`` of a headless Chromium running in ``host``'s namespace.

    Its profile is ``<lab workdir>/chromium-profile-<host>``, so every process of this browser has
    the lab's id on its command line (``p2plab-<id>-``).
    """
    profile = lab.workdir / f"chromium-profile-{host}"
    profile.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYWRIGHT_")}
    home = lab.workdir / f"home-{host}"  # ~/.config, ~/.cache of this browser: inside the lab's work folder
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=str(wrapper(lab, host)), headless=True, args=flags(mdns),
        env=env, timeout=30_000)


# -- the peer: an RTCPeerConnection in about:blank ---------------------------------------------

SETUP_JS = """(cfg) => {
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  const st = window.p2plab = {out: [], got: [], states: [], opened: null, sent: 0, errors: []};
  const pc = new RTCPeerConnection({iceServers: cfg.iceServers});
  st.pc = pc;
  pc.onicecandidate = (e) => st.out.push(e.candidate ? e.candidate.toJSON() : null);
  pc.oniceconnectionstatechange = () => st.states.push(['iceConnectionState', pc.iceConnectionState, now()]);
  pc.onicegatheringstatechange = () => st.states.push(['iceGatheringState', pc.iceGatheringState, now()]);
  pc.onconnectionstatechange = () => st.states.push(['connectionState', pc.connectionState, now()]);
  const send = (ch) => { try { ch.send(cfg.message); st.sent += 1; } catch (e) { st.errors.push(String(e)); } };
  const wire = (ch) => {
    st.channel = ch;
    // send on open, then again every 0.5 s until the other side's message has arrived (at most 20 times)
    const opened = () => {
      if (st.opened !== null) return;
      st.opened = now(); st.states.push(['dataChannel', 'open', now()]); send(ch);
      const again = setInterval(() => { if (st.got.length || st.sent >= 20) clearInterval(again); else send(ch); }, 500);
    };
    ch.onopen = opened;
    if (ch.readyState === 'open') opened();
    ch.onmessage = (e) => { if (!st.got.length) send(ch); st.got.push(String(e.data)); };
  };
  if (cfg.offerer) wire(pc.createDataChannel('p2plab')); else pc.ondatachannel = (e) => wire(e.channel);
  return navigator.userAgent;
}"""

OFFER_JS = """async () => { const pc = window.p2plab.pc;
  await pc.setLocalDescription(await pc.createOffer()); return pc.localDescription.sdp; }"""

ANSWER_JS = """async (sdp) => { const pc = window.p2plab.pc;
  await pc.setRemoteDescription({type: 'offer', sdp});
  await pc.setLocalDescription(await pc.createAnswer()); return pc.localDescription.sdp; }"""

REMOTE_ANSWER_JS = """async (sdp) => { await window.p2plab.pc.setRemoteDescription({type: 'answer', sdp}); }"""

CANDIDATE_JS = """async (c) => { await window.p2plab.pc.addIceCandidate(c); }"""

POLL_JS = """() => { const st = window.p2plab; const out = st.out; st.out = [];
  return {out, got: st.got, states: st.states, ice: st.pc.iceConnectionState, sent: st.sent, errors: st.errors,
          channel: st.channel ? st.channel.readyState : null, connection: st.pc.connectionState, opened: st.opened}; }"""

STATS_JS = """async () => { const all = []; (await window.p2plab.pc.getStats()).forEach((r) => all.push(r));
  return {stats: all, local: window.p2plab.pc.localDescription ? window.p2plab.pc.localDescription.sdp : null}; }"""


class ChromiumPeer:
    """One ``RTCPeerConnection`` in a headless Chromium on a lab host (see ``p2plab.webrtc.signalling``)."""

    kind = "chromium"

    def __init__(self, pw: Any, lab: Lab, host: str, *, ice_servers: list[dict], offerer: bool, message: str,
                 mdns: bool = True) -> None:
        self.host = host
        self.mdns = mdns
        try:
            self.context = launch(pw, lab, host, mdns=mdns)
        except Exception as exc:  # playwright's Error: say what failed without the browser's whole log
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LabUnavailableError(f"Chromium did not start in {host}'s namespace of lab {lab.id}: {first}. "
                                      "Is the lab still there (another 'lab down --all'?) and does "
                                      "'chromium --headless --no-sandbox about:blank' run on this machine?") from exc
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.version = self.page.evaluate(SETUP_JS, {"iceServers": ice_servers, "offerer": offerer,
                                                     "message": message})

    def offer(self) -> str:
        return self.page.evaluate(OFFER_JS)

    def answer(self, offer_sdp: str) -> str:
        return self.page.evaluate(ANSWER_JS, offer_sdp)

    def accept_answer(self, answer_sdp: str) -> None:
        self.page.evaluate(REMOTE_ANSWER_JS, answer_sdp)

    def add_candidate(self, candidate: dict) -> None:
        self.page.evaluate(CANDIDATE_JS, candidate)

    def poll(self) -> dict:
        """New trickled candidates (``out``; ``None`` = end of candidates), messages, states."""
        return self.page.evaluate(POLL_JS)

    def stats(self) -> dict:
        """``getStats()`` as a list of reports (what chrome://webrtc-internals shows), plus the selected pair."""
        raw = self.page.evaluate(STATS_JS)
        return {"reports": raw["stats"], "selected": selected_pair(raw["stats"])}

    def close(self) -> None:
        try:
            self.context.close()
        except Exception:  # noqa: BLE001 - the browser may already be gone; the lab kills what is left
            pass


def selected_pair(reports: list[dict]) -> dict | None:
    """The selected candidate pair from ``getStats()`` reports: the ``transport`` report's
    ``selectedCandidatePairId``, with its local and remote candidates."""
    by_id = {r.get("id"): r for r in reports}
    pair_id = next((r.get("selectedCandidatePairId") for r in reports
                    if r.get("type") == "transport" and r.get("selectedCandidatePairId")), None)
    pair = by_id.get(pair_id) if pair_id else None
    if pair is None:  # older reports: the nominated, succeeded pair
        pair = next((r for r in reports if r.get("type") == "candidate-pair" and r.get("nominated")
                     and r.get("state") == "succeeded"), None)
    if pair is None:
        return None
    local, remote = by_id.get(pair.get("localCandidateId"), {}), by_id.get(pair.get("remoteCandidateId"), {})

    def cand(c: dict) -> dict:
        return {"type": c.get("candidateType"), "address": c.get("address"), "port": c.get("port"),
                "protocol": c.get("protocol"), "relayProtocol": c.get("relayProtocol"), "url": c.get("url")}

    return {"local": cand(local), "remote": cand(remote), "state": pair.get("state"),
            "nominated": pair.get("nominated"), "requestsSent": pair.get("requestsSent"),
            "responsesReceived": pair.get("responsesReceived"),
            "currentRoundTripTime": pair.get("currentRoundTripTime")}


def candidate_pairs(reports: list[dict]) -> list[dict]:
    """Every ``candidate-pair`` of a ``getStats()`` report as a row (``local``, ``remote``, ``type``,
    ``priority``, ``state``, ``nominated``, ``selected``, checks sent and answered): the table
    chrome://webrtc-internals shows, in the columns of ``p2plab.viz.ice_pairs_table``."""
    by_id = {r.get("id"): r for r in reports}
    chosen = selected_pair(reports)
    selected_id = next((r.get("selectedCandidatePairId") for r in reports if r.get("type") == "transport"), None)

    def name(c: dict) -> str:
        where = f"{c.get('address')}:{c.get('port')}" if c.get("address") else "(address not shown)"
        return f"{c.get('candidateType')} {where}"

    rows = []
    for r in reports:
        if r.get("type") != "candidate-pair":
            continue
        loc, rem = by_id.get(r.get("localCandidateId"), {}), by_id.get(r.get("remoteCandidateId"), {})
        rows.append({"local": name(loc), "remote": name(rem),
                     "type": f"{loc.get('candidateType')}/{rem.get('candidateType')}",
                     "priority": r.get("priority"), "state": r.get("state"), "nominated": bool(r.get("nominated")),
                     "selected": r.get("id") == selected_id if selected_id else False,
                     "requestsSent": r.get("requestsSent", 0), "responsesReceived": r.get("responsesReceived", 0),
                     "requestsReceived": r.get("requestsReceived", 0)})
    if chosen is None:
        for row in rows:
            row["selected"] = False
    return rows
