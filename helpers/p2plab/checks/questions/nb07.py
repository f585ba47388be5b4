"""Prediction questions of notebook 07 (hard cases). Answers are stored as hashes only.

Make a hash with ``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from ..predict import Question, register

register(Question(
    'nb07.cgn-mapped',
    "Alice sits behind her home router (outside address 100.64.1.2), which sits behind her provider's carrier-grade NAT (outside address 203.0.113.10). Which address will a STUN server report? a) 192.168.1.10, b) 100.64.1.2, c) 203.0.113.10",
    ['23660eb7800f4404c4e1fdf8a857bae641a2026092ad5b5b3102efda8aa959f2'],
    "The server sees the packet after the last NAT on its way: the carrier's. 100.64.1.2 is shared address space (RFC 6598), meaningful only inside the provider's network; it never reaches the server.",
    kind='choice',
    choices=['a', 'b', 'c'],
    feedback={
        '29c1c37d7b95a9633b897c841a854255fc07bd11752aa0043a60478ddc52f25c': "That is the home router's outside address, but a second NAT rewrites it before the packet leaves the provider's network.",
    },
))

register(Question(
    'nb07.hairpin-off',
    "Alice and Carol share one NAT whose hairpinning is switched off. They punch only to each other's public (mapped) endpoints, never to the private ones. Do they get a direct path? (yes/no)",
    ['07ddc059c6f2d6074d9166f3d19f26885437359d7d8123315542c8f16a98fb5f'],
    "Their punches go from inside the NAT to the NAT's own outside address. Without hairpinning the NAT drops them instead of turning them back inside (RFC 4787 REQ-9 says a NAT MUST support hairpinning). Trying the private endpoints as well connects them directly on their LAN.",
    kind='yes/no',
))

register(Question(
    'nb07.two-hard-nats',
    'Both Alice and Bob are behind hard (endpoint-dependent) NATs, and each side sends 2048 probes, each from a fresh port to a random port of the other (the model of the birthday calculator behind Tailscale\'s article). What is the chance of success? a) above 99 %, b) about 50 %, c) below 1 %',
    ['99c5892b958cb4065f139ee3ff71dc6f77a9041fbde76c182f2eb0203ad7a302'],
    'With two hard NATs a probe has to hit the right pair of ports, one on each side, and there are 64,511 x 64,511 (over 4 billion) pairs. 2048 probes per side succeed about 0.1 % of the time; a 50 % chance takes about 54,000 probes per side and 99.9 % about 170,000 (Tailscale\'s figures). A relay is the practical answer.',
    kind='choice',
    choices=['a', 'b', 'c'],
    feedback={
        '3789bd70b2766b7a9636a4a7645eacc81f3876d83732dfe753e238ced192a7cf': 'That is the figure for one hard NAT opposite an easy one.',
    },
))
