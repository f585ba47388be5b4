"""Ladder (sequence) diagrams that explain: one lane per node, one labelled arrow per packet.

Each packet is drawn once, as one arrow from the host that sent it to the place it ended (its
receiver, or the node that dropped it), whatever the routers in between. The arrow says what the
packet is, decoded from its bytes with p2plab's STUN/TURN parsers ("Binding request", "Binding
success: you are 203.0.113.10:5000", "Allocate → 401", "ChannelData 0x4000", "punch #1", "SYN").
A NAT's rewrite is a diamond on the NAT's lane, on the arrow it rewrote; a drop is an ✗ where the
packet died. Rows follow the order of events (captures from the real lab sit in a band of about a
millisecond, where real time could not be read), and the time axis gives each row's time in ms.
Repetitions (ten rounds of punching, hundreds of ICE checks) collapse into one "× N more like
this" row; ``condense=False`` draws them all. Phases (rendezvous / punch / talk, allocate /
permit / relay, gather / check / nominate / data) are shaded bands.

Captures at one place (``Trace.from_pcap``) have one lane per IP address, like Wireshark's flow
graph; a capture taken on both sides of a NAT shows each packet's before and after as one arrow
with one rewrite.
"""

from __future__ import annotations

import re
import statistics
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..addresses import fmt, is_private, is_shared_cgn
from ..errors import TraceError
from . import make_figure, palette

LANE_ORDER = ["alice", "carol", "nat-a", "cgn", "internet", "nat-b", "bob", "dave", "server", "turn", "stun"]

# Ladder columns: peers on the outside, their NATs next to them, servers and relays in between, so
# that an arrow to a server never crosses the other peer's lifeline.
LEFT = ["alice", "carol", "nat-a", "cgn", "cgn-a", "home-a"]
MIDDLE = ["internet", "server", "stun", "turn", "relay", "rendezvous", "mallory"]
RIGHT = ["cgn-b", "home-b", "nat-b", "dave", "bob"]
ROUTERS = {"internet"}  # lanes that only forward: hidden unless something happens there
MIRROR = {"alice": "bob", "bob": "alice", "nat-a": "nat-b", "nat-b": "nat-a", "carol": "dave", "dave": "carol",
          "cgn-a": "cgn-b", "cgn-b": "cgn-a", "home-a": "home-b", "home-b": "home-a"}  # the same step, other side

TOP_PX = 135  # room for the title and the lane names (upright on narrow screens)
ROW_PX = 26  # height of one message row, in pixels
CHAR_PX = 6.4  # average width of one 11 px label character
NARROW_PLOT_PX = 420  # the narrowest plot area labels are laid out for


def lane_order(nodes: list[str]) -> list[str]:
    """Order lanes the way the topology figure draws them: alice, nat-a, internet, nat-b, bob, server."""
    seen = list(dict.fromkeys(nodes))
    known = [n for n in LANE_ORDER if n in seen]
    return known + [n for n in seen if n not in LANE_ORDER]


def column_order(nodes: list[str]) -> list[str]:
    """Ladder columns: Alice's side, then servers and relays (and unknown nodes), then Bob's side."""
    seen = list(dict.fromkeys(nodes))
    left = [n for n in LEFT if n in seen]
    right = [n for n in RIGHT if n in seen]
    middle = [n for n in MIDDLE if n in seen] + [n for n in seen if n not in LEFT + MIDDLE + RIGHT]
    return left + middle + right


def _address_order(ips: list[str], nat_ips: set[str]) -> list[str]:
    seen = list(dict.fromkeys(ips))

    def rank(ip: str) -> int:
        if ip in nat_ips:
            return 1
        try:
            return 0 if is_private(ip) else 2 if is_shared_cgn(ip) else 3
        except ValueError:
            return 4

    return sorted(seen, key=lambda ip: (rank(ip), seen.index(ip)))


# -- naming packets ------------------------------------------------------------------------------

@dataclass
class Meaning:
    """What a packet is, in words, decoded from its bytes."""

    label: str  # "Binding success: you are 203.0.113.10:5000"
    protocol: str  # legend group: STUN, TURN, P2P, TCP, UDP, ICMP
    kind: str  # "binding", "check", "nominate", "allocate", "permit", "relay", "register", "punch", ...
    txid: bytes = b""
    inner: str = ""  # the kind of a STUN message carried inside a Send/Data/ChannelData


def _short(data: bytes, n: int = 18) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"{len(data)} B"
    if not text.isprintable():
        return f"{len(data)} B"
    return repr(text if len(text) <= n else text[: n - 1] + "…")


TURN_KINDS = {"Allocate": "allocate", "Refresh": "refresh", "CreatePermission": "permit", "ChannelBind": "permit",
              "Send": "relay", "Data": "relay"}


