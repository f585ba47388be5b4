"""Predict-then-run questions of course/01-*.ipynb (notebook 01).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict).
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        "nb01.packet-length",
        "Alice sends the 9 bytes b'hello bob' to Bob over UDP. How many bytes long is the IP packet on the wire (IP header, UDP header and payload)?",
        ["57599419a4bb1d9f88322fd2b6dd4aa0d9646a00c2798fbff06087cd21a9f4df"],
        "An IPv4 header without options is 20 bytes and a UDP header 8 bytes, so 20 + 8 + 9 = 37. The IP header's total length field says 37; the UDP length field says 17 (its own 8 bytes plus the 9 of payload).",
        kind="number",
        feedback={
            "e2e803b4883224251e8cde37d29626dedf7905e5babc881e3cf88dc7550a4fde": "That is only the payload; the IP and UDP headers travel with it.",
            "879896057a01d7b2e7be31a8ae75153be4ba3ebee39561c30bbc737c97339d85": "That is the UDP length field (UDP header plus payload); the 20-byte IP header comes on top.",
            "4681d212c178648e13552af5629ed9863671ad757c54a995d954fc7e23a585f9": "Close: the IPv4 header is 20 bytes, not 12.",
        },
    ),
    Question(
        "nb01.relay-one-way-ms",
        "Alice and Bob are each 10 ms (one way) from the internet core, and so is the relay server. How many milliseconds does a datagram take from Alice to Bob through the relay?",
        ["49fa58f79e124eb08ec452f05f0fafbed18c6ba8d399fed31a116af9e6503cb0"],
        "Through the relay the datagram crosses four links: Alice to the core, the core to the relay, the relay back to the core, the core to Bob: 4 x 10 ms = 40 ms, twice the direct path's 20 ms.",
        kind="number",
        feedback={
            "d6a8d48ba4924df937ef98d8ed47df9a8e7a9be3aa64e174b4309365c0708053": "That is the direct path, Alice - core - Bob. The relay adds a trip to the server and back.",
            "cc1ba54f03ddc38bd4e4327711b936e1caa6c0a84de0c2d4e99e1f680a653c7c": "Count the links once more: the relay sits on its own link, which the datagram crosses twice (in and out).",
        },
    ),
    Question(
        "nb01.relay-gbps-out",
        "1000 users each send a 2 Mbit/s video stream through one relay server. How many Gbit/s leave the server?",
        ["6e41d3799ce86d0dbe48a40230bda7c0eba9286d9b109ec19f3175a8a0fb8cd2"],
        "1000 x 2 Mbit/s = 2000 Mbit/s = 2 Gbit/s come in, and the same 2 Gbit/s go out again: a relay forwards every byte it receives.",
        kind="number",
        feedback={
            "72977f2f2998de043ec7f5c73259ee38a3dde9f268041f136c3eca0fa0f4b6e8": "That adds what comes in and what goes out; the question asks only what leaves.",
            "72d3b1874ab6261ba4d9d00d0b5a8e58d69053ec6667f40f7c4e8ad4a107166d": "2000 is right in Mbit/s; the question asks for Gbit/s (1 Gbit/s = 1000 Mbit/s).",
            "b0e6c00ac1ee25b2e1ac59cc3736c1db28f882b003c3f63df769452b3f0c27f8": "That is a single stream; the server carries all 1000 of them.",
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
