"""Self-checks for the labs, and "predict, then run" questions for the course notebooks.

One module per lab (imported on first use, so ``import p2plab.checks`` stays light)::

    from p2plab.checks import sockets
    result = sockets.check_echo(start_echo)      # prints a friendly message
    result.passed                                # True / False

=====================  =======================================================
``sockets``            lab 01: UDP between two simulated hosts, round-trip time
``nat_table``          lab 02: a NAT class with RFC 4787 mapping and filtering
``stun_by_hand``       lab 03: a Binding request and XOR-MAPPED-ADDRESS by hand
``hole_punching``      lab 04: the punching procedure as a sans-I/O protocol
``port_prediction``    lab 05: the birthday-paradox attack on a hard NAT
``turn_relay``         lab 06: allocate, permit, relay; what relaying costs
``ice``                lab 07: candidate and pair priorities, the winning pair
``capstone``           lab 08: connect Alice and Bob across any NAT pair
``around_the_nat``     lab 09: a PCP request, the mapping's verdict, who sends first
``change_and_trust``   lab 10: consent freshness, fingerprints, accepting Bob's REPLY
=====================  =======================================================

A check never raises: unfinished code ("raise NotImplementedError()") prints
"not started yet - begin at ...", a wrong answer prints a hint about the concept, and a crash
prints the exception in one line.

``ask(question_id)`` shows a "predict, then run" question's answer form in a course notebook;
``answer(question_id, value)`` checks a typed prediction against a stored hash and explains (see
``p2plab.checks.predict`` for the question registry and how to add questions).
"""

from __future__ import annotations

import importlib
from typing import Any

from .common import CheckResult, try_it
from .predict import QUESTIONS, Question, answer, answer_hash, ask, register

LABS = ("sockets", "nat_table", "stun_by_hand", "hole_punching", "port_prediction", "turn_relay", "ice", "capstone",
        "around_the_nat", "change_and_trust")

__all__ = ["answer", "ask", "answer_hash", "register", "Question", "QUESTIONS", "CheckResult", "try_it", *LABS]


def __getattr__(name: str) -> Any:
    if name in LABS or name in ("common", "predict"):
        return importlib.import_module(f"p2plab.checks.{name}")
    raise AttributeError(f"module 'p2plab.checks' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LABS))
