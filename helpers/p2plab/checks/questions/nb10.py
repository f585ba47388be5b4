"""Predict-then-run questions of course/10-*.ipynb (ICE).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict); make one with
``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        'nb10.host-priority',
        'RFC 8445: priority = 2^24 x type preference + 2^8 x local preference + (256 - component ID). What is the priority of a host candidate (type preference 126, local preference 65535, component 1)?',
        ['deaea43502cf9bf4abf5666d1554923c6b7718dce341d2a2947b8434dcf9da9a'],
        '2^24 x 126 = 2113929216, 2^8 x 65535 = 16776960, and 256 - 1 = 255: together 2130706431, the highest priority any candidate with one interface can have.',
        kind='number',
        feedback={
            '482e0573e1987800ac67cf6f99835850510a0c03363bd38473029ccb13b6d588': 'Close: the last term is 256 minus the component ID, 255 for component 1.',
            '07ba45b1931f65a5a956ce2e7dfa499945e27148b70573b5ac39ea4a86b47895': 'That is only the type-preference term; add the local preference and component terms.',
        },
    ),
    Question(
        'nb10.lowest-type',
        'Which candidate type makes every pair it is in sink to the bottom of an ICE checklist: host, srflx, prflx or relay?',
        ['afa930c2f504f05bbfcbad6b5cd742784aad3325c8c49e426da8140d63546c3b'],
        "Relayed candidates have type preference 0, so their priority is below 2^24, and a pair's priority is dominated by 2^32 x min(G, D): any pair with a relayed candidate ranks below every pair without one. ICE wants the relay only as a last resort.",
        kind='choice',
        choices=['host', 'srflx', 'prflx', 'relay'],
        feedback={
            'd512824e18d4557a0ea6059e5b9124ccf6439c83c36a74f5aa15e869ea1b4b00': 'Server-reflexive candidates (100) rank below host (126) and peer-reflexive (110), but far above relayed ones.',
            '011574a65a89997318829755805657020f6ec7bdcf247df9ef3d741e9bebcfca': 'Peer-reflexive candidates rank second (110): they were learned from the peer itself.',
        },
    ),
    Question(
        'nb10.sym-sym-direct',
        'Alice and Bob are both behind symmetric NATs and run ICE with a STUN and a TURN server. Does ICE end on a direct path? (yes/no)',
        ['18b15682df188c4d21ea21b08186b34b47711b89ba9fe90986843f3238a3e332'],
        "Each symmetric NAT gives a new port to every new destination and filters by address and port, so checks toward the other side's server-reflexive address are dropped, just as punches were in notebook 07. ICE still connects: the pair it nominates uses Bob's relayed candidate.",
        kind='yes/no',
    ),
    Question(
        'nb10.relayed-count',
        'ICE runs between every ordered pair of the five NAT presets (25 pairs). How many end on a relayed path?',
        ['83cdb885a937df55ac0f46b23a976d0c31601729387895b65591f4c6cd48aae7'],
        '5 pairs: the same ones where hole punching fails: symmetric opposite port-restricted cone or Linux masquerade (in either order: 4 pairs) and symmetric x symmetric. The other 20 connect directly, and none fails, because ICE also tries the relay.',
        kind='number',
        feedback={
            'b476cc9f6c80e8e2b2535327a12bf7424b09a429d417ebcfdc00e3a307d27dd0': 'ICE does not beat the NATs: where no direct pair can work, it falls back to the relay.',
            'ff2d840d684a68386b9eafd7154e649c6ef42406317217f2ff65505e80166fd2': 'That counts every pair with a symmetric NAT; opposite a full cone or restricted cone NAT, whose filters ignore the port, the path is direct.',
            '93270d21d525619014daf67604b11cf45d26bca8048ec34395803bb2b08eec8b': 'Not only symmetric x symmetric: a symmetric NAT opposite a port-restricted filter also blocks every direct pair.',
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
