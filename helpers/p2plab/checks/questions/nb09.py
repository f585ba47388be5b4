"""Predict-then-run questions of course/09-*.ipynb (relays and TURN).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict); make one with
``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        'nb09.first-allocate',
        "Alice's first TURN Allocate request carries no USERNAME and no MESSAGE-INTEGRITY. What does the server answer: 'success', '401 error' or 'no answer'?",
        ['53c29a008695e2fc15c10ac3c2ec67bba9905cca84912234ac4dd9e0f8908c4d'],
        "The server only serves users it knows, so it answers 401 (Unauthenticated) with its REALM and a fresh NONCE. Alice's client then signs a second Allocate with a key made from her username, the realm and her password (MESSAGE-INTEGRITY), and that one succeeds.",
        kind='choice',
        choices=['success', '401 error', 'no answer'],
        feedback={
            '26d14bb0de40d3b2e46115c697a9b1f57a476e49f79bc10b371419785f0d0659': 'A relay spends bandwidth on whoever uses it; an unsigned request cannot prove who Alice is.',
            'c51517ade6bb765e13069db457dae465fda64db9f46a8c2fbc7dfcee718f4609': 'The server does answer: it tells Alice how to authenticate (REALM and NONCE).',
        },
    ),
    Question(
        'nb09.permission-port',
        "Alice installed a TURN permission for Bob's public address as his STUN server saw it (port 5001's mapping). Bob, behind a symmetric NAT, sends from his port 5000, so his NAT uses another outside port. Does the relay pass his datagram on to Alice? (yes/no)",
        ['88d435f7810e17c6c51e8acaa3436c5d5413ce62ad57bfd107c5b00b6485fb1b'],
        "A TURN permission matches the peer's IP address only; the port is ignored (RFC 8656 section 9). Bob's symmetric NAT changes the port but, like most NATs, uses one outside address for all his flows ('paired' address pooling, which RFC 4787 REQ-2 recommends), so Bob's datagram matches the permission and the relay delivers it in a Data indication. A NAT with several outside addresses and no pairing could break this.",
        kind='yes/no',
    ),
    Question(
        'nb09.channel-header',
        'How many bytes of header does a TURN ChannelData message put in front of the payload?',
        ['090bf74e890463230d0a3d0ea2172a2dfc87b2bd815c628902cfc8fcae9581e2'],
        'Two bytes of channel number (0x4000-0x4FFF) and two bytes of length: 4 bytes, against a 20-byte STUN header plus XOR-PEER-ADDRESS and DATA attributes for a Send or Data indication.',
        kind='number',
        feedback={
            '0386d0bbc6b8485fa3f5df8e578269d8541f3ad51ab69056a47a69705b2f5f1f': '20 bytes is a STUN message header; ChannelData exists to avoid it.',
            'c1741161f699ac11d29cd3231aaedfcc7bb439e19135e64387372e618a37a904': "That is roughly a Send indication's overhead; the channel replaces it with something much smaller.",
        },
    ),
    Question(
        'nb09.data-refresh',
        'Bob sends Alice a line through her TURN relay every 60 s for twelve minutes; Alice renews her permission every 240 s but never sends a Refresh request (allocation lifetime 600 s). Does the allocation survive past t = 600 s? (yes/no)',
        ['9cfabde5eddcaec6145992f4671dc077ac3a50242b1ccd7fd50736a0c9fbfb38'],
        'Data does not refresh a TURN allocation: only a Refresh request does (RFC 8656 section 6). At 600 s the server deletes the allocation and frees the relay port, so lines 10, 11 and 12 find nothing listening there.',
        kind='yes/no',
    ),
    Question(
        'nb09.relay-share-gbps',
        '1000 users each send a 2 Mbit/s stream, and 20% of them need the relay. How many Gbit/s leave the relay server?',
        ['ddd9a6e0e87492857505df6159e8d44a5b1473ecb743f410f3802bbfdbc2ceb4'],
        '200 relayed users x 2 Mbit/s = 400 Mbit/s = 0.4 Gbit/s come in and the same 0.4 Gbit/s go out again. The 800 users with a direct path cost the relay nothing.',
        kind='number',
        digits=3,
        feedback={
            '14ac418ad2f7b25cde982c15145667aef019ea340dd037ea00c0710d95bda668': 'That is everyone through the relay; only 20% of the users need it.',
            'c7a643ce05fc844398d38c57e0dfa1af28479d9a7319b8693d3c1fe891bcd8a9': 'That adds what comes in and what goes out; the question asks only what leaves.',
            '80e7510c2c374caa7dca17c653b9104a51354f6d2e6c88cb6e34602097706368': '400 is right in Mbit/s; the question asks for Gbit/s.',
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
