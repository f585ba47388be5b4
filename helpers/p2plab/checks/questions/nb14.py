"""Predict-then-run questions of course/14-*.ipynb (mDNS host candidates, IPv6 and NAT64).

Only SHA-256 hashes of the answers are stored (see p2plab.checks.predict); make one with
``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from p2plab.checks.predict import Question, register

QUESTIONS = [
    Question(
        'nb14.mdns-peer',
        "Bob's browser, on his own home LAN, receives Alice's host candidate with the address "
        "'<uuid>.local' instead of 192.168.1.10. What happens when it tries to resolve the name?",
        ['6e20a751520f0d44714a0a8277075a8952ceea993a497b53050c92833ddd940c'],
        "Names under .local belong to multicast DNS (RFC 6762): Bob's browser multicasts the query to "
        "224.0.0.251 on his own LAN. Only hosts on that link hear it, and Alice is not one of them, so no "
        "answer comes and the candidate is dropped. The pair that connects comes from the server-reflexive "
        "candidates (or a peer-reflexive one learned from the checks). The lab capture shows exactly this: "
        "Bob's query, no answer, and a srflx-srflx pair.",
        kind='choice',
        choices=['his DNS server answers', 'no one answers; the candidate is dropped', "Alice's router answers"],
        feedback={
            '4ebd275cfac33bdffb8317bbe04cb660e3b8396eb2b9840351a6db868551c55d':
                "A .local name is never sent to a DNS server: it is asked by multicast on the local link, and the "
                "name was made up by Alice's browser a moment ago, so no DNS server could know it.",
            '4da7d105022c41c906b4c179cbd0853e4f401fbc4321346fb3c8ab1ad5b13a5c':
                "Queries to 224.0.0.251 stay on the link they were sent on: routers never forward them, and "
                "Alice's router is not on Bob's link anyway.",
        },
    ),
    Question(
        'nb14.v6-one-sided',
        "IPv6, no NAT anywhere: Alice sends UDP to Bob's global address 2001:db8:b::20, but Bob sends nothing. "
        "Bob's home router runs the stateful firewall RFC 6092 recommends. Does Alice's packet reach Bob? (yes/no)",
        ['f64bbc170fd5b4f2646128852805eedfcedb83a64da73c8bfc9fdfcb97b8f5a5'],
        "Without NAT every host has a global address, but the home router's firewall admits inbound "
        "packets only for flows an inside host started (RFC 6092). Bob has sent nothing, so there is no "
        "state, and the packet is dropped. When Bob sends to Alice too, both firewalls learn the flow and "
        "the packets pass: the same hole punch as with NAT, with nothing to translate and nothing to discover.",
        kind='yes/no',
        feedback={
            '6b0489dafbaac430a2b0d45bb1198b59d543e48cfadd5dc2d09bb5d67c37c2a4':
                "A global address makes Bob addressable, not reachable: his router's stateful firewall still "
                "drops packets that no inside host asked for.",
        },
    ),
    Question(
        'nb14.wkp-lab',
        "IPv6-only Alice sends to 64:ff9b::c000:201, which is the lab server 192.0.2.1 under the well-known "
        "NAT64 prefix. Does the translator pass the packet on? (yes/no)",
        ['72c34205f7efafc994102545c30a067e01e7056f0c12a6b344ae338ae30dce0e'],
        "RFC 6052 section 3.1 says the well-known prefix must not represent non-global IPv4 addresses "
        "(private ones, and the special ranges of RFC 5735, which include the documentation ranges the lab "
        "uses), and that translators must drop such packets. tayga does, and so does p2plab's model. The "
        "lab therefore uses a network-specific prefix, 2001:db8:64::/96, which may carry any IPv4 address.",
        kind='yes/no',
        feedback={
            'b5c69c447b93495a9ba02c423371d7dd0bd6ae1bfeee208d93550724f0497849':
                "The address is well formed, and on the internet 64:ff9b::/96 is what DNS64 hands out; but "
                "192.0.2.1 is a documentation address, not a global one, and the RFC forbids exactly that "
                "combination.",
        },
    ),
]

for _q in QUESTIONS:
    register(_q)
