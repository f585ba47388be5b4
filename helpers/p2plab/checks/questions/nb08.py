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
    "Both peers only connect(), with no listening socket. Bob's NAT answers an unsolicited SYN with a RST at once (RFC 5382 REQ-4 says a NAT MUST NOT answer for at least 6 seconds). Bob connects 0.5 s after Alice. Does the TCP connection get established? (yes/no)",
    ['6147d5ff4c5bb017c26e7ed5b62de375109c37ff3bd26b1026282b1692f0dfa7'],
    "Alice's first SYN reaches Bob's NAT before Bob has sent anything. The NAT answers with RST and Alice's stack gives up on the connection. Half a second later Bob's SYN gets through Alice's NAT, but no socket on Alice's port 5000 waits for it any more, so Alice's own host answers with another RST.",
    kind='yes/no',
))

register(Question(
    'nb08.rst-listener',
    "The same rude NAT in front of Bob and the same half-second delay, but now both peers also listen on port 5000 (the standard method). Does the TCP connection get established? (yes/no)",
    ['51646d1935654f326403a960514dd03258c3e18b95059c9603e1f019579abd4b'],
    "Alice's connect() still dies on the RST, but her SYN has already opened her own NAT toward Bob's endpoint. When Bob's SYN arrives, Alice's listening socket accepts it and answers with SYN-ACK, and Bob's connect() completes. The listener gives the punch a second chance that a lone connect() does not have.",
    kind='yes/no',
    feedback={
        'fb9c8ba341fb8ca8981fd72f0ba4953e5e5816884c5ee14af68ae1d8d0305219': "Alice's connect() does fail, but which socket on port 5000 could still take Bob's SYN?",
    },
))

register(Question(
    'nb08.symmetric-full-cone-tcp',
    "Alice behind the symmetric NAT, Bob behind the full cone NAT. Both listen on port 5000 and connect from it to the endpoint the server gave them. Is a TCP connection established? (yes/no)",
    ['9ff8354fefb382b3396b6f0aa9a2686732c6feaa7f214f3b97aa7c183ba5d6f1'],
    "Alice's symmetric NAT sends her SYN from a new outside port, not the one the server saw. Bob's full cone NAT lets anyone in on his mapping, so the SYN reaches Bob's port 5000. His connect() socket waits for Alice's old port and does not match, but his listening socket accepts any SYN on port 5000 and answers it; Alice's connect() gets its SYN-ACK. Bob's own SYN, sent to the port the server saw, is dropped by Alice's NAT, and that does not matter.",
    kind='yes/no',
    feedback={
        '9d9a61345a35234b685c2ddd41ebe275b2ba778c667406ee8b3e43697edd4650': "That is what happens when the peers only connect(): Bob's host answers the stranger's SYN with RST. Which socket on Bob's port 5000 takes a SYN from any port?",
    },
))

register(Question(
    'nb08.symmetric-port-restricted-tcp',
    "Alice behind the symmetric NAT, Bob behind the port-restricted cone NAT, both listening and connecting on port 5000. Is a TCP connection established? (yes/no)",
    ['5b8387c045c65f2e817827b77a9ee964db92d672bc455247b45324a1e18591c6'],
    "Bob's port-restricted NAT admits only the exact endpoints Bob has sent to: the server and the port the server saw for Alice. Alice's SYN comes from the new port her symmetric NAT picked toward Bob, so it is dropped. Bob's SYN goes to the port the server saw, which Alice's NAT opened for the server only, so it is dropped too. Neither SYN reaches a socket, listening or not; only port prediction or a relay helps.",
    kind='yes/no',
    feedback={
        'f630a8b845ff779198606b76d47845412952ee568ecde3102c188f1c0b3e0033': "A listening socket only helps if a SYN gets through a NAT to it. Which of the two SYNs does a filter admit?",
    },
))
