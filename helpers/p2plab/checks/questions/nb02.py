"""Predict-then-run questions of course/02-*.ipynb (notebook 02).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict).
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        "nb02.bob-reaches-private",
        "Alice tells Bob 'connect to 192.168.1.10:5000'. Bob, on a public address, sends a datagram there. Does it reach Alice? (yes/no)",
        ["c3c2cabf7c7b068e5fb77e01db608e8ea0d16df08e91cb4fc5b1d51c86af6be6"],
        "192.168.1.10 is an RFC 1918 private address. No router on the internet has a route to it, so the core drops Bob's datagram before it gets anywhere near Alice's home.",
        kind="yes/no",
    ),
    Question(
        "nb02.is-172-32-private",
        "Is 172.32.0.1 a private (RFC 1918) address? (yes/no)",
        ["51aaae2f516c5bff0cd4041d2d44f0465951c090fa6ffc39e83136e5f12fdf28"],
        "The middle private block is 172.16.0.0/12: it runs from 172.16.0.0 to 172.31.255.255. 172.32.0.1 is just past its end, an ordinary public address.",
        kind="yes/no",
    ),
    Question(
        "nb02.bob-sees-address",
        "Alice (192.168.1.10, behind her NAT 203.0.113.10) sends a datagram to Bob. Which source address does Bob see? a) 192.168.1.10, b) 203.0.113.10, c) 198.51.100.9",
        ["cf1de3aefb90262a235a63978b02633c713b8e9cd0135d247904be200af8b1bb"],
        "Alice's router replaces her private source address with its own public one, 203.0.113.10, on the way out. 198.51.100.9 is Bob's own address.",
        kind="choice",
        choices=["a", "b", "c"],
        feedback={
            "f645e3476197b14c5c4189dfb85cb003e60235f17a7044436a6adbee3029ba68": "That is Alice's address inside her home; her router rewrites it before the packet leaves.",
            "7849e833bd7c5be46e9c90ca4697fa3fdd3e83e0834baf025d7bef2b927e9bf9": "That is Bob's own address, the packet's destination.",
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
