"""Prediction questions of lab 09 (around the NAT: port mapping behind a carrier-grade NAT).
Answers are stored as hashes only.

Make a hash with ``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from ..predict import Question, register

register(Question(
    "lab09.cgn-grant",
    "Alice's home router runs a PCP server, but it sits behind her provider's carrier-grade NAT, so its own "
    "external address is 100.64.1.2. Alice asks it for a mapping of UDP port 5000. What does it answer? "
    "a) SUCCESS, with the public address the internet sees, b) SUCCESS, with 100.64.1.2, c) an error result code",
    ["92bb0480705df43d42252f8fb98bf626df7403b44fa9665958b8983defa39258"],
    "A router knows only its own external address. p2plab's router grants the mapping on 100.64.1.2: SUCCESS, "
    "but on the wrong box, because the carrier's NAT in front of it has no matching mapping. (Debian's miniupnpd "
    "refuses instead, with NO_RESOURCES, since it knows 100.64.0.0/10 is not public; either way nobody on the "
    "internet can reach Alice through it.)",
    kind="choice", choices=["a", "b", "c"],
))