def _stun_meaning(payload: bytes) -> Meaning | None:
    from ..stun.message import ChannelData, StunMessage, parse

    try:
        msg = parse(payload)
    except Exception:  # not STUN after all (or damaged): the caller falls back to the summary
        return None
    if isinstance(msg, ChannelData):
        inner = _stun_meaning(msg.data) if msg.data[:1] and msg.data[0] < 0x40 else None
        what = f": {inner.label}" if inner else (f" {_short(msg.data)}" if msg.data else "")
        return Meaning(f"ChannelData 0x{msg.channel:04x}{what}", "TURN", "relay", inner.txid if inner else b"",
                       inner=inner.kind if inner else "")
    assert isinstance(msg, StunMessage)
    method, cls = msg.method_name, msg.class_name
    proto = "STUN" if method == "Binding" else "TURN"
    tx = msg.transaction_id
    if method == "Binding":
        if cls == "request":
            if "USE-CANDIDATE" in msg:
                return Meaning("Binding request + USE-CANDIDATE (nominate)", proto, "nominate", tx)
            if "PRIORITY" in msg:
                return Meaning("check: Binding request", proto, "check", tx)
            return Meaning("Binding request", proto, "binding", tx)
        if cls == "success response":
            you = msg.get("XOR-MAPPED-ADDRESS") or msg.get("MAPPED-ADDRESS")
            return Meaning(f"Binding success: you are {fmt(you)}" if you else "Binding success", proto, "binding", tx)
        if cls == "indication":
            return Meaning("Binding indication (keepalive)", proto, "keepalive", tx)
    kind = TURN_KINDS.get(method, "binding")
    if cls == "error response":
        code = (msg.error or (0, ""))[0]
        return Meaning(f"{method} → {code} {(msg.error or (0, ''))[1]}".rstrip(), proto, kind, tx)
    if cls == "success response":
        if method == "Allocate" and msg.get("XOR-RELAYED-ADDRESS"):
            return Meaning(f"Allocate success: relay {fmt(msg.get('XOR-RELAYED-ADDRESS'))}", proto, kind, tx)
        return Meaning(f"{method} success", proto, kind, tx)
    peer = msg.get("XOR-PEER-ADDRESS")
    if method in ("Send", "Data"):
        data = msg.get("DATA") or b""
        inner = _stun_meaning(data) if data[:1] and data[0] < 0x40 else None
        way = "to" if method == "Send" else "from"
        what = inner.label if inner else _short(data)
        return Meaning(f"{method} {way} {fmt(peer) if peer else '?'}: {what}", proto, kind,
                       inner.txid if inner else tx, inner=inner.kind if inner else "")
    if method == "CreatePermission" and peer:
        return Meaning(f"CreatePermission for {peer[0]}", proto, kind, tx)
    if method == "ChannelBind" and peer:
        return Meaning(f"ChannelBind 0x{msg.get('CHANNEL-NUMBER', 0):04x} → {fmt(peer)}", proto, kind, tx)
    return Meaning(f"{method} {cls}", proto, kind, tx)


def meaning(proto: int, flags: int, payload: bytes, summary: str = "") -> Meaning:
    """Name one packet from its IP protocol number, TCP flags and payload bytes."""
    if proto == 6:
        names = [n for bit, n in ((0x02, "SYN"), (0x01, "FIN"), (0x04, "RST"), (0x10, "ACK")) if flags & bit]
        label = "/".join(names) or "TCP"
        if payload:
            label = f"data {_short(payload)}" if names == ["ACK"] else f"{label} + data {_short(payload)}"
        kind = "data" if payload else "rst" if "RST" in names else "handshake"
        return Meaning(label, "TCP", kind)
    if proto == 1:
        return Meaning(summary or "ICMP", "ICMP", "icmp")
    if proto != 17:
        return Meaning(summary or f"IP protocol {proto}", str(proto), "other")
    first = payload[:1]
    if first and (first[0] < 0x40 and len(payload) >= 20 or 0x40 <= first[0] <= 0x4F):
        found = _stun_meaning(payload)
        if found is not None:
            return found
    if payload.startswith(b"P2P1 "):
        words = payload[5:].decode("latin-1", "replace").split()
        word = words[0] if words else ""
        if word == "PUNCH":
            return Meaning(f"punch #{words[2] if len(words) > 2 else '?'}", "P2P", "punch")
        if word == "ACK":
            return Meaning(f"ack of punch #{words[2] if len(words) > 2 else '?'}", "P2P", "ack")
        if word == "REGISTER":
            return Meaning(f"register {words[1] if len(words) > 1 else ''}".rstrip(), "P2P", "register")
        if word == "PEER" and len(words) > 2:
            return Meaning(f"peer: {words[1]} is at {words[2]}", "P2P", "register")
        if word == "KEEPALIVE":
            return Meaning("keepalive", "P2P", "keepalive")
        return Meaning(f"{word.lower()} {' '.join(words[1:3])}"[:40].rstrip(), "P2P", "data")
    return Meaning(f"data {_short(payload)}" if payload else "empty datagram", "UDP", "data")


# -- from trace rows to messages ------------------------------------------------------------------

@dataclass
class Message:
    """One arrow: a packet from the lane that sent it to the lane where it ended."""

    src: str
    dst: str
    t0: float
    t1: float
    rows: tuple[int, ...]
    label: str
    protocol: str
    kind: str
    endpoints: tuple  # ((src ip, port), (dst ip, port)) as sent
    rewrites: list[tuple[str, int, int, str]] = field(default_factory=list)  # (lane, before, after, text)
    drop: tuple[str, str] | None = None  # (lane, reason)
    delivered: bool = True
    phase: str = ""
    txid: bytes = b""
    hover: str = ""
    winner: bool = False
    what: str = ""  # the label without the drop note
    wire: frozenset = frozenset()  # the (src, dst) endpoint pairs the packet had between the NATs

    @property
    def signature(self) -> tuple:
        """Messages with the same signature are 'like this' one: they condense into one row."""
        reason = re.sub(r"\d+", "#", _short_reason(self.drop[1])) if self.drop else ""
        sig = (self.src, self.dst, re.sub(r"\d+", "#", (self.what or self.label).split(":")[0]),
               self.drop[0] if self.drop else "",
               tuple(r[0] for r in self.rewrites), self.winner, self.phase)
        flip = tuple(MIRROR.get(x, x) for x in sig[:2]) + sig[2:3] + (MIRROR.get(sig[3], sig[3]),) + (
            tuple(MIRROR.get(x, x) for x in sig[4]),) + sig[5:]
        return min(sig, flip) + (reason,)


