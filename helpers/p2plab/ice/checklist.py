"""Candidate pairs and the checklist (RFC 8445 section 6.1.2).

Every local candidate is paired with every remote candidate of the same component and address
family. The pairs are ordered by **pair priority** (section 6.1.2.3)::

    pair priority = 2^32 * MIN(G, D) + 2 * MAX(G, D) + (G > D ? 1 : 0)

where G is the priority of the *controlling* agent's candidate and D the *controlled* agent's,
so both agents order their pairs the same way.

Pruning (section 6.1.2.4): a server-reflexive local candidate is replaced by its base (checks
are sent from the base anyway), then a pair is dropped if a higher-priority pair has the same
local and remote candidates.

Pair states (section 6.1.2.6): **Frozen** (not checked yet, waits for its foundation),
**Waiting** (ready, checked when its turn comes), **In-Progress** (a check was sent),
**Succeeded** (a check got a good answer), **Failed** (no answer, or a bad one). Initially the
highest-priority pair of each foundation is Waiting, all others Frozen.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from ..addresses import fmt
from .candidates import HOST, SRFLX, Candidate

FROZEN, WAITING, IN_PROGRESS, SUCCEEDED, FAILED = "Frozen", "Waiting", "In-Progress", "Succeeded", "Failed"
PAIR_STATES = (FROZEN, WAITING, IN_PROGRESS, SUCCEEDED, FAILED)

MAX_PAIRS = 100  # RFC 8445 section 6.1.2.5: a limit on the checklist size, default 100


def pair_priority(g: int, d: int) -> int:
    """RFC 8445 section 6.1.2.3: ``2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)``.

    ``g`` is the controlling agent's candidate priority, ``d`` the controlled agent's.

    >>> pair_priority(2130706431, 1694498815)
    7277816997797167103
    """
    return (1 << 32) * min(g, d) + 2 * max(g, d) + (1 if g > d else 0)


def _family(ip: str) -> int:
    return ipaddress.ip_address(ip).version


@dataclass(eq=False)
class CandidatePair:
    """A local and a remote candidate, the state of their checks and what happened."""

    local: Candidate
    remote: Candidate
    priority: int = 0
    state: str = FROZEN
    valid: bool = False  # in the valid list
    nominated: bool = False
    in_checklist: bool = True  # False for a valid pair built from a check's answer (section 7.2.5.3.2)
    generated_by: CandidatePair | None = None  # the checklist pair whose check produced this valid pair
    valid_pair: CandidatePair | None = None  # the valid pair this checklist pair's check produced
    nominate_on_success: bool = False  # controlled agent: USE-CANDIDATE arrived before our own success
    use_candidate: bool = False  # controlling agent: the next check carries USE-CANDIDATE
    checks_sent: int = 0
    requests_received: int = 0
    first_check: float | None = None
    succeeded_at: float | None = None
    why: str = ""  # in words: why it failed, why it lost, or how it came to be
    history: list[tuple[float, str]] = field(default_factory=list)

    @property
    def foundation(self) -> str:
        """A pair's foundation: the local and remote candidates' foundations together (6.1.2.6)."""
        return f"{self.local.foundation}:{self.remote.foundation}"

    @property
    def kind(self) -> str:
        """'srflx-srflx', 'host-relay', ...: local type, then remote type."""
        return f"{self.local.type}-{self.remote.type}"

    @property
    def relayed(self) -> bool:
        return self.local.type == "relay" or self.remote.type == "relay"

    def compute_priority(self, controlling: bool) -> int:
        g, d = (self.local.priority, self.remote.priority) if controlling else (self.remote.priority, self.local.priority)
        self.priority = pair_priority(g, d)
        return self.priority

    def set_state(self, state: str, now: float, why: str | None = None) -> None:
        if state != self.state:
            self.history.append((now, state))
        self.state = state
        if why is not None:
            self.why = why

    def __str__(self) -> str:
        return f"{self.local} -> {self.remote}"

    def __repr__(self) -> str:
        return (f"<CandidatePair {self.local.type} {fmt(self.local.addr)} -> {self.remote.type} "
                f"{fmt(self.remote.addr)} {self.state} prio {self.priority}>")


class CheckList:
    """The ordered candidate pairs of one data stream (one component here) and the triggered queue."""

    def __init__(self, controlling: bool, max_pairs: int = MAX_PAIRS) -> None:
        self.controlling = controlling
        self.max_pairs = max_pairs
        self.pairs: list[CandidatePair] = []
        self.triggered: deque[CandidatePair] = deque()
        self.pruned: list[tuple[CandidatePair, str]] = []

    # -- forming ----------------------------------------------------------------------------
    def form(self, local: list[Candidate], remote: list[Candidate], bases: dict | None = None) -> list[CandidatePair]:
        """Pair, compute priorities, order, prune and freeze (RFC 8445 6.1.2.2 - 6.1.2.6)."""
        bases = bases or {}
        pairs: list[CandidatePair] = []
        for lc in local:
            for rc in remote:
                if lc.component != rc.component or _family(lc.ip) != _family(rc.ip):
                    continue
                p = CandidatePair(lc, rc)
                p.compute_priority(self.controlling)
                pairs.append(p)
        pairs.sort(key=lambda p: -p.priority)
        kept: list[CandidatePair] = []
        for p in pairs:
            local_c = p.local
            if local_c.type == SRFLX:  # checks go out from the base: use the base candidate
                base = bases.get(local_c.base) or next(
                    (c for c in local if c.type == HOST and c.addr == local_c.base), None)
                if base is not None:
                    twin = next((k for k in kept if k.local is base and k.remote is p.remote), None)
                    if twin is not None:
                        self.pruned.append((p, f"pruned: a server-reflexive local candidate is checked from its "
                                               f"base {fmt(base.addr)}, so this pair repeats {twin}"))
                        continue
                    p = CandidatePair(base, p.remote)
                    p.compute_priority(self.controlling)
            twin = next((k for k in kept if k.local is p.local and k.remote is p.remote), None)
            if twin is not None:
                self.pruned.append((p, f"pruned: same local and remote candidates as {twin}"))
                continue
            kept.append(p)
        kept.sort(key=lambda p: -p.priority)
        for p in kept[self.max_pairs:]:
            self.pruned.append((p, f"pruned: the checklist keeps at most {self.max_pairs} pairs"))
        self.pairs = kept[: self.max_pairs]
        self.freeze_initial()
        return self.pairs

    def freeze_initial(self) -> None:
        """Section 6.1.2.6: per foundation, the highest-priority pair is Waiting, the rest Frozen."""
        seen: set[str] = set()
        for p in sorted(self.pairs, key=lambda p: (p.local.component, -p.priority)):
            if p.state != FROZEN:
                continue
            if p.foundation not in seen:
                seen.add(p.foundation)
                p.state = WAITING
                p.history.append((0.0, WAITING))

    # -- lookups and changes ------------------------------------------------------------------
    def find(self, local: Candidate, remote: Candidate) -> CandidatePair | None:
        for p in self.pairs:
            if p.local is local and p.remote is remote:
                return p
        return None

    def add(self, pair: CandidatePair) -> CandidatePair:
        pair.compute_priority(self.controlling)
        self.pairs.append(pair)
        self.sort()
        return pair

    def sort(self) -> None:
        self.pairs.sort(key=lambda p: -p.priority)

    def set_role(self, controlling: bool, extra: list[CandidatePair] | None = None) -> None:
        """Recompute every pair priority after a role change (section 7.2.5.1)."""
        self.controlling = controlling
        for p in self.pairs:
            p.compute_priority(controlling)
        for p in extra or []:
            p.compute_priority(controlling)
        self.sort()

    def unfreeze_foundation(self, foundation: str, now: float) -> None:
        """Section 7.2.5.3.3: a success unfreezes the Frozen pairs with the same foundation."""
        for p in self.pairs:
            if p.state == FROZEN and p.foundation == foundation:
                p.set_state(WAITING, now)

    def next_ordinary(self, eligible=lambda p: True) -> CandidatePair | None:
        """Section 6.1.4.2: the highest-priority Waiting pair; if none, unfreeze the best Frozen
        pair whose foundation has no Waiting or In-Progress pair."""
        for p in self.pairs:
            if p.state == WAITING and eligible(p):
                return p
        busy = {p.foundation for p in self.pairs if p.state in (WAITING, IN_PROGRESS)}
        for p in self.pairs:
            if p.state == FROZEN and p.foundation not in busy and eligible(p):
                return p
        return None

    def by_state(self, *states: str) -> list[CandidatePair]:
        return [p for p in self.pairs if p.state in states]

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self):
        return iter(self.pairs)


__all__ = ["CandidatePair", "CheckList", "pair_priority", "PAIR_STATES", "FROZEN", "WAITING", "IN_PROGRESS",
           "SUCCEEDED", "FAILED", "MAX_PAIRS"]
