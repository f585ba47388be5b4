"""Prediction questions of notebook 05 (STUN). Answers are stored as hashes only.

Make a hash with ``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from ..predict import Question, register

register(Question(
    'nb05.mapped-port',
    "Alice's NAT keeps the inside port when it is free. Alice sends a Binding request from 192.168.1.10:5000 to the STUN server at 192.0.2.1:3478. Which port will the server put in XOR-MAPPED-ADDRESS?",
    ['9a858ca247547e14e0c626ced234c79a327071dd9a79707c9e19f935f17154d2'],
    "The server reports the source it saw, which is the NAT's outside endpoint. This NAT preserves ports, so the mapping is 203.0.113.10:5000. A NAT that picked another port would show another number, which is why Alice asks instead of guessing.",
    kind='number',
    feedback={
        '1c6f7a8c1c4de079ccd5095a1397e76623c49005cdf19fc985282266b2e3bead': "3478 is the server's own port, where the request was going. STUN reports where it came from.",
    },
))

register(Question(
    'nb05.give-up-time',
    'Nothing answers at 192.0.2.99. With RTO = 500 ms, Rc = 7 and Rm = 16, after how many seconds does the StunClient give up?',
    ['3e740ad3396657275a30f55b16b6b048b46f2469c297a82b36ccf2606f324bdf'],
    'Seven requests leave at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s (the wait doubles each time). After the last one the client waits Rm x RTO = 16 x 0.5 s = 8 s more: 31.5 + 8 = 39.5 s (RFC 8489 section 6.2.1).',
    kind='number',
    feedback={
        '0c37c9a796826544c37772a01f5e980b9963c0bfa157004e916a01dd788431c7': '31.5 s is when the last request leaves; the client still gives that one time to be answered.',
        '2a6ca1c8cc110603413368f1e7e8f61fd392b463ce6b181e52efe7df5827436b': 'That assumes a fixed 0.5 s between requests; the wait doubles after every request.',
    },
))

register(Question(
    'nb05.symmetric-same-mapping',
    "RFC 5780 discovery behind the 'symmetric' preset: test I asks the server's primary address, mapping test II asks its alternate IP address from the same socket. Will both answers report the same mapped address? (yes/no)",
    ['ca7103010e2b8a21c5cfdb9318f83cf7afa7125caa32f0deee24c7c00e057b7b'],
    'A symmetric NAT (address-and-port-dependent mapping) gives every new destination its own outside port, so the alternate address sees another port than the primary one. Comparing the two answers is exactly how RFC 5780 section 4.3 tells the mapping behaviours apart.',
    kind='yes/no',
))
