"""Predict-then-run questions of course/04-*.ipynb (notebook 04).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict).
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        "nb04.symmetric-same-port",
        "Alice is behind a symmetric NAT (address-and-port-dependent mapping). From one socket she sends to the server, then to Bob. Does Bob see the same outside port as the server? (yes/no)",
        ["97dbdbf7f9ad413788f4bf0524c62f120895163ea18b308536ffad87ac6cf780"],
        "Address-and-port-dependent mapping gives each new destination its own mapping, so its own outside port (chosen at random by this NAT). What the server saw is useless to Bob.",
        kind="yes/no",
    ),
    Question(
        "nb04.expired-reply",
        "Alice's NAT keeps an idle UDP mapping for 120 s. Alice sends to Bob once, at t = 0 s, and then stays silent. Bob replies at t = 60 s and again at t = 150 s. Does the reply at t = 150 s reach Alice? (yes/no)",
        ["61a13aba6c3ef495facf9cfd19ee7985c6f61a80579c7fc5e2e9abc001776763"],
        "Only outbound packets refresh a mapping (RFC 4787 REQ-6). Bob's reply at 60 s does not, so the mapping expires at 120 s and the reply at 150 s finds nothing to translate to.",
        kind="yes/no",
        feedback={
            "075b0b56452b3d9375850e81b13cf7dffe6fc96bb3700f42f2917697ba04c0c5": "Bob's reply at 60 s got through, but inbound packets do not refresh the mapping here.",
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
