"""Prediction questions of notebook 06 (UDP hole punching). Answers are stored as hashes only.

Make a hash with ``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from ..predict import Question, register

register(Question(
    'nb06.matrix-direct-count',
    'The matrix punches every ordered pair of the five presets (full-cone, restricted-cone, port-restricted-cone, linux-masquerade, symmetric): 25 pairs. How many of them get a direct path?',
    ['f86871d225030463c39e920e5e06f121f8f96ed1cde6ebb8b4e737210cee746c'],
    "20 pairs get a direct path and only 5 fail: symmetric opposite a port-restricted filter (port-restricted cone or Linux masquerade), in either order, and symmetric x symmetric. Opposite a full cone or a restricted cone NAT, whose filters do not look at the port, a symmetric NAT's new port does no harm.",
    kind='number',
    feedback={
        'e3eaef3c25058f308ea662890247069bf667b34f86ff644f5ec7c105fb3a749d': 'That would be every pair with a symmetric NAT failing. Look at symmetric opposite a full cone or restricted cone NAT: their filters ignore the port.',
    },
))

register(Question(
    'nb06.clash-late-start',
    "Alice's router is a Linux box with the conntrack clash. Alice waits 0.2 s after learning Bob's address before she punches; Bob starts at once. Do they get a direct path? (yes/no)",
    ['28913c22cdf201626e6e463a16388ffcdd1fd1999d787245f5128ad61cfdf0c4'],
    "Bob's first punches reach Alice's router before Alice has sent anything to Bob. The router accepts them on its own input and keeps a conntrack entry for that flow, so when Alice's punch finally leaves, port 5000 is taken for it and the NAT picks 5001: a port Bob never punches.",
    kind='yes/no',
))

register(Question(
    'nb06.keepalive-too-slow',
    'Both NATs forget a mapping after 30 s without outgoing traffic. After connecting, Alice and Bob each send a keepalive every 40 s. At t = 75 s Bob sends Alice a message. Does it reach her? (yes/no)',
    ['a34db9809aa8b268bee4fff3b30e202062a3cc10cd76fe8579e64d72d214e94a'],
    "Between two keepalives each mapping sits idle for 40 s, longer than the 30 s timeout. Alice's mapping died at about 70 s and her next keepalive is due at about 80 s, so at 75 s her NAT has no mapping and drops Bob's message as unsolicited. Keepalives must come more often than the shortest timeout on the path.",
    kind='yes/no',
))
