"""Predict-then-run questions of course/03-*.ipynb (notebook 03).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict).
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        "nb03.changed-fields",
        "Carol, Alice's flatmate (192.168.1.11), also sends from port 5000, after Alice's own mapping has taken outside port 5000. Which header fields does the NAT's translation change (leave aside the TTL, which every router lowers)? a) only the source address, b) the source address and the source port, c) the source address, the source port and both checksums, d) everything, payload included",
        ["be11b96364e5fc0f61ae28cac2962aa3ae0512e102a7a6d64db5e3ce087241f2"],
        "The NAT rewrites the source address and, because port 5000 is taken, the source port. Both are covered by checksums: the IP header checksum covers the address, and the UDP checksum covers a pseudo-header with both addresses plus the ports, so both checksums must be recomputed. The payload is untouched. The TTL goes down by one as well, but every router does that to every packet it forwards: that is routing, not translation.",
        kind="choice",
        choices=["a", "b", "c", "d"],
        feedback={
            "ffdc2854181cb8b24955a9703d6b23f49a1fbd01e4b630ee701d6d159409ef65": "Alice's own packet kept port 5000; Carol's cannot, because outside port 5000 is already Alice's.",
            "cba9894afe354b2ccbaa8d4314c545ccdb6ff099ce70ed137f438455a746368f": "Right fields, but a packet whose checksums were left alone would be thrown away by the receiver. Which fields does each checksum cover?",
            "5dffe4c9fe6cdc9cde6cc833518e85fdcd8cf9a615fbf6a7e90fec7631d910d8": "A NAT rewrites headers only; the bytes 'hi bob' arrive as they left.",
        },
    ),
    Question(
        "nb03.unsolicited",
        "Alice has not sent anything yet. Bob sends a datagram to her router's public address, 203.0.113.10:5000. Does it reach Alice? (yes/no)",
        ["e4d65d450033a1ec2825feb13a9b383813d84ae29dd40e8aea1eb322258e4b1b"],
        "The NAT has no mapping for 203.0.113.10:5000 yet, so it has no idea which inside host (if any) should get the datagram, and drops it. Mappings are made by outbound packets only.",
        kind="yes/no",
    ),
    Question(
        "nb03.table-rows",
        "With endpoint-independent mapping, Alice sends from three sockets (ports 5000, 5001, 5002), each one to Bob and to the server. How many rows will the NAT's translation table have?",
        ["79d1be0b9ad1b0b41ad98451ef5fbe1b4d2ae299222d2e58631c01a632bef5f7"],
        "Endpoint-independent mapping keeps one mapping per inside endpoint, whatever the destination: three sockets, 3 rows. Each row lists both remote endpoints it has sent to.",
        kind="number",
        feedback={
            "ebad11c867b01062a348a35af38180cb913e9135676cd6a4bcb48195f30ab175": "That would be one mapping per (socket, destination) pair: what a symmetric NAT does (notebook 04). This NAT maps each inside endpoint once.",
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