def _cols(df) -> dict[str, list]:
    return {c: df[c].tolist() for c in df.columns}


def _fields(c: dict, i: int) -> str:
    return (f"{c['src'][i]}:{c['sport'][i]} → {c['dst'][i]}:{c['dport'][i]} {c['protocol'][i]} "
            f"{c['length'][i]} B")


def _rewrite_text(c: dict, before: int, after: int) -> str:
    bits = []
    if (c["src"][before], c["sport"][before]) != (c["src"][after], c["sport"][after]):
        bits.append(f"{fmt((c['src'][before], c['sport'][before]))} → {fmt((c['src'][after], c['sport'][after]))}")
    if (c["dst"][before], c["dport"][before]) != (c["dst"][after], c["dport"][after]):
        bits.append(f"{fmt((c['dst'][before], c['dport'][before]))} → {fmt((c['dst'][after], c['dport'][after]))}")
    return "; ".join(bits) or "no address change"


def _short_reason(reason: str) -> str:
    reason = reason or "dropped"
    return reason.split(":")[0] if ":" in reason[:40] else reason[:40]


def messages(trace, rows: range | None = None, lanes: str = "auto") -> tuple[list[str], list[Message], str]:
    """The lanes and messages (arrows) of a ladder, without drawing: ``(lanes, messages, mode)``.

    ``mode`` is ``"nodes"`` (simulator/real lab: one lane per node) or ``"addresses"`` (a capture
    at one place: one lane per IP address).
    """
    trace.require_packets()
    c = _cols(trace.df)
    n = len(c["time"])
    idx = list(rows if rows is not None else range(n))
    if lanes == "auto":
        lanes = "addresses" if all(a == "captured" for a in c["action"]) else "nodes"
    if lanes not in ("nodes", "addresses"):
        raise TraceError(f"lanes must be 'auto', 'nodes' or 'addresses', not {lanes!r}")
    if lanes == "addresses":
        msgs = _address_messages(trace, c, idx)
        nat_ips = {r[0] for m in msgs for r in m.rewrites}
        order = _address_order([x for m in msgs for x in (m.src, m.dst)] + sorted(nat_ips), nat_ips)
    else:
        msgs = _node_messages(trace, c, idx)
        used = [x for m in msgs for x in (m.src, m.dst)] + [r[0] for m in msgs for r in m.rewrites]
        order = column_order(used)
    _phases(msgs)
    return order, msgs, lanes


def _node_messages(trace, c: dict, idx: list[int]) -> list[Message]:
    """One message per packet sent in ``idx`` (followed to its end, even past the window)."""
    chains: dict[Any, list[list[int]]] = {}
    inside = set(idx)
    for i in range(len(c["time"])):
        if i > idx[-1] and c["packet_id"][i] not in chains:
            continue
        runs = chains.setdefault(c["packet_id"][i], [])
        if not runs or c["action"][i] == "sent":  # a new 'sent' starts a new packet (ids can repeat)
            runs.append([])
        runs[-1].append(i)
    out = []
    for runs in chains.values():
        for chain in runs:
            if chain[0] not in inside:
                continue
            chain.sort(key=lambda i: (c["time"][i], i))
            out.append(_message_of_chain(trace, c, chain))
    out.sort(key=lambda m: (m.t0, m.rows[0]))
    return out


def _message_of_chain(trace, c: dict, chain: list[int]) -> Message:
    first = chain[0]
    ends = [i for i in chain if c["action"][i] in ("delivered", "dropped")]
    last = ends[-1] if ends else chain[-1]  # capture clocks can put a forward after the delivery
    proto, flags, payload = trace.payload(first)
    what = meaning(proto, flags, payload, str(c["summary"][first]))
    rewrites = []
    for i in chain:
        if c["action"][i] == "translated" and c["direction"][i] == "in":
            j = c["pair"][i]
            if isinstance(j, int) and 0 <= j < len(c["time"]):
                rewrites.append((c["node"][i], i, j, _rewrite_text(c, i, j)))
    drop = None
    if c["action"][last] == "dropped":
        drop = (c["node"][last], str(c["reason"][last]) or "dropped")
    label = what.label + (f"  ✗ {drop[0]}: {_short_reason(drop[1])}" if drop else "")
    hover = [f"<b>{what.label}</b>", _fields(c, first)]
    for i in chain:
        if c["action"][i] in ("sent", "delivered", "dropped") or (c["action"][i] == "translated"
                                                                 and c["direction"][i] == "in"):
            hover.append(f"{c['time'][i] * 1000:.3f} ms · row {i} · {c['node'][i]} {c['action'][i]}"
                         + (f" ({c['reason'][i]})" if c["reason"][i] else ""))
    for lane, _b, _a, text in rewrites:
        hover.append(f"{lane} rewrote {text}")
    return Message(c["node"][first], c["node"][last], c["time"][first], c["time"][last], tuple(chain), label,
                   what.protocol, what.kind, ((c["src"][first], c["sport"][first]), (c["dst"][first], c["dport"][first])),
                   rewrites, drop, c["action"][last] == "delivered", txid=what.txid,
                   hover="<br>".join(hover), phase=what.inner or "", what=what.label,
                   wire=_wire(c, chain, last))


def _wire(c: dict, chain: list[int], last: int) -> frozenset:
    """The (src, dst) endpoints a packet had between the NATs (where routers forwarded it), else at its end."""
    rows = [i for i in chain if c["action"][i] == "forwarded"] or [last]
    return frozenset(((c["src"][i], c["sport"][i]), (c["dst"][i], c["dport"][i])) for i in rows)


