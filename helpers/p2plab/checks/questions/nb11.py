"""Predict-then-run questions of course/11-*.ipynb (capstone).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict); make one with
``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        'nb11.browser-relayed-pair',
        "Two Chromium browsers, Alice's and Bob's, both behind symmetric NATs. Only Bob's browser is given the TURN server; Alice's knows the STUN server alone. Which pair does Alice's browser select? a) her srflx candidate with Bob's srflx candidate, b) a peer-reflexive candidate of hers (a new mapping of her NAT) with Bob's relay candidate, c) a relay candidate of her own with Bob's peer-reflexive candidate, d) none: without a TURN server of her own Alice cannot connect",
        ['6d6965e3179c3021323cb9ac9c1120faa176ec47c9a854efe835772724539104'],
        "Alice's checks to Bob's relayed address leave through a new mapping of her symmetric NAT (a peer-reflexive candidate, learned from the XOR-MAPPED-ADDRESS of the answer), and Bob's relay forwards them to his browser. One relay is enough when either side has one: that is the pair p2plab's own agent selected above, prflx to relay, and the browser selects it too.",
        kind='choice',
        choices=['a', 'b', 'c', 'd'],
        feedback={
            '071ac54bd8caec1c673394ba4f4a23707e300a4d5cadc3834690a7ed292b91f0': "Each symmetric NAT opened its srflx mapping for the STUN server only; checks toward it from the other NAT are filtered, exactly as in notebook 10's symmetric run.",
            '7078fdad9ebb25da8979d882fb133de70dd1929ae6b6a48db8b2f3ec8c87c58c': "Alice's iceServers list only the STUN server, so she never allocates a relay: she has no relay candidate to select.",
            '99617a87da243d0652d8819be0541e9934509ffa3b79ad05d98ece6fa58d7ec8': "A relay on one side is enough: Bob's relayed address accepts Alice's packets once Bob has installed a permission for her address, whatever her own NAT does.",
        },
    ),
    Question(
        'nb11.file-intact',
        'Alice and Bob are both behind symmetric NATs; ICE selected a relayed pair. Alice sends a 4,700-byte file in 1000-byte chunks over it. Does Bob end up with exactly her file, byte for byte? (yes/no)',
        ['cc775db7dd2c2778609002dbf2ba398aa4e9bd1c2b12b71ceb75dd82e51529cf'],
        "The relay forwards each chunk's payload unchanged: Alice's datagrams reach Bob's relayed address, the TURN server wraps each one in a Data indication for Bob, and Bob's ICE agent unwraps it. The numbered chunks let Bob reassemble the file, and its SHA-256 hash matches Alice's.",
        kind='yes/no',
    ),
    Question(
        'nb11.population-share',
        "300 peers behind the course's NAT mix (18% symmetric) each hole-punch to 5 random others. What share of the attempts get a direct path: 'under 50%', '50% to 80%' or 'over 80%'?",
        ['5c26b481611380fe6e4158622bc0376dc9319231f1f6cb71afec2348f9e115ab'],
        '73.0% of 1490 attempts. Only pairs with a symmetric NAT opposite a port-restricted filter (port-restricted cone or Linux masquerade), or two symmetric NATs, fail; with 18% symmetric homes that is about a quarter of all pairs.',
        kind='choice',
        choices=['under 50%', '50% to 80%', 'over 80%'],
        feedback={
            '6fefe18ade3442fc3f58d4701e0c0276325d9c7972647ef3e81cec8bd94e272d': '82% of NATs support punching, but a connection needs two NATs, and a symmetric NAT also fails against the common port-restricted ones.',
            '313b806900df7eba2d54df2383fa98713b258e39ab30efc29f41537061ed627c': 'Most pairs here involve no symmetric NAT at all, and those always succeed.',
        },
    ),
    Question(
        'nb11.no-symmetric',
        "Take symmetric NATs out of the population's NAT mix (the other presets keep their proportions). Will every hole-punching attempt get a direct path? (yes/no)",
        ['fdfbe20eee1dfc7aab981245cef99be7d13cd96ba64a3843175a05961d0c8236'],
        "Every other preset maps endpoint-independently, so the address the rendezvous server saw is the one the peer's punches must reach, and notebook 06's matrix shows every such pair connecting. In the simulator, with no packet loss and no firewalls, that makes 100% direct; real networks add failures the model leaves out.",
        kind='yes/no',
    ),
]

for _q in QUESTIONS:
    register(_q)
