"""Predict-then-run questions of course/13-*.ipynb (network change, peer authentication).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict); make one with
``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        'nb13.consent-notices',
        "Alice's laptop leaves the Wi-Fi 10 s into the call and nobody tells the application. How long after the move do the ICE agents notice that the path is dead?",
        ['373a7d876f81d666ca0c7ce1e19b462b7075878e76a11e950f2735eea568510b'],
        'Only consent freshness notices (RFC 7675): consent expires 30 s after the last authenticated answer to a consent check. Those answers came every 4 to 6 s before the move, so the last one was 0 to 6 s old when Alice moved, and consent ran out 24 to 30 s after the move (26.8 s here).',
        kind='choice',
        choices=['under 1 s', 'about 5 s', '24 to 30 s', 'never'],
        feedback={
            '0cf397113d5d221cc9493b5cdc192f9674f1011fdb068a353a1c361ca22a8b01': 'Only if the operating system tells the application: the ICE agents themselves learn it only from unanswered consent checks.',
            '43b376465334815111650c37ef1513a53b540307b626cea9ee18e61e180059ae': 'Consent checks go out every 4 to 6 s, but one unanswered check is not enough: consent lasts 30 s after the last answer.',
            'd1e3008a7959ce30fd67af2fa959ab10d2661058a7a9d63374fc80328709d6c1': 'Consent freshness exists for exactly this: an agent must stop sending when the peer stops answering.',
        },
    ),
    Question(
        'nb13.restart-old-candidates',
        'Alice restarts ICE after the move but keeps the candidates she gathered at home (new ufrag and password, same addresses). Does ICE find a new path? (yes/no)',
        ['bdf01c7796f4a5e525ef55c3be08870997cc543733e0832cd3e0c732a4f0ca57'],
        "Her old candidates describe a network she left: the home NAT's public address now leads nowhere, and her TURN allocation belongs to her old 5-tuple. Her checks from the new address reach Bob's NAT from an address Bob never sent to, and his port-restricted filter drops them. Every pair fails; a restart after a move has to gather again (browsers do: restartIce() gathers new candidates on both sides).",
        kind='yes/no',
        feedback={
            '41d19558eccea4058a04108054845f8c3804b307fedd70cb9f667b784a58ec02': "Peer-reflexive discovery would need Bob to receive one of Alice's checks first; his NAT filters them, because Bob has never sent anything to her new public address.",
        },
    ),
    Question(
        'nb13.who-without-auth',
        'Plain hole punching, no authentication: Alice takes the first endpoint that answers her punch as Bob. Mallory knows her public endpoint and sends a PUNCH that names Bob. Whom does Alice end up talking to?',
        ['e277215f84290d2b98b4d5c8fe848ee123a0d48778e109e5eeaf9a4a4ca195a9'],
        "Mallory. Alice's full-cone NAT lets in packets from anyone once the mapping exists, and Mallory, who only had to wait for Alice to register, is faster than Bob, who first has to learn Alice's address from the rendezvous server. Alice sends her secret to Mallory.",
        kind='choice',
        choices=['bob', 'mallory', 'nobody'],
        feedback={
            '9f7566d8c9172ab6471edc1a6aa3397250456920d376b4140b73f8a054c5d79f': "The PUNCH says 'bob', but anyone can write that; Alice has nothing to check it against.",
            'ce5dec22ec54e7b7cf117cef7b7c98a185a5fc6ed2dd1ae7ecc05783cfd7e3ce': "Alice's NAT is a full cone: Mallory's packets get through.",
        },
    ),
    Question(
        'nb13.copy-bobs-key',
        "Bob's public key is public. Mallory puts it into her REPLY and signs the reply with her own private key. Does Alice accept her? (yes/no)",
        ['95154babf45a1f0e219d5166fb09cdaed9f17dfe3e6e7c4b48e757d59b7db665'],
        "No. The fingerprint matches, but the signature must verify under Bob's public key, and only Bob's private key can make such a signature over this handshake's transcript (which includes Alice's fresh ephemeral key, so an old signature of Bob's is useless too).",
        kind='yes/no',
        feedback={
            '03027fb771dcdd1090e747d94a89483451d61f3680055c9a58c4c27de01b156f': 'A matching fingerprint only says which key to check the signature with; the signature is what proves possession of the private key.',
        },
    ),
    Question(
        'nb13.filtered-verdicts',
        "Same attack, but Alice is behind a port-restricted cone NAT. How many of Mallory's packets reach Alice's program and get a verdict?",
        ['57014515dd1c31909643b51a4f277825332af0f24c9304ceb049b0df13e889c7'],
        "None (0): Alice has sent nothing to Mallory's address and port, so the NAT's filter drops them all before Alice's program sees anything. Filtering helps here, but it is not authentication: an attacker who can send from an address Alice talks to (the rendezvous server's network, a spoofing path, another peer) gets through the filter, and only the handshake stops her.",
        kind='number',
        feedback={
            'a228b6fab592f5b2082d1562647ce09e2066960531c7645c1082d6fa5d1920f8': 'That is what happens with a full-cone NAT; a port-restricted filter admits only endpoints Alice has sent to.',
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