def _address_messages(trace, c: dict, idx: list[int]) -> list[Message]:
    """One message per captured packet; a packet seen on both sides of a NAT is one message."""
    payloads = {i: trace.payload(i) for i in idx}
    merged: set[int] = set()
    out = []
    for k, i in enumerate(idx):
        if i in merged:
            continue
        partner = None
        for j in idx[k + 1:k + 6]:
            if j in merged or payloads[j] != payloads[i] or c["time"][j] - c["time"][i] > 0.05:
                continue
            same_dst = (c["dst"][j], c["dport"][j]) == (c["dst"][i], c["dport"][i])
            same_src = (c["src"][j], c["sport"][j]) == (c["src"][i], c["sport"][i])
            if same_dst != same_src:  # exactly one side rewritten: source NAT or destination NAT
                partner = j
                break
        what = meaning(*payloads[i], str(c["summary"][i]))
        rows: tuple[int, ...] = (i,)
        src, dst, rewrites = c["src"][i], c["dst"][i], []
        t1 = c["time"][i]
        if partner is not None:
            merged.add(partner)
            rows = (i, partner)
            t1 = c["time"][partner]
            if (c["dst"][partner], c["dport"][partner]) == (c["dst"][i], c["dport"][i]):
                rewrites = [(c["src"][partner], i, partner, _rewrite_text(c, i, partner))]  # source NAT
            else:
                rewrites = [(c["dst"][i], i, partner, _rewrite_text(c, i, partner))]  # destination NAT
                dst = c["dst"][partner]
        hover = [f"<b>{what.label}</b>", _fields(c, i), f"{c['time'][i] * 1000:.3f} ms · row {i}"]
        hover += [f"rewritten to {_fields(c, r[2])} (row {r[2]})" for r in rewrites]
        out.append(Message(src, dst, c["time"][i], t1, rows, what.label, what.protocol, what.kind,
                           ((c["src"][i], c["sport"][i]), (c["dst"][i], c["dport"][i])), rewrites, None, True,
                           txid=what.txid, hover="<br>".join(hover), phase=what.inner or ""))
    return out


# -- phases ------------------------------------------------------------------------------------------

def ladder_kind(msgs: list[Message]) -> str:
    """'ice', 'turn', 'punch', 'tcp', 'stun' or 'other': which story this ladder tells."""
    kinds = {m.kind for m in msgs} | {m.phase for m in msgs}
    if kinds & {"check", "nominate"}:
        return "ice"
    if kinds & {"allocate", "permit", "relay", "refresh"}:
        return "turn"
    if kinds & {"punch", "register"}:
        return "punch"
    if any(m.protocol == "TCP" for m in msgs):
        return "tcp"
    if any(m.protocol == "STUN" for m in msgs):
        return "stun"
    return "other"


PHASES = {
    "ice": ["gather", "check", "nominate", "data"],
    "turn": ["allocate", "permit", "relay"],
    "punch": ["rendezvous", "punch", "talk"],
}


def _phases(msgs: list[Message]) -> None:
    """Give each message its phase (ICE, TURN and punch ladders), and mark ICE's winning pair."""
    story = ladder_kind(msgs)
    by_tx: dict[bytes, str] = {}
    for m in msgs:
        inner, m.phase = m.phase, ""
        kind = inner or m.kind
        if story == "ice":
            if kind in ("check", "nominate"):
                m.phase = "nominate" if kind == "nominate" else "check"
            elif m.txid and m.txid in by_tx:
                m.phase = by_tx[m.txid]
            elif kind == "data" or (m.kind == "relay" and not inner):
                m.phase = "data"
            else:
                m.phase = "gather"
        elif story == "turn":
            m.phase = {"allocate": "allocate", "permit": "permit", "refresh": "permit"}.get(kind, "relay")
            if m.protocol == "STUN" and kind == "binding":
                m.phase = "allocate"
        elif story == "punch":
            m.phase = {"register": "rendezvous", "punch": "punch", "ack": "punch"}.get(kind, "talk")
        if m.txid and m.phase and m.txid not in by_tx:
            by_tx[m.txid] = m.phase
    if story == "ice":
        answered = {m.txid for m in msgs if m.delivered and m.kind == "binding" and m.txid}
        won = [m for m in msgs if m.kind == "nominate" and m.txid in answered] or [
            m for m in msgs if m.phase == "data" and m.delivered]
        if won:
            ends = set(won[-1].wire or {won[-1].endpoints})
            ends |= {e[::-1] for e in ends}
            for m in msgs:
                m.winner = bool(ends & (m.wire or {m.endpoints})) and m.phase in ("check", "nominate", "data")


# -- layout ------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One drawn row: a message, or a 'like this' summary of hidden repeats of one."""

    msg: Message
    more: list[Message] = field(default_factory=list)  # for a summary row: the repeats it stands for
    summary_of: Message | None = None
    mixed: bool = False  # a row that stands for packets of several kinds (to fit max_arrows)


def condense(msgs: list[Message], keep: int = 2) -> list[Row]:
    """Show each kind of message ``keep`` times; later repeats become one '× N more like this' row."""
    shown: dict[tuple, int] = {}
    summary: dict[tuple, Row] = {}
    rows: list[Row] = []
    for m in msgs:
        sig = m.signature
        shown[sig] = shown.get(sig, 0) + 1
        if shown[sig] <= keep:
            rows.append(Row(m))
        elif sig in summary:
            summary[sig].more.append(m)
        else:
            summary[sig] = Row(m, [m], summary_of=m)
            rows.append(summary[sig])
    return rows


