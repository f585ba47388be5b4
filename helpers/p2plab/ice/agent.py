"""A sans-I/O ICE agent (RFC 8445, UDP, one component): gather, check, nominate.

``IceAgent`` is a ``p2plab.sansio.DatagramProtocol`` on one UDP socket. It

1. **gathers** candidates (section 5.1.1): its host address, a server-reflexive address from a
   STUN Binding request, and a relayed address from a TURN Allocate (when ``turn_server`` is
   given and ``p2plab.turn`` is available). STUN and TURN transactions are paced Ta apart.
   Redundant candidates are removed (5.1.3). Event ``gathering-complete`` carries the
   candidates, the username fragment and the password to give to the peer (out of band).
2. after ``set_remote(ufrag, password, candidates)``, **forms the checklist** (6.1.2) and sends
   **connectivity checks** (7.2): STUN Binding requests with USERNAME ``rfrag:lfrag``, PRIORITY,
   ICE-CONTROLLING or ICE-CONTROLLED (with the 64-bit tie-breaker), MESSAGE-INTEGRITY keyed with
   the *peer's* password and FINGERPRINT. One new check leaves every Ta = 50 ms; a check that
   arrives from the peer triggers a check back (7.3.1.4); an address nobody gathered becomes a
   **peer-reflexive** candidate (7.2.5.3.1, 7.3.1.3). A 487 Role Conflict is repaired (7.3.1.1).
3. the controlling agent **nominates** (8.1.1, regular nomination): when the best valid pair can
   no longer be beaten - or ``nomination_wait`` after the first valid pair - it repeats that
   pair's check with USE-CANDIDATE. Both agents then emit ``completed`` with the selected pair.

Relayed candidates: checks from a relayed candidate go to the TURN server as Send indications
(after a CreatePermission for the peer's address), and what the peer sends to the relay comes
back as Data indications: the agent runs a ``p2plab.turn.TurnClient`` inside itself.

**TURN over TCP or TLS** (networks that block UDP): ``turn_transport="tcp"`` or ``"tls"``, or a
fallback list ``turn_servers=["turn:192.0.2.1:3479", "turn:192.0.2.1:3479?transport=tcp",
"turns:192.0.2.1:443"]`` (RFC 7065 URIs) tried in that order until one allocates. The agent stays
sans-I/O: what it sends to a TURN server over a stream is addressed to a
``p2plab.turn.stream.StreamClient`` (an ``(ip, port)`` that also says "tcp" or "tls"); the driver
holds the connection (``p2plab.ice.streams.IceDriver``) and gives what arrives on it back with
the same kind of address. When the driver cannot connect it calls ``stream_failed(addr, why)``,
and the agent moves on to the next server at once. The relayed candidate is still a UDP candidate
(the relay talks UDP to peers); ``candidate.relay_protocol`` says how the agent reaches the
server, like WebRTC's ``relayProtocol``, and ``turn_attempts`` lists each try with its outcome.

After nomination the agent is a **transport** an application can use:

* ``send_data(data, now)`` sends application bytes on the selected pair, whatever its type: from
  the agent's socket to the peer (host, srflx, prflx), or to the TURN server as a Send indication
  when the local end is a relayed candidate. Application bytes from the peer (not STUN) come up
  as ``data`` events, relayed or not. Sending before a pair is selected, after ``close()`` or
  after consent was lost raises ``IceStateError`` with the reason.
* **consent freshness** (RFC 7675): every 4-6 s (5 s randomised by 0.8-1.2) the agent sends a
  Binding request on the selected pair; without an authenticated answer for 30 s consent is
  lost: event ``consent-lost``, state ``failed``, sending refused. These requests also keep the
  NAT mappings alive (RFC 8445 section 11); with ``IceConfig(consent=False)`` the agent sends a
  Binding indication instead whenever nothing went out on the pair for Tr = 15 s.
* ``close()`` stops every check and timer, stops answering the peer, and deletes the TURN
  allocation (a Refresh with LIFETIME 0, RFC 8656 section 7): event ``closed``, and ``released``
  once the server confirmed (or never answered).
* **trickle ICE** (RFC 8838, ``IceConfig(trickle=True)``): ``add_remote_candidate(c)`` adds a
  candidate after the checks started, ``end_of_candidates()`` says no more will come; the checks
  start as soon as the peer's ufrag and password are known, and local candidates gathered later
  (the relay) join them. Until both sides are complete, pairs that all failed do not fail ICE.
* **ICE restart** (RFC 8445 section 9): ``restart()`` draws a new ufrag and password and flushes
  the checks (the roles stay); after ``set_remote`` with the peer's new parameters the checks run
  again, and data stays on the old pair until a new one is selected.
* a relayed selected pair keeps its TURN permission (300 s, RFC 8656): the agent asks for
  permissions, and its ``TurnClient`` renews every permission it holds every 240 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from ..addresses import Endpoint, fmt
from ..errors import ConfigurationError, P2PLabError, StunParseError
from ..sansio import Addr, DatagramProtocol
from ..stun.client import StunClient, Transaction
from ..stun.message import (
    ALLOCATE,
    BINDING,
    ERROR,
    ICE_CONTROLLED,
    ICE_CONTROLLING,
    INDICATION,
    PRIORITY,
    REQUEST,
    SUCCESS,
    USE_CANDIDATE,
    USERNAME,
    XOR_MAPPED_ADDRESS,
    StunMessage,
    is_stun,
    short_term_key,
)
from .candidates import (
    HOST,
    PRFLX,
    RELAY,
    SRFLX,
    Candidate,
    candidate_priority,
    compute_foundation,
    prune_redundant,
)
from .checklist import FAILED, FROZEN, IN_PROGRESS, SUCCEEDED, WAITING, CandidatePair, CheckList

try:  # the TURN client is a colleague's module; relayed candidates need it
    from ..turn.client import TurnClient
    from ..turn.stream import StreamClient
except ImportError:  # pragma: no cover - only while p2plab.turn is missing
    TurnClient = None  # type: ignore[assignment,misc]
    StreamClient = None  # type: ignore[assignment,misc]

TA = 0.050  # RFC 8445 section 14.2: Ta, the pacing of new STUN transactions (default 50 ms)
TR = 15.0  # RFC 8445 section 11: keepalive interval when consent freshness is off
CONSENT_INTERVAL = 5.0  # RFC 7675 section 5.1: consent checks every 5 s, randomised to 0.8-1.2 times
CONSENT_TIMEOUT = 30.0  # RFC 7675 section 5.1: consent expires 30 s after the last answer
ROLE_CONFLICT = 487
FORBIDDEN = 403  # RFC 7675: a 403 (Forbidden) answer to a consent check revokes consent at once
TURN_TRANSPORTS = ("udp", "tcp", "tls")
# Local preference of a relayed candidate by how the agent reaches its TURN server. RFC 8445
# section 5.1.2.1 leaves the local preference to the agent (65535 when it has one address); a relay
# reached over TCP or TLS adds head-of-line blocking and a longer path, so it comes after one reached
# over UDP. libwebrtc (Chrome) orders them the same way, UDP > TCP > TLS, in turn_port.cc's
# GetRelayPreference (ICE_TYPE_PREFERENCE_RELAY_UDP 2, _TCP 1, _TLS 0); pion/ice copied that order.
# p2plab keeps RFC 8445's type preference 0 for every relay and orders them by local preference.
RELAY_LOCAL_PREFERENCE = {"udp": 65535, "tcp": 49151, "tls": 32767}
TURN_DEFAULT_PORTS = {"turn": 3478, "turns": 5349}  # RFC 7065 section 3 (3478 for turn:, 5349 for turns:)


def parse_turn_url(url: str) -> tuple[str, Addr]:
    """A TURN server URI (RFC 7065) as ``(transport, (ip, port))``.

    ``turn:192.0.2.1`` (UDP, port 3478), ``turn:192.0.2.1:3479?transport=tcp`` (TCP),
    ``turns:192.0.2.1:443`` (TLS over TCP; port 5349 when none is given). Only IP addresses:
    the lab has no DNS. ``turns:...?transport=udp`` would be DTLS, which p2plab does not speak.
    """
    text = str(url).strip()
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in TURN_DEFAULT_PORTS:
        raise ConfigurationError(f"not a TURN URI: {url!r}; write turn:IP[:PORT][?transport=udp|tcp] or "
                                 f"turns:IP[:PORT], e.g. 'turn:192.0.2.1:3478?transport=tcp' (RFC 7065)")
    hostport, _, query = rest.partition("?")
    transport = "tls" if scheme == "turns" else "udp"
    if query:
        key, _, value = query.partition("=")
        value = value.strip().lower()
        if key.strip().lower() != "transport" or value not in ("udp", "tcp"):
            raise ConfigurationError(f"{url!r}: the only query RFC 7065 defines is ?transport=udp or ?transport=tcp")
        if scheme == "turns" and value == "udp":
            raise ConfigurationError(f"{url!r}: turns: over UDP means DTLS, which p2plab does not speak; "
                                     f"use turns:IP:PORT (TLS over TCP) or turn:IP:PORT")
        if scheme == "turn":
            transport = value
    if hostport.startswith("["):
        ip, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif hostport.count(":") == 1:
        ip, port_text = hostport.split(":")
    else:
        ip, port_text = hostport, ""
    try:
        import ipaddress

        ipaddress.ip_address(ip)
        port = int(port_text) if port_text else TURN_DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigurationError(f"{url!r}: give the server as an IP address and an optional port 1-65535, "
                                 f"e.g. turn:192.0.2.1:3478 (the lab has no DNS)") from None
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"{url!r}: port {port} is not 1-65535")
    return transport, (ip, port)


class IceStateError(P2PLabError, RuntimeError):
    """The agent cannot do that in its current state (e.g. send before a pair is selected)."""

_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"  # ice-char (RFC 8839)


@dataclass
class IceConfig:
    """Timers and limits of an ICE agent (seconds).

    ``check_rto``/``check_rc``/``check_rm``: retransmissions of a connectivity check (RFC 8489
    section 6.2.1 defaults: first RTO 500 ms, 7 requests, give up 16 x RTO after the last, i.e.
    39.5 s). ``nomination_wait``: regular nomination's stopping criterion - how long the
    controlling agent waits after the first valid pair for better pairs to succeed.
    """

    ta: float = TA
    check_rto: float = 0.5
    check_rc: int = 7
    check_rm: int = 16
    gather_rto: float = 0.5
    gather_rc: int = 7
    gather_rm: int = 16
    nomination_wait: float = 0.5
    max_pairs: int = 100
    turn_srflx: bool = True  # also use the XOR-MAPPED-ADDRESS of the TURN Allocate as srflx
    consent: bool = True  # RFC 7675 consent freshness on the selected pair
    consent_interval: float = CONSENT_INTERVAL
    consent_timeout: float = CONSENT_TIMEOUT
    keepalive: float | None = TR  # Binding indications when consent is off (RFC 8445 11); None: none
    trickle: bool = False  # expect more remote candidates until end_of_candidates() (RFC 8838)

    def __post_init__(self) -> None:
        if self.ta <= 0 or self.check_rto <= 0 or self.gather_rto <= 0:
            raise ConfigurationError("ta, check_rto and gather_rto are positive seconds, e.g. ta=0.05")
        if self.check_rc < 1 or self.gather_rc < 1:
            raise ConfigurationError("check_rc and gather_rc count requests: at least 1, e.g. 7")
        if self.consent_interval <= 0 or self.consent_timeout <= self.consent_interval * 1.2:
            raise ConfigurationError("consent_interval is positive and consent_timeout longer than 1.2 "
                                     "intervals, e.g. consent_interval=5, consent_timeout=30 (RFC 7675)")
        if self.keepalive is not None and self.keepalive <= 0:
            raise ConfigurationError("keepalive is a positive number of seconds, e.g. 15 (RFC 8445 Tr), or None")


@dataclass
class CheckTransaction:
    """One connectivity check in flight: which pair, what it carried, its retransmissions."""

    pair: CandidatePair
    tx: Transaction
    priority: int
    use_candidate: bool
    controlling: bool
    cancelled: bool = False

    @property
    def tid(self) -> bytes:
        return self.tx.request.transaction_id


@dataclass
class _ConsentCheck:
    """One consent request in flight (RFC 7675): each has a new transaction ID and, as in aioice
    and werift, is sent once without retransmissions; only the 30 s expiry counts."""

    pair: CandidatePair
    key: bytes
    sent_at: float


@dataclass
class _PermissionRequest:
    ip: str
    tid: bytes


@dataclass
class _EarlyCheck:
    local: Candidate
    src: Endpoint
    priority: int | None
    use_candidate: bool


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


class IceAgent(DatagramProtocol):
    """One ICE agent (Alice or Bob), sans-I/O. See the module docstring for the procedure.

    Events: ``candidate`` (candidate), ``gathering-complete`` (candidates, ufrag, password,
    notes), ``checking`` (pairs), ``role-switch`` (controlling, why), ``nominating`` (pair),
    ``completed`` (pair, local, remote, after), ``failed`` (reason), ``data`` (data, source,
    local: application bytes from the peer), ``remote-candidate`` (candidate: trickled in),
    ``consent-lost`` (pair, why), ``closed`` (reason), ``released`` (ok, why: the TURN
    allocation is gone, or could not be deleted).

    Application use, with any driver (``p2plab.sim``, ``p2plab.aio``)::

        agent.send_data(b"hello", now)      # then send what datagrams_to_send() returns
        # ... 'data' events carry what the peer sent
        agent.close(now)                    # releases the TURN allocation, stops all timers
    """

    def __init__(self, name: str = "agent", controlling: bool = True, stun_server: Addr | None = None,
                 turn_server: Addr | None = None, turn_username: str | None = None,
                 turn_password: str | None = None, rng: random.Random | None = None,
                 config: IceConfig | None = None, tie_breaker: int | None = None,
                 ufrag: str | None = None, password: str | None = None, component: int = 1,
                 turn_transport: str = "udp", turn_servers: list[str | tuple[str, Addr]] | None = None) -> None:
        super().__init__()
        self.name = name
        self.config = config or IceConfig()
        self.rng = rng or random.Random()
        self.controlling = bool(controlling)
        self.initial_role = "controlling" if controlling else "controlled"
        self.tie_breaker = tie_breaker if tie_breaker is not None else self.rng.getrandbits(64)
        self.ufrag = ufrag or _token(self.rng, 4)  # RFC 8445 5.3: at least 24 bits of randomness
        self.password = password or _token(self.rng, 22)  # at least 128 bits
        self.component = component
        self.stun_server = (stun_server[0], int(stun_server[1])) if stun_server else None
        if turn_transport not in TURN_TRANSPORTS:
            raise ConfigurationError(f"turn_transport must be 'udp', 'tcp' or 'tls'; got {turn_transport!r}")
        # the TURN servers to try, in order: (transport, (ip, port)); the first that allocates is used
        plan: list[tuple[str, Addr]] = []
        if turn_server:
            plan.append((turn_transport, (turn_server[0], int(turn_server[1]))))
        for entry in turn_servers or []:
            if isinstance(entry, str):
                plan.append(parse_turn_url(entry))
            else:
                transport, addr = entry
                if transport not in TURN_TRANSPORTS:
                    raise ConfigurationError(f"turn_servers entries are TURN URIs or (transport, (ip, port)) with "
                                             f"transport 'udp', 'tcp' or 'tls'; got {entry!r}")
                plan.append((transport, (addr[0], int(addr[1]))))
        self._turn_plan = plan
        self.turn_transport, self.turn_server = plan[0] if plan else ("udp", None)
        self.turn_attempts: list[dict[str, Any]] = []  # each TURN server tried: transport, server, ok, why
        self.turn_username = turn_username
        self.turn_password = turn_password

        self.state = "new"
        self.local_candidates: list[Candidate] = []
        self.removed_candidates: list[tuple[Candidate, str]] = []
        self.remote_candidates: list[Candidate] = []
        self.remote_ufrag: str | None = None
        self.remote_password: str | None = None
        self.host: Candidate | None = None
        self.relay: Candidate | None = None
        self.checklist = CheckList(self.controlling, self.config.max_pairs)
        self.valid: list[CandidatePair] = []
        self.selected: CandidatePair | None = None
        self.notes: list[str] = []
        self.started_at = 0.0
        self.gathered_at: float | None = None
        self.checks_started_at: float | None = None
        self.completed_at: float | None = None
        self.failed_reason: str | None = None
        self.stats: dict[str, int] = {"checks-sent": 0, "checks-received": 0, "responses": 0, "role-conflicts": 0,
                                      "bad-integrity": 0, "non-stun": 0, "data-sent": 0, "data-received": 0,
                                      "consent-sent": 0, "consent-answers": 0, "keepalives": 0}
        self.closed_at: float | None = None
        self.consent_at: float | None = None  # last authenticated answer on the selected pair
        self.consent_lost = False
        self.remote_end_of_candidates = not self.config.trickle
        self.previous_selected: CandidatePair | None = None  # during an ICE restart: the old pair
        self.generation = 0  # ICE restarts so far
        self.transactions: dict[bytes, CheckTransaction] = {}
        self.pair_tids: dict[int, list[bytes]] = {}  # id(pair) -> transaction IDs of its checks

        self._stun: Any = None
        self._turn: Any = None
        self._gather_pending: set[str] = set()
        self._permissions: set[str] = set()
        self._permission_refused: dict[str, str] = {}
        self._permission_pending: list[_PermissionRequest] = []
        self._early: list[_EarlyCheck] = []
        self._ticker_at: float | None = None
        self._last_check_at: float | None = None
        self._first_valid_at: float | None = None
        self._nominating: CandidatePair | None = None
        self._prflx_count = 0
        self._consent: dict[bytes, _ConsentCheck] = {}
        # its own generator, so consent checks do not change the transaction IDs of ICE checks
        self._consent_rng = random.Random(f"consent-{self.tie_breaker}-{self.ufrag}")
        self._last_sent_selected: float | None = None
        self._releasing = False
        self._turn_next = 0  # index in _turn_plan of the TURN server tried now

    # -- public ----------------------------------------------------------------------------
    @property
    def role(self) -> str:
        return "controlling" if self.controlling else "controlled"

    def local_parameters(self) -> dict[str, Any]:
        """What goes to the peer through signaling: ufrag, password, candidates."""
        return {"ufrag": self.ufrag, "password": self.password, "candidates": list(self.local_candidates)}

    def set_remote(self, ufrag: str, password: str, candidates: list[Candidate], now: float | None = None,
                   end_of_candidates: bool | None = None) -> None:
        """The peer's ufrag, password and candidates arrived (out of band). Drivers must collect
        ``datagrams_to_send()`` and ``next_timer()`` afterwards.

        ``end_of_candidates``: are these all of the peer's candidates? Default: yes, unless
        ``IceConfig(trickle=True)``; with trickle ICE more come through ``add_remote_candidate``."""
        if now is not None:
            self.now = now
        if self.state == "closed":
            raise IceStateError(f"{self.name}: the agent is closed; create a new IceAgent for a new session")
        if self.remote_ufrag is not None and self.state in ("checking", "completed", "failed"):
            raise IceStateError(f"{self.name}: the peer's parameters were set already and the checks ran; new "
                                f"ones mean an ICE restart: call restart() first (and send the peer its result)")
        self.remote_ufrag, self.remote_password = ufrag, password
        self.remote_candidates = [replace(c) for c in candidates]
        if end_of_candidates is not None:
            self.remote_end_of_candidates = bool(end_of_candidates)
        if self.state == "gathered" or (self.state == "gathering" and self.config.trickle):
            self._start_checks()  # with trickle ICE, before our own gathering is complete (RFC 8838)

    def all_pairs(self) -> list[CandidatePair]:
        """Checklist pairs plus valid pairs that were built from answers (peer-reflexive locals)."""
        extra = [p for p in self.valid if not p.in_checklist]
        return list(self.checklist.pairs) + extra

    def live_checks(self) -> int:
        """Checks still waiting for an answer (not counting cancelled ones)."""
        return sum(1 for t in self.transactions.values() if not t.cancelled)

    @property
    def done(self) -> bool:
        return self.state in ("completed", "failed", "closed")

    # -- application data ---------------------------------------------------------------------
    def send_data(self, data: bytes, now: float | None = None) -> None:
        """Send application bytes to the peer on the selected pair, whatever its type.

        From a host, server-reflexive or peer-reflexive candidate the bytes leave the agent's
        socket for the peer's address; from a relayed candidate they go to the TURN server in a
        Send indication naming the peer. Collect ``datagrams_to_send()`` afterwards (drivers do).
        What the peer sends arrives as ``data`` events. Raises ``IceStateError`` before a pair is
        selected, after ``close()`` and after consent was lost (RFC 7675: sending must stop).
        """
        if now is not None:
            self.now = now
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"send_data sends bytes, not {type(data).__name__}: encode text first, "
                            f"e.g. send_data('hi'.encode())")
        data = bytes(data)
        if self.state == "closed":
            raise IceStateError(f"{self.name}: the agent is closed; start a new ICE session to send again")
        if self.consent_lost:
            raise IceStateError(f"{self.name}: consent to send on {self.data_pair} was lost ({self.failed_reason}); "
                                f"RFC 7675 forbids sending there: restart ICE or start a new session")
        if self.data_pair is None and self.state == "failed":
            raise IceStateError(f"{self.name}: ICE failed, there is no pair to send on: {self.failed_reason}")
        if self.data_pair is None:
            raise IceStateError(f"{self.name}: no candidate pair is selected yet (state {self.state!r}): wait for "
                                f"the 'completed' event before sending application data")
        if is_stun(data):
            raise ConfigurationError("these bytes look like a STUN message (first byte < 0x40 and the magic cookie "
                                     "0x2112A442 at offset 4); the peer would read them as STUN, not as data: "
                                     "frame application data so that it does not start like STUN")
        pair = self.data_pair
        self.stats["data-sent"] += 1
        self._send_via(pair.local, data, pair.remote.addr)

    @property
    def data_pair(self) -> CandidatePair | None:
        """The pair application data uses: the selected one or, during an ICE restart, the pair
        selected before it (RFC 8445 section 9: data keeps flowing until a new pair is selected)."""
        return self.selected or self.previous_selected

    # -- ICE restart ---------------------------------------------------------------------------
    def restart(self, now: float | None = None, gather: bool = False,
                local_addr: Addr | None = None) -> dict[str, Any]:
        """ICE restart (RFC 8445 section 9): new ufrag and password, every check, pair and remote
        candidate flushed - only the roles stay - and the checks run again once the peer's new
        parameters arrive with ``set_remote``. The local candidates (and the TURN allocation) are
        kept. Application data keeps using the old pair until a new one is selected.

        ``gather=True`` (after a network change: the device has a new address, behind another
        NAT) throws the old candidates away and gathers new ones from ``local_addr`` (default:
        the socket's address as the driver knows it now): a new host candidate, a new STUN
        Binding and a new TURN allocation. The old allocation is abandoned, not deleted: its
        5-tuple no longer reaches the server, which lets it expire. The new candidates come with
        the ``gathering-complete`` event; send those to the peer.

        Both agents restart: each calls ``restart()`` and sends the result (``local_parameters()``)
        to the other, which passes it to ``set_remote``.
        """
        if now is not None:
            self.now = now
        if gather and self.state in ("new", "closed"):
            raise IceStateError(f"{self.name}: nothing to restart (state {self.state!r})")
        addr = local_addr or self.local_addr
        if gather and addr is None:
            raise ConfigurationError(f"{self.name}: restart(gather=True) needs the socket's new address, "
                                     f"e.g. restart(now, gather=True, local_addr=('100.64.7.10', 5000))")
        if self.state == "closed":
            raise IceStateError(f"{self.name}: the agent is closed; create a new IceAgent for a new session")
        if self.state in ("new", "gathering"):
            raise IceStateError(f"{self.name}: nothing to restart yet (state {self.state!r}): finish gathering first")
        old = self.data_pair if not self.consent_lost else None
        for name in ("ta", "nominate", "consent", "keepalive"):
            self.cancel_timers(name)
        for tid in self.transactions:
            self.cancel_timers("check:" + tid.hex())
        if old is None:
            self.cancel_timers("consent-expiry")
        self.transactions.clear()
        self.pair_tids.clear()
        self._consent.clear()
        self._early.clear()
        self.generation += 1
        self.ufrag, self.password = _token(self._consent_rng, 4), _token(self._consent_rng, 22)
        self.previous_selected = old
        self.selected = None
        self.remote_ufrag = self.remote_password = None
        self.remote_candidates = []
        self.remote_end_of_candidates = not self.config.trickle
        self.local_candidates = [c for c in self.local_candidates if c.type != PRFLX]
        self._permissions.clear()  # asked again for the new checks (the server may have expired them)
        self._permission_refused.clear()
        self._permission_pending.clear()
        self.checklist = CheckList(self.controlling, self.config.max_pairs)
        self.valid = []
        self._nominating = None
        self._first_valid_at = None
        self._ticker_at = None
        self.completed_at = self.failed_reason = None
        self.consent_lost = False
        self.state = "gathered"
        if gather:
            assert addr is not None
            addr = (addr[0], int(addr[1]))
            self.local_addr = addr
            for sub in (self._stun, self._turn):
                if sub is not None:
                    sub.cancel_timers()
            self._stun = self._turn = None
            self.cancel_timers("gather-turn")
            self.host = self.relay = None
            self.local_candidates = []
            self.removed_candidates = []
            self.gathered_at = None
            self._gather_pending.clear()
            self.notes.append(f"ICE restart {self.generation}: gathering again from {fmt(addr)}")
        self.emit("restarting", ufrag=self.ufrag, password=self.password, candidates=list(self.local_candidates),
                  keeps_sending_on=old, generation=self.generation, agent=self.name, gather=gather)
        if old is not None and self.config.keepalive is not None and not self.config.consent:
            self.set_timer(self.now + self.config.keepalive, "keepalive")
        if gather:
            self._gather(self.now, self.local_addr)
        return self.local_parameters()

    # -- closing ------------------------------------------------------------------------------
    def close(self, now: float | None = None, reason: str = "closed by the application") -> None:
        """End the session: stop checks, consent and keepalive timers, stop answering the peer,
        and delete the TURN allocation (Refresh with LIFETIME 0, RFC 8656 section 7).

        State becomes ``closed`` at once (event ``closed``). The deletion is one more STUN
        transaction: keep driving the agent until ``released`` is True (event ``released``);
        ``next_timer()`` is None from then on. Closing twice does nothing.
        """
        if now is not None:
            self.now = now
        if self.state == "closed":
            return
        self.state = "closed"
        self.closed_at = self.now
        self.cancel_timers()
        self._ticker_at = None
        self.transactions.clear()
        self.checklist.triggered.clear()
        self._consent.clear()
        self._early.clear()
        if self._stun is not None:
            self._stun.cancel_timers()
            self._stun.transactions.clear()
        self.emit("closed", reason=reason, agent=self.name)
        if self._turn is None:
            self.emit("released", ok=True, why="no TURN allocation was held", agent=self.name)
        else:
            turn = self._turn
            turn.now = self.now
            turn.cancel_timers("refresh")
            for tid, tx in list(turn.transactions.items()):
                if tx.request.method != ALLOCATE:  # an Allocate in flight is kept: its answer must be undone
                    del turn.transactions[tid]
                    turn.cancel_timers("tx:" + tid.hex())
            if turn.relayed is not None:
                self._release()
            elif not turn.transactions:
                self.emit("released", ok=True, why="no TURN allocation was held", agent=self.name)
        self._gather_pending.clear()

    def _release(self) -> None:
        assert self._turn is not None
        self._releasing = True
        self._turn.now = self.now
        self._turn.refresh(0)  # TurnClient's public call; a Refresh with LIFETIME 0 deletes the allocation
        self._drain(self._turn)

    @property
    def released(self) -> bool:
        """True when the agent holds nothing on a server any more (closed, allocation deleted)."""
        return self.state == "closed" and (self._turn is None or not self._turn.transactions)

    # -- trickle ICE ---------------------------------------------------------------------------
    def add_remote_candidate(self, candidate: Candidate, now: float | None = None) -> CandidatePair | None:
        """Trickle ICE (RFC 8838): one more candidate of the peer, possibly after checks started.

        It is paired with the local host and relayed candidates (server-reflexive ones are
        checked from their base), the new pairs join the checklist (Waiting when no other pair of
        their foundation is waiting or in progress, else Frozen) and the checks go on. Returns the
        best new pair, or None when the candidate was already known. A candidate a check
        revealed first (peer-reflexive) takes the signalled type and priority (RFC 8838 11.4).
        """
        if now is not None:
            self.now = now
        if not isinstance(candidate, Candidate):
            raise TypeError(f"add_remote_candidate takes a p2plab.ice.Candidate, not {type(candidate).__name__}")
        if self.state in ("closed", "failed"):
            raise IceStateError(f"{self.name}: the agent is {self.state}; a new candidate cannot help any more")
        if self.remote_ufrag is None:
            raise IceStateError(f"{self.name}: set_remote(ufrag, password, candidates) must come first (the "
                                f"candidates may be an empty list with trickle ICE)")
        if self.remote_end_of_candidates:
            raise IceStateError(f"{self.name}: the peer's candidates were declared complete (end_of_candidates, or "
                                f"set_remote without trickle); use IceConfig(trickle=True) to trickle candidates")
        known = next((c for c in self.remote_candidates
                      if c.addr == candidate.addr and c.component == candidate.component), None)
        if known is not None:
            if known.type == PRFLX and candidate.type != PRFLX:
                # RFC 8838 11.4: a check found it first; the signalled candidate replaces the
                # peer-reflexive one in place (its pairs stay, with the signalled priority)
                known.type, known.priority = candidate.type, candidate.priority
                known.foundation, known.related = candidate.foundation, candidate.related
                known.origin = f"{known.origin}; later signalled as a {candidate.type} candidate"
                for p in self.all_pairs():
                    if p.remote is known:
                        p.compute_priority(self.controlling)
                self.checklist.sort()
                self.emit("remote-candidate", candidate=known, replaced_prflx=True, agent=self.name)
            return None
        rc = replace(candidate)
        self.remote_candidates.append(rc)
        self.emit("remote-candidate", candidate=rc, replaced_prflx=False, agent=self.name)
        if self.state not in ("checking", "completed"):
            return None  # the checklist is formed with it when the checks start
        new = self._pair_remote(rc)
        if self.relay is not None:
            self._request_permissions([rc.ip])
        self._kick()
        return max(new, key=lambda p: p.priority) if new else None

    def end_of_candidates(self, now: float | None = None) -> None:
        """The peer has sent all its candidates (RFC 8838 end-of-candidates): from now on a
        checklist whose pairs all failed means ICE failed."""
        if now is not None:
            self.now = now
        self.remote_end_of_candidates = True
        if self.state == "checking" and not self.checklist.pairs:
            self._fail("no candidate pairs: the peer's candidates are complete and none can be paired with ours")
            return
        self._check_failure()

    def _pair_remote(self, rc: Candidate) -> list[CandidatePair]:
        new = [self._pair_local(lc, rc) for lc in self.local_candidates if lc.type in (HOST, RELAY)]
        return [p for p in new if p is not None]

    def _pair_local(self, lc: Candidate, rc: Candidate) -> CandidatePair | None:
        """Trickle ICE: one new pair joins the running checklist (RFC 8838 section 10)."""
        if lc.component != rc.component or (":" in lc.ip) != (":" in rc.ip) or self.checklist.find(lc, rc):
            return None
        if len(self.checklist) >= self.checklist.max_pairs:
            self.notes.append(f"trickled pair {lc} -> {rc} dropped: the checklist holds "
                              f"{self.checklist.max_pairs} pairs already")
            return None
        pair = CandidatePair(lc, rc, why="added by trickle ICE: a candidate that arrived after the checks began")
        busy = any(p.foundation == pair.foundation and p.state in (FROZEN, WAITING, IN_PROGRESS)
                   for p in self.checklist.pairs)
        pair.set_state(FROZEN if busy else WAITING, self.now)
        self.checklist.add(pair)
        return pair

    # -- driver entry points -----------------------------------------------------------------
    def start(self, now: float, local_addr: Addr | None = None) -> None:
        super().start(now, local_addr)
        if local_addr is None:
            raise ConfigurationError("IceAgent.start needs the socket's local address (ip, port)")
        self.started_at = now
        self._gather(now, local_addr)

    def _gather(self, now: float, local_addr: Addr) -> None:
        """Gather candidates from ``local_addr``: host, then STUN (srflx), then TURN (relay)."""
        self.state = "gathering"
        self.host = Candidate.make(HOST, local_addr, component=self.component,
                                   origin="the address of the agent's own socket")
        self._add_local(self.host)
        delay = 0.0
        if self.stun_server:
            self._stun = StunClient(self.stun_server, rto=self.config.gather_rto, rc=self.config.gather_rc,
                                    rm=self.config.gather_rm, rng=random.Random(self.rng.getrandbits(64)))
            self._gather_pending.add("stun")
            self._stun.start(now, local_addr)
            self._drain(self._stun)
            delay = self.config.ta
        if self._turn_plan:
            self._turn_next = 0
            self.turn_transport, self.turn_server = self._turn_plan[0]
            if TurnClient is None:
                self.notes.append("relayed candidates skipped: p2plab.turn.client is not available")
            elif not self.turn_username or self.turn_password is None:
                self.notes.append("relayed candidates skipped: no TURN username/password given")
            else:
                self._gather_pending.add("turn")
                self.set_timer(now + delay, "gather-turn")
        self._check_gathering()

    def datagram_received(self, data: bytes, addr: Addr, now: float, **_: Any) -> None:
        self.now = now
        stream = getattr(addr, "transport", "udp")
        addr = (addr[0], int(addr[1]))
        from_turn = self._turn is not None and stream == self.turn_transport and addr == self.turn_server
        if self.state == "closed":  # only the TURN server's answer to the deletion still matters
            if from_turn:
                self._turn.datagram_received(data, addr, now)
                self._drain(self._turn)
            return
        if from_turn:
            self._turn.datagram_received(data, addr, now)
            self._drain(self._turn)
        elif stream != "udp":
            self.stats["non-stun"] += 1  # a stream the agent no longer uses (an abandoned TURN attempt)
        elif self._stun is not None and addr == self.stun_server:
            self._stun.datagram_received(data, addr, now)
            self._drain(self._stun)
        else:
            assert self.host is not None
            self._on_packet(data, addr, self.host)

    def next_timer(self) -> float | None:
        times = [t for t in (super().next_timer(),) if t is not None]
        for sub in (self._stun, self._turn):
            if sub is not None and sub.next_timer() is not None:
                times.append(sub.next_timer())
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)
        for sub in (self._stun, self._turn):
            if sub is not None:
                at = sub.next_timer()
                if at is not None and at <= now + 1e-12:
                    sub.handle_timer(now)
                    self._drain(sub)

    def on_timer(self, name: str, now: float) -> None:
        if name == "ta":
            self._ticker_at = None
            self._tick()
        elif name.startswith("check:"):
            self._retransmit(bytes.fromhex(name[6:]))
        elif name == "gather-turn":
            assert TurnClient is not None and self.local_addr is not None
            if self.turn_transport == "udp":
                timers = {"rto": self.config.gather_rto, "rc": self.config.gather_rc, "rm": self.config.gather_rm}
            else:  # a reliable transport: no retransmissions, Ti = 39.5 s (RFC 8489 section 6.2.2)
                timers = {}
            self._turn = TurnClient(self.turn_server, self.turn_username, self.turn_password,
                                    rng=random.Random(self.rng.getrandbits(64)), software=None,
                                    transport=self.turn_transport, **timers)
            self.turn_attempts.append({"transport": self.turn_transport, "server": fmt(self.turn_server),
                                       "started": round(now - self.started_at, 6), "ended": None, "ok": None,
                                       "why": "in progress"})
            self._turn.start(now, self.local_addr)
            self._drain(self._turn)
        elif name == "nominate":
            self._maybe_nominate(force=True)
        elif name == "consent":
            self._send_consent()
        elif name == "consent-expiry":
            self._check_consent()
        elif name == "keepalive":
            self._keepalive()

    # -- gathering -------------------------------------------------------------------------------
    def _add_local(self, c: Candidate) -> None:
        self.local_candidates.append(c)
        self.emit("candidate", candidate=c, agent=self.name)
        if self.state == "checking" and c.type in (HOST, RELAY):  # trickle ICE: checks began before it came
            for rc in self.remote_candidates:
                self._pair_local(c, rc)
            if c.type == RELAY:
                self._request_permissions([rc.ip for rc in self.remote_candidates])
            self._kick()

    def _drain(self, sub: Any) -> None:
        while True:
            out = sub.datagrams_to_send()
            evs = sub.events()
            if not out and not evs:
                return
            for item in out:
                if sub is self._turn and self.turn_transport != "udp":
                    self._outbox.append((bytes(item[0]), self.turn_destination))  # for the driver's connection
                else:
                    self.send(item[0], item[1])
            for ev in evs:
                self._on_sub_event(sub, ev)

    def _on_sub_event(self, sub: Any, ev: Any) -> None:
        assert self.host is not None
        if sub is self._stun:
            if ev.kind == "mapped" and "stun" in self._gather_pending:
                self._add_local(Candidate.make(
                    SRFLX, ev.address, base=self.host.addr, component=self.component, server=self.stun_server,
                    related=self.host.addr,
                    origin=f"XOR-MAPPED-ADDRESS of a STUN Binding response from {fmt(self.stun_server)}"))
            elif ev.kind in ("timeout", "error"):
                self.notes.append(f"no server-reflexive candidate: the STUN server {fmt(self.stun_server)} "
                                  + ("never answered" if ev.kind == "timeout" else f"answered {ev.code} {ev.reason}"))
            self._gather_pending.discard("stun")
            self._check_gathering()
            return
        # the TURN client
        if self.state == "closed":
            self._on_turn_event_closed(ev)
            return
        if ev.kind == "allocated" and "turn" in self._gather_pending:
            over = "" if self.turn_transport == "udp" else f" over {self.turn_transport.upper()}"
            self.relay = Candidate.make(RELAY, ev.relayed, component=self.component, server=self.turn_server,
                                        related=ev.mapped, local_pref=RELAY_LOCAL_PREFERENCE[self.turn_transport],
                                        origin=f"XOR-RELAYED-ADDRESS of a TURN Allocate at {fmt(self.turn_server)}"
                                               f"{over}")
            self.relay.relay_protocol = self.turn_transport
            self._end_attempt(True, f"allocated relay {fmt(ev.relayed)}")
            self._add_local(self.relay)
            # over TCP/TLS the mapped address is the NAT's TCP mapping: no use as a UDP srflx candidate
            if self.config.turn_srflx and ev.mapped is not None and self.turn_transport == "udp":
                used = {c.local_preference for c in self.local_candidates if c.type == SRFLX}
                pref = 65535 - len(used)  # unique local preference per type (RFC 8445 5.1.2.1)
                self._add_local(Candidate.make(
                    SRFLX, ev.mapped, base=self.host.addr, component=self.component, local_pref=pref,
                    server=self.turn_server, related=self.host.addr,
                    origin=f"XOR-MAPPED-ADDRESS of the TURN Allocate response from {fmt(self.turn_server)}"))
            self._gather_pending.discard("turn")
            self._check_gathering()
        elif ev.kind in ("error", "timeout") and ev.method == "Allocate" and "turn" in self._gather_pending:
            what = "never answered" if ev.kind == "timeout" else f"answered {ev.code} {ev.reason}"
            self._turn_failed(f"the TURN server {fmt(self.turn_server)} {what}")
        elif ev.kind == "permission":
            for ip, _ in ev.peers:
                self._permissions.add(ip)
            self._settle_permissions()
            self._kick()
        elif ev.kind in ("error", "timeout") and ev.method == "CreatePermission":
            why = ("the TURN server never answered CreatePermission" if ev.kind == "timeout"
                   else f"the TURN server refused CreatePermission: {ev.code} {ev.reason}")
            self._settle_permissions(why)
        elif ev.kind == "data":
            assert self.relay is not None
            self._on_packet(ev.data["data"], (ev.peer[0], int(ev.peer[1])), self.relay)  # ev.data is the dict

    @property
    def turn_destination(self) -> Addr | None:
        """Where TURN messages go: ``(ip, port)`` over UDP, a ``StreamClient`` over TCP/TLS."""
        if self.turn_server is None or self.turn_transport == "udp" or StreamClient is None:
            return self.turn_server
        return StreamClient(self.turn_server[0], self.turn_server[1], self.turn_transport)

    def _end_attempt(self, ok: bool, why: str) -> None:
        if self.turn_attempts and self.turn_attempts[-1]["ended"] is None:
            self.turn_attempts[-1].update(ended=round(self.now - self.started_at, 6), ok=ok, why=why)

    def _turn_failed(self, why: str) -> None:
        """This TURN server gave no allocation: try the next one in the plan, or give up on a relay."""
        label = f"TURN over {self.turn_transport.upper()} to {fmt(self.turn_server)}"
        self._end_attempt(False, why)
        self.emit("turn-attempt-failed", transport=self.turn_transport, server=self.turn_server, why=why,
                  agent=self.name)
        if self._turn is not None:
            self._turn.cancel_timers()
            self._turn.transactions.clear()
        self._turn = None
        self._turn_next += 1
        if self._turn_next < len(self._turn_plan):
            self.notes.append(f"{label} failed ({why}); trying the next TURN server")
            self.turn_transport, self.turn_server = self._turn_plan[self._turn_next]
            self.set_timer(self.now, "gather-turn")
            return
        self.notes.append(f"no relayed candidate: {label} failed ({why})"
                          + (f", after {len(self._turn_plan) - 1} other TURN servers failed"
                             if len(self._turn_plan) > 1 else ""))
        self._gather_pending.discard("turn")
        self._check_gathering()

    def stream_failed(self, addr: Addr, why: str, now: float | None = None) -> None:
        """The driver could not connect to a TURN server over TCP/TLS, or the connection broke.

        While gathering, the agent moves on to the next TURN server at once (instead of waiting
        39.5 s for an answer that cannot come). A connection that breaks later takes the
        allocation with it (RFC 8656 section 3.1: it is tied to the connection): event
        ``turn-connection-lost``."""
        if now is not None:
            self.now = now
        transport = getattr(addr, "transport", "udp")
        if self._turn is None or transport != self.turn_transport or (addr[0], int(addr[1])) != self.turn_server:
            return
        if "turn" in self._gather_pending and self.relay is None:
            self._turn_failed(f"{transport.upper()} connection failed: {why}")
            return
        self.notes.append(f"the {transport.upper()} connection to the TURN server {fmt(self.turn_server)} was "
                          f"lost ({why}); the relayed candidate went with it")
        self.emit("turn-connection-lost", transport=transport, server=self.turn_server, why=why, agent=self.name)
        if self.state == "closed" and self._turn.transactions:
            self._turn.cancel_timers()
            self._turn.transactions.clear()
            self.emit("released", ok=True, why=f"the {transport.upper()} connection to {fmt(self.turn_server)} "
                                               "closed, and the allocation with it", agent=self.name)

    def _on_turn_event_closed(self, ev: Any) -> None:
        if ev.kind == "allocated" and not self._releasing:  # the Allocate answer came after close()
            self._release()
        elif ev.kind == "deallocated":
            self.emit("released", ok=True, why=f"the TURN server {fmt(self.turn_server)} deleted the allocation",
                      agent=self.name)
        elif ev.kind in ("error", "timeout") and ev.method in ("Refresh", "Allocate"):
            what = "never answered" if ev.kind == "timeout" else f"answered {ev.code} {ev.reason}"
            ok = ev.method == "Allocate" or (ev.kind == "error" and ev.code == 437)  # 437: already gone
            self.emit("released", ok=ok, why=f"{ev.method}: the TURN server {fmt(self.turn_server)} {what}",
                      agent=self.name)

    def _check_gathering(self) -> None:
        # with trickle ICE the checks may have started while gathering went on (RFC 8838)
        if self.gathered_at is not None or self._gather_pending or self.state not in ("gathering", "checking",
                                                                                        "completed"):
            return
        kept, removed = prune_redundant(self.local_candidates)
        self.local_candidates = kept
        self.removed_candidates.extend(removed)
        self.gathered_at = self.now
        early = self.state != "gathering"
        if not early:
            self.state = "gathered"
        self.emit("gathering-complete", candidates=list(kept), ufrag=self.ufrag, password=self.password,
                  removed=[(c, why) for c, why in removed], notes=list(self.notes), agent=self.name)
        if early:
            self._check_failure()
        elif self.remote_ufrag is not None:
            self._start_checks()

    # -- TURN permissions -------------------------------------------------------------------------
    def _request_permissions(self, ips: list[str]) -> None:
        if self._turn is None or self.relay is None:
            return
        asked = {p.ip for p in self._permission_pending} | self._permissions | set(self._permission_refused)
        self._turn.now = self.now
        for ip in dict.fromkeys(ips):
            if ip in asked:
                continue
            tx = self._turn.create_permission((ip, 0))
            self._permission_pending.append(_PermissionRequest(ip, tx.request.transaction_id))
        self._drain(self._turn)

    def _settle_permissions(self, why: str | None = None) -> None:
        """Match finished CreatePermission transactions to their IPs."""
        live = set(self._turn.transactions) if self._turn is not None else set()
        still = []
        for req in self._permission_pending:
            if req.tid in live:
                still.append(req)
            elif req.ip not in self._permissions:
                reason = why or "the TURN server refused CreatePermission"
                self._permission_refused[req.ip] = reason
                for p in self.checklist.pairs:
                    if p.local.type == RELAY and p.remote.ip == req.ip and p.state in (FROZEN, WAITING):
                        p.set_state(FAILED, self.now, f"pair failed: {reason} for {req.ip}, so the relay "
                                                      f"would not forward checks to {fmt(p.remote.addr)}")
        self._permission_pending = still
        self._check_failure()

    # -- checks: scheduling ---------------------------------------------------------------------
    def _start_checks(self) -> None:
        self.state = "checking"
        self.checks_started_at = self.now
        self.checklist.form(self.local_candidates, self.remote_candidates)
        self.emit("checking", pairs=len(self.checklist), agent=self.name)
        if self.relay is not None:
            self._request_permissions([c.ip for c in self.remote_candidates])
        for early in self._early:
            self._triggered_from_request(early.local, early.src, early.priority, early.use_candidate)
        self._early.clear()
        if not self.checklist.pairs:
            if self.remote_end_of_candidates:
                self._fail("no candidate pairs: the agents have no candidates of the same address family")
            return  # trickle ICE: pairs come with the peer's next candidates
        self._kick()

    def _eligible(self, p: CandidatePair) -> bool:
        return p.local.type != RELAY or p.remote.ip in self._permissions

    def _kick(self) -> None:
        if self._ticker_at is not None or self.state not in ("checking", "completed"):
            return
        at = self.now if self._last_check_at is None else max(self.now, self._last_check_at + self.config.ta)
        self._ticker_at = at
        self.set_timer(at, "ta")

    def _tick(self) -> None:
        if self.state not in ("checking", "completed"):
            return
        pair = None
        q = self.checklist.triggered
        deferred = []
        while q:
            p = q.popleft()
            if not self._eligible(p):
                deferred.append(p)
                continue
            if p.state == FAILED and not p.use_candidate:
                continue
            pair = p
            break
        q.extendleft(reversed(deferred))
        if pair is None and self.state == "checking":
            pair = self.checklist.next_ordinary(self._eligible)
        if pair is not None:
            self._send_check(pair)
            self._last_check_at = self.now
        waiting = q or (self.state == "checking" and self.checklist.by_state(WAITING, FROZEN))
        if pair is not None or waiting:
            self._ticker_at = self.now + self.config.ta
            self.set_timer(self._ticker_at, "ta")

    def _send_check(self, pair: CandidatePair) -> None:
        assert self.remote_ufrag is not None and self.remote_password is not None
        for tid in self.pair_tids.get(id(pair), []):  # a new check supersedes an older one (7.3.1.4)
            old = self.transactions.get(tid)
            if old is not None:
                old.cancelled = True
        prio = candidate_priority(PRFLX, pair.local.local_preference, pair.local.component)
        attrs: list[tuple[int, Any]] = [(USERNAME, f"{self.remote_ufrag}:{self.ufrag}"), (PRIORITY, prio)]
        attrs.append((ICE_CONTROLLING, self.tie_breaker) if self.controlling else (ICE_CONTROLLED, self.tie_breaker))
        nominate = self.controlling and pair.use_candidate
        if nominate:
            attrs.append((USE_CANDIDATE, None))
        req = StunMessage(BINDING, REQUEST, attributes=attrs, rng=self.rng)
        key = short_term_key(self.remote_password)
        data = req.encode(key=key, fingerprint=True)
        tx = Transaction(req, data, pair.remote.addr, self.now, self.config.check_rto, self.config.check_rc,
                         self.config.check_rm, key)
        tx.first_send(self.now)
        self.transactions[req.transaction_id] = CheckTransaction(pair, tx, prio, nominate, self.controlling)
        self.pair_tids.setdefault(id(pair), []).append(req.transaction_id)
        if pair.first_check is None:
            pair.first_check = self.now
        pair.checks_sent += 1
        pair.set_state(IN_PROGRESS, self.now)
        self.stats["checks-sent"] += 1
        self._send_via(pair.local, data, pair.remote.addr)
        self.set_timer(tx.next_time, "check:" + req.transaction_id.hex())

    def _send_via(self, local: Candidate, data: bytes, dst: Endpoint) -> None:
        sel = self.data_pair
        if sel is not None and dst == sel.remote.addr and (local.type == RELAY) == (sel.local.type == RELAY):
            self._last_sent_selected = self.now
        if local.type == RELAY and self._turn is not None:
            self._turn.now = self.now
            self._turn.send_to(data, dst)
            self._drain(self._turn)
        else:
            self.send(data, dst)

    def _retransmit(self, tid: bytes) -> None:
        ct = self.transactions.get(tid)
        if ct is None or ct.tx.next_time > self.now + 1e-9:
            return
        result = ct.tx.on_timer(self.now)
        pair = ct.pair
        if result == "send":
            if not ct.cancelled:
                pair.checks_sent += 1
                self.stats["checks-sent"] += 1
                self._send_via(pair.local, ct.tx.data, ct.tx.addr)
            self.set_timer(ct.tx.next_time, "check:" + tid.hex())
            return
        del self.transactions[tid]
        if ct.cancelled or pair.state != IN_PROGRESS:
            return
        waited = self.now - ct.tx.started
        pair.set_state(FAILED, self.now, f"pair failed: checks to {fmt(pair.remote.addr)} never answered "
                                         f"({ct.tx.sent} requests over {waited:.1f} s)")
        if ct.use_candidate:
            self._nomination_failed(pair)
        self._check_failure()

    # -- checks: receiving ------------------------------------------------------------------------
    def _on_packet(self, data: bytes, src: Endpoint, local: Candidate) -> None:
        if not is_stun(data):
            self.stats["non-stun"] += 1
            self.stats["data-received"] += 1
            sel = self.data_pair
            on_selected = sel is not None and src == sel.remote.addr and local is self._base(sel.local)
            self.emit("data", data=data, source=src, local=local, on_selected=on_selected, agent=self.name)
            return
        try:
            msg = StunMessage.decode(data)
        except StunParseError:
            self.stats["non-stun"] += 1
            return
        if msg.method != BINDING:
            return
        if msg.has_fingerprint and not msg.check_fingerprint():
            return
        if msg.cls == REQUEST:
            self._on_request(msg, src, local)
        elif msg.cls in (SUCCESS, ERROR):
            self._on_response(msg, src, local)

    def _respond(self, resp: StunMessage, local: Candidate, dst: Endpoint, integrity: bool = True) -> None:
        data = resp.encode(key=short_term_key(self.password) if integrity else None, fingerprint=True)
        self._send_via(local, data, dst)

    def _on_request(self, msg: StunMessage, src: Endpoint, local: Candidate) -> None:
        self.stats["checks-received"] += 1
        username = msg.get(USERNAME)
        if username is None or not msg.has_integrity:
            self._respond(msg.error_response(400, "Bad Request: USERNAME and MESSAGE-INTEGRITY are required"),
                          local, src, integrity=False)
            return
        if username.split(":", 1)[0] != self.ufrag or not msg.check_integrity(short_term_key(self.password)):
            self.stats["bad-integrity"] += 1
            self._respond(msg.error_response(401, "Unauthenticated"), local, src, integrity=False)
            return
        # RFC 8445 section 7.3.1.1: detecting and repairing role conflicts
        if self.controlling and ICE_CONTROLLING in msg:
            theirs = msg.get(ICE_CONTROLLING)
            if self.tie_breaker >= theirs:
                self.stats["role-conflicts"] += 1
                self._respond(msg.error_response(ROLE_CONFLICT, "Role Conflict"), local, src)
                return
            self._switch_role(False, f"both agents were controlling and the peer's tie-breaker {theirs} is "
                                     f"larger than ours {self.tie_breaker}")
        elif not self.controlling and ICE_CONTROLLED in msg:
            theirs = msg.get(ICE_CONTROLLED)
            if self.tie_breaker >= theirs:
                self._switch_role(True, f"both agents were controlled and our tie-breaker {self.tie_breaker} is "
                                        f"at least the peer's {theirs}")
            else:
                self.stats["role-conflicts"] += 1
                self._respond(msg.error_response(ROLE_CONFLICT, "Role Conflict"), local, src)
                return
        self._respond(msg.response(SUCCESS, [(XOR_MAPPED_ADDRESS, src)]), local, src)
        use = USE_CANDIDATE in msg
        if self.state not in ("checking", "completed") or self.remote_ufrag is None:
            self._early.append(_EarlyCheck(local, src, msg.get(PRIORITY), use))
            return
        self._triggered_from_request(local, src, msg.get(PRIORITY), use)

    def _triggered_from_request(self, local: Candidate, src: Endpoint, priority: int | None,
                                use_candidate: bool) -> None:
        remote = next((c for c in self.remote_candidates if c.addr == src), None)
        if remote is None:  # RFC 8445 7.3.1.3: a peer-reflexive remote candidate
            self._prflx_count += 1
            remote = Candidate.make(
                PRFLX, src, component=self.component,
                priority=priority if priority else candidate_priority(PRFLX, 65535, self.component),
                foundation=f"prflx{self._prflx_count}",
                origin=f"a check arrived from {fmt(src)}, which the peer never sent us: a NAT mapping made "
                       f"for this path")
            self.remote_candidates.append(remote)
            self.emit("remote-prflx", candidate=remote, agent=self.name)
        # the triggered pair uses the base the check arrived on: the socket, or the relay (7.3.1.4)
        pair = self.checklist.find(local, remote)
        enqueue = self.state == "checking"
        if pair is None:
            pair = CandidatePair(local, remote, state=WAITING,
                                 why=f"added by a triggered check: the peer's check reached {local}")
            pair.history.append((self.now, WAITING))
            self.checklist.add(pair)
        elif pair.state == SUCCEEDED:
            enqueue = False
        elif pair.state == IN_PROGRESS:
            for tid in self.pair_tids.get(id(pair), []):
                if tid in self.transactions:
                    self.transactions[tid].cancelled = True  # stop retransmitting, still accept answers
            pair.set_state(WAITING, self.now)
        else:
            pair.set_state(WAITING, self.now)
        pair.requests_received += 1
        if enqueue and pair not in self.checklist.triggered:
            self.checklist.triggered.append(pair)
        if use_candidate and not self.controlling:  # RFC 8445 7.3.1.5
            if pair.state == SUCCEEDED:
                self._nominated(pair.valid_pair or pair)
            else:
                pair.nominate_on_success = True
        self._kick()

    def _on_response(self, msg: StunMessage, src: Endpoint, local: Candidate) -> None:
        if msg.transaction_id in self._consent:
            self._on_consent_response(msg, src, local)
            return
        ct = self.transactions.get(msg.transaction_id)
        if ct is None:
            return
        if not msg.has_integrity or not msg.check_integrity(ct.tx.key):
            self.stats["bad-integrity"] += 1
            return  # RFC 8489: discard, keep waiting
        del self.transactions[msg.transaction_id]
        self.cancel_timers("check:" + msg.transaction_id.hex())
        self.stats["responses"] += 1
        pair = ct.pair
        if msg.cls == ERROR:
            code, reason = msg.error or (0, "")
            if code == ROLE_CONFLICT:  # RFC 8445 7.2.5.1
                if ct.controlling == self.controlling:
                    self._switch_role(not ct.controlling, "the peer answered 487 Role Conflict")
                    # RFC 8445 16.1: after a 487 the agent MUST change its tie-breaker (drawn from
                    # the auxiliary generator, so the checks' transaction IDs stay as they were)
                    self.tie_breaker = self._consent_rng.getrandbits(64)
                pair.set_state(WAITING, self.now)
                if pair not in self.checklist.triggered:
                    self.checklist.triggered.append(pair)
                self._kick()
                return
            pair.set_state(FAILED, self.now, f"pair failed: the peer answered {code} {reason}")
            self._check_failure()
            return
        if src != pair.remote.addr or local is not pair.local:  # RFC 8445 7.2.5.2.1
            pair.set_state(FAILED, self.now, f"pair failed: the answer came from {fmt(src)} to {local}, but the "
                                             f"check went to {fmt(pair.remote.addr)} from {pair.local} "
                                             f"(non-symmetric addresses)")
            self._check_failure()
            return
        mapped = msg.get(XOR_MAPPED_ADDRESS)
        mapped = (mapped[0], int(mapped[1])) if mapped else pair.local.addr
        local_c = next((c for c in self.local_candidates if c.addr == mapped), None)
        if local_c is None:  # RFC 8445 7.2.5.3.1: a peer-reflexive local candidate
            local_c = Candidate.make(
                PRFLX, mapped, base=pair.local.base, component=pair.local.component, priority=ct.priority,
                foundation=compute_foundation(PRFLX, pair.local.base[0]), related=pair.local.base,
                origin=f"the peer saw our check to it come from {fmt(mapped)}: a NAT mapping nobody gathered")
            self._add_local(local_c)
        valid = self._valid_pair_for(pair, local_c)
        rtt = self.now - ct.tx.send_times[-1]
        pair.set_state(SUCCEEDED, self.now, pair.why if pair.why.startswith("added") else "")
        pair.succeeded_at = pair.succeeded_at or self.now
        pair.valid_pair = valid
        if valid is not pair:
            valid.generated_by = pair
            valid.set_state(SUCCEEDED, self.now)
            valid.succeeded_at = valid.succeeded_at or self.now
        pair.history.append((self.now, f"answered in {rtt * 1000:.0f} ms"))
        self.checklist.unfreeze_foundation(pair.foundation, self.now)  # 7.2.5.3.3
        if self._first_valid_at is None:
            self._first_valid_at = self.now
            if self.controlling:
                self.set_timer(self.now + self.config.nomination_wait, "nominate")
        if ct.use_candidate and self.controlling:
            self._nominated(valid)
        elif pair.nominate_on_success and not self.controlling:
            self._nominated(valid)
        self._maybe_nominate()
        self._kick()

    def _valid_pair_for(self, pair: CandidatePair, local_c: Candidate) -> CandidatePair:
        """RFC 8445 7.2.5.3.2: the valid pair is (the candidate the mapped address names, the remote)."""
        if local_c is pair.local:
            valid = pair
        else:
            valid = self.checklist.find(local_c, pair.remote) or next(
                (v for v in self.valid if v.local is local_c and v.remote is pair.remote), None)
            if valid is None:
                valid = CandidatePair(local_c, pair.remote, state=SUCCEEDED, in_checklist=False,
                                      why=f"valid pair built from the answer to the check {pair}")
                valid.compute_priority(self.controlling)
        valid.valid = True
        if valid not in self.valid:
            self.valid.append(valid)
        return valid

    # -- roles and nomination ----------------------------------------------------------------
    def _switch_role(self, controlling: bool, why: str) -> None:
        if controlling == self.controlling:
            return
        self.controlling = controlling
        self.checklist.set_role(controlling, [p for p in self.valid if not p.in_checklist])
        if not controlling:
            self._nominating = None
            for p in self.all_pairs():
                p.use_candidate = False
        elif self.valid:
            self.set_timer(self.now + self.config.nomination_wait, "nominate")
        self.emit("role-switch", controlling=controlling, role=self.role, why=why, agent=self.name)

    def _maybe_nominate(self, force: bool = False) -> None:
        if not self.controlling or self.state != "checking" or self._nominating is not None or not self.valid:
            return
        best = max(self.valid, key=lambda p: p.priority)
        better_pending = [p for p in self.checklist.pairs
                          if p.state in (FROZEN, WAITING, IN_PROGRESS) and p.priority > best.priority]
        waited = self._first_valid_at is not None and self.now >= self._first_valid_at + self.config.nomination_wait - 1e-9
        if better_pending and not (force or waited):
            return
        gen = best.generated_by or best
        gen.use_candidate = True
        self._nominating = gen
        if gen not in self.checklist.triggered:
            self.checklist.triggered.append(gen)
        self.emit("nominating", pair=best, agent=self.name,
                  why="no better pair can still succeed" if not better_pending else
                  f"waited {self.config.nomination_wait:g} s after the first valid pair")
        self._kick()

    def _nomination_failed(self, gen: CandidatePair) -> None:
        gen.use_candidate = False
        self._nominating = None
        self.valid = [v for v in self.valid if (v.generated_by or v) is not gen]
        self._maybe_nominate(force=True)

    def _nominated(self, valid: CandidatePair) -> None:
        valid.nominated = True
        if self.selected is not None:
            return
        self.selected = valid
        self.previous_selected = None  # after an ICE restart: data moves to the new pair
        self.cancel_timers("consent-expiry")
        self.cancel_timers("keepalive")
        self.state = "completed"
        self.completed_at = self.now
        self.checklist.triggered.clear()
        for p in self.checklist.pairs:  # RFC 8445 8.1.2: stop checks that can no longer matter
            if p.state in (WAITING, FROZEN):
                p.why = "not checked: ICE nominated a pair before this pair's turn came"
            elif p.state == IN_PROGRESS and p.priority < valid.priority:
                for tid in self.pair_tids.get(id(p), []):
                    if tid in self.transactions:
                        self.transactions[tid].cancelled = True
                p.why = "no answer yet when ICE completed; lower priority than the nominated pair, so ICE stopped"
        self.emit("completed", pair=valid, local=valid.local, remote=valid.remote, agent=self.name,
                  role=self.role, after=self.now - self.started_at)
        self.consent_at = self.now  # RFC 7675: the successful check is the first consent
        if self.config.consent:
            self._schedule_consent()
            self.set_timer(self.consent_at + self.config.consent_timeout, "consent-expiry")
        elif self.config.keepalive is not None:
            self.set_timer(self.now + self.config.keepalive, "keepalive")

    # -- after nomination: consent freshness (RFC 7675) and keepalives (RFC 8445 section 11) ------
    def _base(self, c: Candidate) -> Candidate | None:
        """The candidate a datagram for ``c`` arrives on: the relay for a relayed one, else the socket."""
        return self.relay if c.type == RELAY else self.host

    def _schedule_consent(self) -> None:
        gap = self.config.consent_interval * self._consent_rng.uniform(0.8, 1.2)
        self.set_timer(self.now + gap, "consent")

    def _send_consent(self) -> None:
        pair = self.selected
        if self.state != "completed" or pair is None or self.consent_lost:
            return
        assert self.remote_ufrag is not None and self.remote_password is not None
        prio = candidate_priority(PRFLX, pair.local.local_preference, pair.local.component)
        attrs: list[tuple[int, Any]] = [(USERNAME, f"{self.remote_ufrag}:{self.ufrag}"), (PRIORITY, prio),
                                        (ICE_CONTROLLING, self.tie_breaker) if self.controlling
                                        else (ICE_CONTROLLED, self.tie_breaker)]
        req = StunMessage(BINDING, REQUEST, attributes=attrs, rng=self._consent_rng)
        key = short_term_key(self.remote_password)
        for tid in [t for t, c in self._consent.items() if c.sent_at < self.now - self.config.consent_timeout]:
            del self._consent[tid]  # unanswered for longer than consent lasts: forget it
        self._consent[req.transaction_id] = _ConsentCheck(pair, key, self.now)
        self.stats["consent-sent"] += 1
        self._send_via(pair.local, req.encode(key=key, fingerprint=True), pair.remote.addr)
        self._schedule_consent()

    def _on_consent_response(self, msg: StunMessage, src: Endpoint, local: Candidate) -> None:
        cc = self._consent[msg.transaction_id]
        if not msg.has_integrity or not msg.check_integrity(cc.key):
            self.stats["bad-integrity"] += 1
            return  # not from the peer: keep waiting
        del self._consent[msg.transaction_id]
        if self.consent_lost or cc.pair is not self.selected:
            return  # RFC 7675: answers after expiry do not bring consent back
        if src != cc.pair.remote.addr or local is not self._base(cc.pair.local):
            return  # not the selected pair's 5-tuple
        if msg.cls == ERROR:
            code, reason = msg.error or (0, "")
            if code == FORBIDDEN:
                self._lose_consent(f"the peer answered a consent check with {code} {reason}: consent revoked")
            return
        self.consent_at = self.now
        self.stats["consent-answers"] += 1

    def _check_consent(self) -> None:
        if self.data_pair is None or self.state in ("closed", "failed") or self.consent_at is None:
            return
        expires = self.consent_at + self.config.consent_timeout
        if self.now >= expires - 1e-9:
            self._lose_consent(f"no answer to consent checks on {self.data_pair} for "
                               f"{self.now - self.consent_at:.1f} s (RFC 7675 allows "
                               f"{self.config.consent_timeout:g} s): the peer is gone or no longer agrees")
        else:
            self.set_timer(expires, "consent-expiry")

    def _lose_consent(self, why: str) -> None:
        for name in ("consent", "consent-expiry", "keepalive"):
            self.cancel_timers(name)
        self._consent.clear()
        self.emit("consent-lost", pair=self.data_pair, why=why, last_answer=self.consent_at, agent=self.name)
        if self.selected is None:  # during an ICE restart only the old pair is lost; the checks go on
            self.previous_selected = None
            return
        self.consent_lost = True
        self._fail(f"consent lost: {why}")

    def _keepalive(self) -> None:
        pair = self.data_pair
        if self.state in ("closed", "failed") or pair is None or self.config.keepalive is None:
            return
        last = self._last_sent_selected
        if last is None or self.now - last >= self.config.keepalive - 1e-9:
            ind = StunMessage(BINDING, INDICATION, rng=self._consent_rng)  # RFC 8445 11: a Binding indication
            self.stats["keepalives"] += 1
            self._send_via(pair.local, ind.encode(fingerprint=True), pair.remote.addr)
            last = self.now
        self.set_timer(last + self.config.keepalive, "keepalive")

    def _check_failure(self) -> None:
        if self.state != "checking" or self.selected is not None:
            return
        open_ = self.checklist.by_state(FROZEN, WAITING, IN_PROGRESS)
        if open_ or self.checklist.triggered or self.valid:
            if not open_ and self.controlling:
                self._maybe_nominate(force=True)
            return
        if not self.remote_end_of_candidates or self.gathered_at is None:
            return  # trickle ICE (RFC 8838): more candidates may still come, theirs or ours
        self._fail(f"every candidate pair failed ({len(self.checklist)} pairs)")

    def _fail(self, reason: str) -> None:
        self.state = "failed"
        self.failed_reason = reason
        self.emit("failed", reason=reason, agent=self.name)

    # -- reporting --------------------------------------------------------------------------------
    def report(self) -> list[dict[str, Any]]:
        """One dict per candidate pair (checklist pairs, then valid pairs built from answers)."""
        rows = []
        sel = self.selected
        for p in sorted(self.all_pairs(), key=lambda p: -p.priority):
            why = p.why
            if p is sel:
                why = "selected: nominated by the controlling agent" + (f" ({why})" if why else "")
            elif p.state == SUCCEEDED and sel is not None and not why.startswith("valid pair"):
                if p.valid_pair is sel:
                    why = f"its check produced the selected pair {sel}"
                elif p.priority < sel.priority:
                    why = "works, but lost: lower priority than the selected pair"
                elif p.succeeded_at is not None and self.completed_at is not None and p.succeeded_at >= self.completed_at:
                    why = "works, but its check succeeded only after ICE had completed with the selected pair"
                elif not self.controlling:
                    why = "works, but the controlling agent nominated another pair"
                else:
                    why = "works, but it succeeded while the nomination of another pair was under way"
            elif p.state == SUCCEEDED and sel is not None:
                why = f"{why}; works, but lost to the selected pair {sel}"
            elif p.state == IN_PROGRESS and not why:
                why = "no answer yet when the run ended"
            elif p.state in (WAITING, FROZEN) and not why:
                why = "not checked yet when the run ended"
            rows.append({
                "agent": self.name, "local": fmt(p.local.addr), "remote": fmt(p.remote.addr),
                "relay_protocol": p.local.relay_protocol if p.local.type == RELAY else None,
                "local_type": p.local.type, "remote_type": p.remote.type, "type": p.kind,
                "priority": p.priority, "state": p.state, "valid": p.valid, "nominated": p.nominated,
                "selected": p is sel, "checks_sent": p.checks_sent, "in_checklist": p.in_checklist,
                "foundation": p.foundation, "why": why,
            })
        return rows


__all__ = ["IceAgent", "IceConfig", "IceStateError", "CheckTransaction", "TA", "TR", "ROLE_CONFLICT",
           "CONSENT_INTERVAL", "CONSENT_TIMEOUT", "parse_turn_url", "RELAY_LOCAL_PREFERENCE", "TURN_TRANSPORTS"]
