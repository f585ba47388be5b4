"""Predict-then-run question of course/00-start-here.ipynb (notebook 00): the form itself.

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict).
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

register(Question(
    "nb00.private-address",
    "Alice's laptop has the address 192.168.1.10 and the course's STUN server 192.0.2.1. Which of them is a private address, one that means something only inside Alice's home network? a) 192.168.1.10, b) 192.0.2.1, c) both, d) neither",
    ["14d534a5d3081276fc3d86a5e56d45eead76db01e6540965827bd766e87b9229"],
    "192.168.0.0/16 is one of the three private ranges of RFC 1918, so thousands of homes use 192.168.1.10 at the same time. 192.0.2.1 comes from 192.0.2.0/24, a documentation range of RFC 5737 that the course uses as a stand-in for a public address.",
    kind="choice",
    choices=["a", "b", "c", "d"],
    feedback={
        "237b5878a12d93de6dfc6db56e69e6cad98375238fa28f6265906cb88e5a9639": "Only one of them is in a private range (10/8, 172.16/12, 192.168/16); the other stands in for a public address.",
    },
))
