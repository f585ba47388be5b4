"""Predict-then-run questions of course/11-*.ipynb (capstone).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict); make one with
``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
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