def fit(rows: list[Row], max_arrows: int) -> list[Row]:
    """At most about ``max_arrows`` rows: each phase keeps its share, the rest of it folds into one row."""
    if len(rows) <= max_arrows:
        return rows
    phases = list(dict.fromkeys(r.msg.phase for r in rows))
    counts = {p: sum(1 for r in rows if r.msg.phase == p) for p in phases}
    quota: dict[str, int] = {}
    budget, remaining = max_arrows, sorted(phases, key=lambda p: counts[p])
    while remaining:
        share = max(2, budget // len(remaining))
        if counts[remaining[0]] <= share:
            p = remaining.pop(0)
            quota[p] = counts[p]
            budget -= counts[p]
        else:
            for p in remaining:
                quota[p] = max(2, budget // len(remaining))
            break
    out: list[Row] = []
    used = dict.fromkeys(phases, 0)
    folded: dict[str, Row] = {}
    for r in rows:
        p = r.msg.phase
        if counts[p] <= quota[p] or used[p] < quota[p] - 1:
            out.append(r)
            used[p] += 1
            continue
        if p not in folded:
            folded[p] = Row(r.msg, [], mixed=True)
            out.append(folded[p])
        folded[p].more.extend(r.more or [r.msg])
    return out


def _text_span(text: str, lane_px: float) -> float:
    """The width of a label, in lane units, when lanes are ``lane_px`` pixels apart."""
    return len(text) * CHAR_PX / lane_px


def _place(centre: float, width: float, lo: float, hi: float) -> float:
    """Move a label's centre so that the whole label stays within [lo, hi]."""
    half = width / 2
    if hi - lo <= width:
        return (lo + hi) / 2
    return min(max(centre, lo + half), hi - half)


def ladder(trace, max_rows: int = 2000, start: int = 0, highlight: int | None = None, lanes: str = "auto",
           title: str | None = None, height: int | None = None, columns: list[str] | None = None,
           condense_repeats: bool = True, keep: int = 2, max_arrows: int = 30, phases: bool = True) -> Any:
    """A ladder diagram of ``trace``: one labelled arrow per packet, lanes left to right, time downward.

    Rows ``start`` to ``start + max_rows - 1`` of the trace are drawn (the summary says when the
    trace has more). Every arrow is named from the packet's bytes; NAT rewrites are diamonds on the
    NAT's lane, drops an ✗ where the packet died. Rows follow the order of events; the y axis gives
    each row's time in ms (hover an arrow for exact times and trace rows).

    ``highlight``: a trace row to emphasise (the packet stepper uses it). ``lanes``: ``"auto"``,
    ``"nodes"`` or ``"addresses"``. ``columns``: the lanes to draw, in order (e.g. ``["alice",
    "nat-a", "server"]``); arrows to other lanes are left out. ``condense_repeats``: fold repeats
    of a message after ``keep`` of them into one "× N more like this" row (``False`` draws every
    packet). ``max_arrows``: at most this many rows, so the ladder fits a screen (the summary
    says what was left out). ``phases``: shade the phases of ICE, TURN and punch ladders.
    """
    trace.require_packets()
    n = len(trace)
    if max_rows < 1:
        raise TraceError(f"max_rows must be at least 1, e.g. 300; got {max_rows}")
    if max_arrows < 1:
        raise TraceError(f"max_arrows must be at least 1, e.g. 36; got {max_arrows}")
    start = max(0, min(int(start), n - 1))
    if highlight is not None:
        if not 0 <= int(highlight) < n:
            raise TraceError(f"highlight must be a row of the trace (0 to {n - 1}); got {highlight}")
        if not start <= highlight < start + max_rows:
            start = max(0, min(highlight - max_rows // 2, n - max_rows))
    stop = min(n, start + max_rows)
    lane_names, msgs, mode = _cached_messages(trace, start, stop, lanes)
    if columns is not None:
        window = trace.df.iloc[start:stop]
        known = set(lane_names) | (set(window["node"]) if mode == "nodes" else set(window["src"]) | set(window["dst"]))
        unknown = [x for x in columns if x not in known]
        if unknown:
            raise TraceError(f"columns {unknown} are not lanes of this ladder; its lanes are {sorted(known)}")
        lane_names = list(columns)
    elif mode == "nodes":
        busy = {x for m in msgs for x in (m.src, m.dst)} | {r[0] for m in msgs for r in m.rewrites}
        lane_names = [x for x in lane_names if x not in ROUTERS or x in busy]
    lanes_set = set(lane_names)
    hidden = [m for m in msgs if m.src not in lanes_set or m.dst not in lanes_set]
    msgs = [m for m in msgs if m.src in lanes_set and m.dst in lanes_set]
    if not msgs:
        raise TraceError("no packet of these rows goes between the chosen columns: choose other columns= "
                         f"(lanes here: {', '.join(lane_names)}) or other rows (start=, max_rows=)")
    hl_msg = None
    if highlight is not None:
        hl_msg = next((m for m in msgs if highlight in m.rows), None)
    rows = condense(msgs, keep) if condense_repeats else [Row(m) for m in msgs]
    rows = fit(rows, max_arrows) if condense_repeats else rows
    if hl_msg is not None and not any(r.msg is hl_msg and not r.more for r in rows):
        rows = _reveal(rows, hl_msg)
    x_of = {name: k for k, name in enumerate(lane_names)}
    story = ladder_kind(msgs)
    fig = _draw(trace, rows, lane_names, x_of, mode, story, hl_msg, highlight, phases, title, height)
    text = _summary(trace, lane_names, msgs, rows, hidden, mode, start, stop, max_rows, highlight, story)
    layout_meta = fig.layout.meta
    meta = dict(layout_meta) if isinstance(layout_meta, dict) else {}
    meta.update({"summary": text, "alt": text.split("\n", 1)[0]})
    fig.layout.meta = meta
    return fig


def _cached_messages(trace, start: int, stop: int, lanes: str) -> tuple[list[str], list[Message], str]:
    """``messages()`` of a window, remembered on the trace (the stepper redraws the same window often)."""
    key = (start, stop, lanes, len(trace))
    cache = trace.__dict__.setdefault("_ladder_messages", {})
    if key not in cache:
        if len(cache) > 8:
            cache.clear()
        cache[key] = messages(trace, range(start, stop), lanes)
    names, msgs, mode = cache[key]
    return list(names), msgs, mode


def _reveal(rows: list[Row], target: Message) -> list[Row]:
    """Make sure the highlighted message has its own row (take it out of its summary row)."""
    out: list[Row] = []
    for r in rows:
        if r.more and target in r.more:
            rest = [m for m in r.more if m is not target]
            out.append(Row(target))
            if rest:
                out.append(Row(rest[0], rest, summary_of=rest[0]))
        else:
            out.append(r)
    return out


def _title(trace, title: str | None) -> str:
    if title:
        return title
    what = trace.meta.get("what")
    if what:
        return f"Recorded in the real lab: {what}"
    source = trace.meta.get("source")
    if source:
        return f"Ladder diagram: {Path(str(source)).name}"  # the file's name, never the machine's path
    return f"Ladder diagram ({trace.world} world)"


def _time_text(t: float, span: float) -> str:
    ms = t * 1000
    if span < 0.005:
        return f"{ms:.3f} ms"
    if span < 0.05:
        return f"{ms:.1f} ms"
    return f"{ms:.0f} ms"


def _draw(trace, rows: list[Row], lane_names: list[str], x_of: dict[str, int], mode: str, story: str,
          hl_msg: Message | None, highlight: int | None, phases: bool, title: str | None, height: int | None) -> Any:
    nl = len(lane_names)
    lo, hi = -0.6, nl - 0.4
    lane_px = NARROW_PLOT_PX / (hi - lo)
    # y of each row (one unit per row; a row that introduces a new NAT mapping gets room for its note)
    ys: list[float] = []
    notes: list[tuple[float, float, str]] = []  # (x, y, text) of new-mapping notes
    seen_rewrites: set[tuple[str, str]] = set()
    show_phases = phases and story in PHASES and len({r.msg.phase for r in rows}) > 1
    heads: list[tuple[float, str]] = []  # (y, phase): each band opens with its name on a line of its own
    y = 0.0
    for r in rows:
        if show_phases and (not heads or heads[-1][1] != r.msg.phase):
            heads.append((y - 0.4, r.msg.phase))
            y += 0.8
        ys.append(y)
        y += 1.0
        if r.more:
            continue
        for lane, _b, _a, text in r.msg.rewrites:
            if lane in x_of and (lane, text) not in seen_rewrites:
                seen_rewrites.add((lane, text))
                notes.append((x_of[lane], y - 0.15, f"{lane}: {text}"))
                y += 0.75
                break
    total = y
    data: list[dict] = []
    gx, gy = [], []
    for k in range(nl):
        gx += [k, k, None]
        gy += [-0.9, total - 0.2, None]
    data.append({"type": "scatter", "x": gx, "y": gy, "mode": "lines", "hoverinfo": "skip",
                 "line": {"color": palette.GREY, "width": 1}, "showlegend": False, "name": "lanes"})

    def arrow_y(row_y: float) -> tuple[float, float]:
        return row_y - 0.08, row_y + 0.22

    here: tuple[float, float] | None = None
    underlays = {"winning pair": ([], [], palette.BLUISH_GREEN), f"row {highlight}": ([], [], palette.HIGHLIGHT_COLOR)}
    groups: dict[str, dict[str, list]] = {}
    labels: dict[str, list] = {"x": [], "y": [], "text": [], "hover": []}
    rewrites_x, rewrites_y, rewrites_h = [], [], []
    drops_x, drops_y, drops_h = [], [], []
    more_x, more_y, more_h = [], [], []
    for r, ry in zip(rows, ys):
        m = r.msg
        xa, xb = x_of[m.src], x_of[m.dst]
        ya, yb = arrow_y(ry)
        if r.mixed:
            xs = [x_of[x] for o in r.more for x in (o.src, o.dst)]
            xa, xb = min(xs), max(xs)
            more_x += [xa, xb, None]
            more_y += [ry, ry, None]
            what = ", ".join(list(dict.fromkeys(re.sub(r"\d+", "#", o.label.split(":")[0]) for o in r.more))[:3])
            text = f"⋯ {len(r.more)} more packets{' (' + m.phase + ')' if m.phase else ''}: raise max_arrows= to draw them"
            more_h += [f"{len(r.more)} more packets, to {r.more[-1].t1 * 1000:.0f} ms: {what}"] * 2 + [""]
        elif r.more:
            last = r.more[-1]
            more_x += [xa, xb, None]
            more_y += [ya, yb, None]
            text = f"× {len(r.more)} more like this: {m.label}"
            more_h += [f"{len(r.more)} more like this, the last at {last.t1 * 1000:.0f} ms: {m.label}"] * 2 + [""]
        else:
            # the path: straight from sender to end, or bent through a NAT outside that span (hairpinning)
            px = [float(xa)]
            for lane, _b, _a, _t in m.rewrites:
                if lane in x_of and not min(xa, xb) <= x_of[lane] <= max(xa, xb) and x_of[lane] != px[-1]:
                    px.append(float(x_of[lane]))
            px.append(float(xb))
            length = sum(abs(b - a) for a, b in zip(px, px[1:])) or 1.0
            py, run = [ya], 0.0
            for a, b in zip(px, px[1:]):
                run += abs(b - a)
                py.append(ya + (yb - ya) * run / length)

            def at(lane_x: float, px: list[float] = px, py: list[float] = py) -> float | None:
                """The y where the path crosses lane x (first crossing), or None."""
                for (a, b), (ta, tb) in zip(zip(px, px[1:]), zip(py, py[1:])):
                    if min(a, b) <= lane_x <= max(a, b) and a != b:
                        return ta + (tb - ta) * (lane_x - a) / (b - a)
                return None

            g = groups.setdefault(m.protocol, {"x": [], "y": [], "size": [], "text": []})
            g["x"] += px + [None]
            g["y"] += py + [None]
            g["size"] += [0] * (len(px) - 1) + [11, 0]
            g["text"] += [m.hover] * len(px) + [""]
            text = m.label
            if m.winner:
                underlays["winning pair"][0].extend(px + [None])
                underlays["winning pair"][1].extend(py + [None])
            if m is hl_msg:
                underlays[f"row {highlight}"][0].extend(px + [None])
                underlays[f"row {highlight}"][1].extend(py + [None])
                where = trace.df["node"].iat[highlight] if mode == "nodes" else m.src
                if where in x_of and at(x_of[where]) is not None:  # where the highlighted row saw the packet
                    here = (x_of[where], at(x_of[where]))
            for lane, _b, _a, rtext in m.rewrites:
                if lane in x_of and at(x_of[lane]) is not None:
                    rewrites_x.append(x_of[lane])
                    rewrites_y.append(at(x_of[lane]))
                    rewrites_h.append(f"<b>{lane} rewrote</b> {rtext}<br>{m.label}")
            xa, xb = min(px), max(px)  # the label centres on the whole path
            if m.drop:
                drops_x.append(px[-1])
                drops_y.append(py[-1])
                drops_h.append(f"<b>dropped at {m.drop[0]}</b><br>{m.drop[1]}<br>{m.label}")
        width = _text_span(text, lane_px)
        labels["x"].append(_place((xa + xb) / 2, width, lo, hi))
        labels["y"].append(ry - 0.4)
        labels["text"].append(text)
        labels["hover"].append(m.hover)
    for name, (ux, uy, colour) in underlays.items():
        if ux:
            data.append({"type": "scatter", "x": ux, "y": uy, "mode": "lines", "name": name, "hoverinfo": "skip",
                         "line": {"color": colour, "width": 9}, "opacity": 0.45})
    if here is not None:
        data.append({"type": "scatter", "x": [here[0]], "y": [here[1]], "mode": "markers", "name": f"row {highlight} is here",
                     "hoverinfo": "skip", "marker": {"symbol": "circle-open", "size": 20, "color": palette.BLACK,
                                                     "line": {"width": 3, "color": palette.BLACK}}})
    for proto in sorted(groups, key=lambda p: (p not in palette.PROTOCOL_COLORS, p)):
        g = groups[proto]
        colour = palette.protocol_color(proto)
        data.append({
            "type": "scatter", "x": g["x"], "y": g["y"], "mode": "lines+markers", "name": proto,
            "line": {"color": colour, "width": 2, "dash": palette.PROTOCOL_DASH.get(proto, "solid")},
            "marker": {"symbol": "arrow", "angleref": "previous", "size": g["size"], "color": colour},
            "hovertext": g["text"], "hoverinfo": "text", "connectgaps": False, "meta": "arrows",
        })
    if more_x:
        data.append({"type": "scatter", "x": more_x, "y": more_y, "mode": "lines", "name": "repeats (condensed)",
                     "line": {"color": palette.GREY, "width": 2, "dash": "dot"}, "hovertext": more_h,
                     "hoverinfo": "text", "meta": "arrows"})
    if rewrites_x:
        data.append({"type": "scatter", "x": rewrites_x, "y": rewrites_y, "mode": "markers", "name": "NAT rewrite",
                     "marker": {"symbol": "diamond", "size": 10, "color": palette.NAT_COLOR},
                     "hovertext": rewrites_h, "hoverinfo": "text"})
    if drops_x:
        data.append({"type": "scatter", "x": drops_x, "y": drops_y, "mode": "markers", "name": "dropped",
                     "marker": {"symbol": "x-thin-open", "size": 14, "color": palette.DROP_COLOR,
                                "line": {"width": 3, "color": palette.DROP_COLOR}},
                     "hovertext": drops_h, "hoverinfo": "text"})
    data.append({"type": "scatter", "x": labels["x"], "y": labels["y"], "mode": "text", "text": labels["text"],
                 "textposition": "middle center", "textfont": {"size": 11, "color": palette.BLACK},
                 "hovertext": labels["hover"], "hoverinfo": "text", "showlegend": False, "name": "labels",
                 "cliponaxis": False})
    if notes:
        data.append({"type": "scatter", "x": [_place(x, _text_span(t, lane_px), lo, hi) for x, _, t in notes],
                     "y": [y for _, y, _ in notes], "mode": "text", "text": ["◆ " + t for _, _, t in notes],
                     "textposition": "middle center", "textfont": {"size": 10, "color": "#444444"},
                     "hoverinfo": "skip", "showlegend": False, "name": "new mappings", "cliponaxis": False})

    # time axis: each row's time in ms, written when it changes; a dotted line marks a long pause
    t_rows = [r.msg.t0 for r in rows]
    span = (max(t_rows) - min(t_rows)) if t_rows else 0.0
    gaps = [b - a for a, b in zip(t_rows, t_rows[1:])]
    typical = statistics.median(gaps) if gaps else 0.0
    tickvals, ticktext, shapes, annotations = [], [], [], []
    last = None
    for k, (t, ry) in enumerate(zip(t_rows, ys)):
        txt = _time_text(t, span)
        if txt != last:
            tickvals.append(ry)
            ticktext.append(txt)
            last = txt
        if k and t - t_rows[k - 1] > max(0.1, 5 * typical):
            shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": ry - 0.62, "y1": ry - 0.62,
                           "line": {"color": palette.GREY, "width": 1, "dash": "dot"}, "layer": "below"})
    # phases as shaded bands, each named on its first line
    fills = {"gather": "#EAF4FB", "check": "#FDF5E1", "nominate": "#E6F4EF", "data": "#F3F3F3",
             "allocate": "#EAF4FB", "permit": "#FDF5E1", "relay": "#F7EAF2",
             "rendezvous": "#EAF4FB", "punch": "#FDF5E1", "talk": "#E6F4EF"}
    for k, (hy, ph) in enumerate(heads):
        end = heads[k + 1][0] - 0.4 if k + 1 < len(heads) else total - 0.2
        shapes.append({"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": hy - 0.4, "y1": end,
                       "fillcolor": fills.get(ph, "#F3F3F3"), "line": {"width": 0}, "layer": "below"})
        annotations.append({"xref": "paper", "x": 0.005, "xanchor": "left", "y": hy, "yanchor": "middle",
                            "text": f"<b><i>{ph}</i></b>", "showarrow": False, "font": {"size": 11, "color": "#555555"}})
    ticklabels = [_lane_label(trace, name, mode) for name in lane_names]
    fit = int(TOP_PX + ROW_PX * (total + 0.6) + 60)
    layout = {
        "xaxis": {"tickvals": list(range(nl)), "ticktext": ticklabels, "side": "top", "range": [lo, hi],
                  "showgrid": False, "zeroline": False, "showline": False, "ticks": "", "fixedrange": True},
        "yaxis": {"title": {"text": "time (ms)"}, "range": [total - 0.2, -1.0],
                  "tickvals": tickvals, "ticktext": ticktext, "zeroline": False, "showgrid": False,
                  "tickfont": {"size": 10}, "fixedrange": False},
        "height": height or max(300, fit),
        "margin": {"l": 90, "r": 20, "t": TOP_PX, "b": 50},
        "legend": {"orientation": "h", "y": 0, "yanchor": "top", "x": 0},
        "hovermode": "closest", "shapes": shapes, "annotations": annotations,
        "meta": {"story": story},
        # the title sits at the very top, so lane names that a narrow screen turns upright stay clear of it
        "title": {"text": "<br>".join(textwrap.wrap(_title(trace, title), 44)), "x": 0.01, "xanchor": "left",
                  "y": 1, "yref": "container", "yanchor": "top", "pad": {"t": 10}, "font": {"size": 15}},
    }
    return make_figure(data, layout, summary_text="")


def _lane_label(trace, name: str, mode: str) -> str:
    """The lane's name and its own address(es): what a host sends from, what a NAT translates to."""
    if mode == "addresses":
        return name
    df = trace.df
    mine = df[df["node"] == name]
    ips = list(dict.fromkeys(mine.loc[mine["action"] == "sent", "src"].head(50)))
    if not ips:
        out = mine[(mine["action"] == "translated") & (mine["direction"] == "out")].head(50)
        src = df["src"].tolist()
        ips = list(dict.fromkeys(s for s, j in zip(out["src"], out["pair"]) if 0 <= int(j) < len(src) and src[int(j)] != s))
    if not ips:
        ips = list(dict.fromkeys(mine.loc[mine["action"] == "delivered", "dst"].head(50)))
    ips = ips[:1]
    return f"<b>{name}</b><br>{'<br>'.join(ips)}" if ips else f"<b>{name}</b>"


def _summary(trace, lanes, msgs, rows, hidden, mode, start, stop, max_rows, highlight, story) -> str:
    n = len(trace)
    what = "addresses" if mode == "addresses" else "lanes"
    n_rw = sum(len(m.rewrites) for m in msgs)
    n_drop = sum(1 for m in msgs if m.drop)
    drawn = sum(1 for r in rows if not r.more)
    folded = sum(len(r.more) for r in rows)
    lines = [f"Ladder diagram of {len(msgs)} packets ({stop - start} packet events, {trace.world} world) between "
             f"{len(lanes)} {what}: {', '.join(lanes)}. {n_rw} NAT rewrites, {n_drop} drops."]
    shown = f"{drawn} arrows drawn"
    if folded:
        shown += (f", {folded} more folded into {sum(1 for r in rows if r.more)} 'more like this' rows "
                  f"(condense_repeats=False draws every packet)")
    lines.append(shown + ".")
    for k, r in enumerate(rows[:12], 1):
        m = r.msg
        if r.mixed:
            lines.append(f"{k}. ⋯ {len(r.more)} more packets{' in the ' + m.phase + ' phase' if m.phase else ''}")
        elif r.more:
            lines.append(f"{k}. × {len(r.more)} more like: {m.src} → {m.dst}: {m.label}")
        else:
            lines.append(f"{k}. {m.t0 * 1000:.1f} ms {m.src} → {m.dst}: {m.label}")
    if len(rows) > 12:
        lines.append(f"... {len(rows) - 12} more rows.")
    if hidden:
        lines.append(f"{len(hidden)} packets go to lanes not drawn (columns=).")
    if n > stop - start:
        df = trace.df
        counts = df["protocol"].value_counts()
        lines.append(f"Windowed: showing rows {start}-{stop - 1} of {n} (max_rows={max_rows}); pass start= to "
                     f"move the window. Whole trace: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                     + f", {int((df['action'] == 'dropped').sum())} dropped.")
    if highlight is not None:
        df = trace.df
        lines.append(f"Highlighted row {highlight}: {df['summary'].iat[highlight]} at {df['node'].iat[highlight]} "
                     f"({df['action'].iat[highlight]}).")
    return "\n".join(lines)
