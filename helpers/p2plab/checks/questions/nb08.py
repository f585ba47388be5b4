"""Prediction questions of notebook 08 (TCP hole punching). Answers are stored as hashes only.

Make a hash with ``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from ..predict import Question, register

register(Question(
    'nb08.simultaneous-state',
    "TCP simultaneous open: Alice has sent a SYN (she is in SYN-SENT) and now receives Bob's SYN, not a SYN-ACK. Which state does her socket move to? a) ESTABLISHED, b) SYN-RECEIVED, c) CLOSED (she answers with RST)",
    ['467639c310a100a3f34ef601208969163544bcfe22240096cce6fd428de6db90'],
    "A SYN without ACK in SYN-SENT means the other side is opening too. TCP answers it with a SYN-ACK and moves to SYN-RECEIVED; when the other side's SYN-ACK arrives, both are ESTABLISHED (RFC 9293 section 3.5).",
    kind='choice',
    choices=['a', 'b', 'c'],
    feedback={
        'c8899292d169afde288baaf232325ac406daa7f3fa7184204632b9ea0353b1cb': 'A stack that did that would break simultaneous open; RFC 9293 keeps the connection and answers with SYN-ACK.',
    },
))

register(Question(
    'nb08.rst-late-bob',
    "Bob's NAT answers an unsolicited SYN with a RST at once (RFC 5382 REQ-4 says a NAT MUST NOT answer for at least 6 seconds). Bob starts 0.5 s after Alice. Does the TCP connection get established? (yes/no)",
    ['6147d5ff4c5bb017c26e7ed5b62de375109c37ff3bd26b1026282b1692f0dfa7'],
    "Alice's first SYN reaches Bob's NAT before Bob has sent anything. The NAT answers with RST, Alice's stack gives up on the connection, and when Bob's SYN arrives half a second later there is no socket waiting for it, so Alice's own host sends a RST back.",
    kind='yes/no',
))

register(Question(
    'nb08.symmetric-full-cone-tcp',
    'With UDP, a symmetric NAT opposite a full cone NAT got a direct path (notebook 06). With TCP, Alice behind the symmetric NAT and Bob behind the full cone NAT both connect() at once. Established? (yes/no)',
    ['9d9a61345a35234b685c2ddd41ebe275b2ba778c667406ee8b3e43697edd4650'],
    "Alice's symmetric NAT sends her SYN from a new outside port. Bob's full cone NAT lets it in, but Bob's socket is connected to Alice's port 5000 only: a SYN from another port matches no socket, and Bob's host answers with RST. The UDP punch used one unconnected socket that accepted whoever answered.",
    kind='yes/no',
))
