"""ICE (RFC 8445, UDP, one component): candidates, checklists, a sans-I/O agent and ``run_ice``.

* ``candidates`` - candidate types, the priority formula, foundations, redundancy pruning.
* ``checklist`` - candidate pairs, pair priority, ordering, pruning, the five pair states.
* ``agent`` - ``IceAgent``: gathering (STUN, TURN), connectivity checks, nomination, then
  application data on the selected pair (``send_data``, ``data`` events), consent freshness,
  trickle ICE, ICE restart and ``close()``.
* ``run`` - ``run_ice(nat_a, nat_b, seed)``: Alice and Bob in the simulator, with a report.

>>> from p2plab.ice import candidate_priority, pair_priority
>>> candidate_priority("srflx")
1694498815
"""

from __future__ import annotations

from .agent import IceAgent, IceConfig, IceStateError
from .candidates import (
    CANDIDATE_TYPES,
    TYPE_PREFERENCES,
    Candidate,
    candidate_priority,
    compute_foundation,
    prune_redundant,
)
from .checklist import PAIR_STATES, CandidatePair, CheckList, pair_priority
from .run import REPORT_COLUMNS, IceResult, run_ice, turn_available

__all__ = [
    "IceAgent", "IceConfig", "IceStateError", "Candidate", "candidate_priority", "compute_foundation", "prune_redundant",
    "TYPE_PREFERENCES", "CANDIDATE_TYPES", "CandidatePair", "CheckList", "pair_priority", "PAIR_STATES",
    "run_ice", "IceResult", "turn_available", "REPORT_COLUMNS",
]
