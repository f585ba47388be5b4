"""Prediction questions of notebook 12 (around the NAT: connection reversal, port forwarding, ICMP and
TCP through a NAT). Answers are stored as hashes only.

Make a hash with ``python -m p2plab.checks.predict hash QUESTION_ID VALUE --kind KIND``.
"""

from __future__ import annotations

from ..predict import Question, register

register(Question(
    'nb12.reversal-symmetric',
    "Alice is behind the symmetric NAT, Bob has a public address. Bob asks the rendezvous server to connect him to Alice, and the server asks Alice to call Bob. Does the connection come up? (yes/no)",
    ['bf3698d03aa56e019606f5d9d959b49d85730d76efda54ffff3f57fa9b458073'],
    "Yes. Bob's address is public, so Alice's HELLO reaches him whatever port her NAT picks for it. Bob answers the endpoint the HELLO came from, and that is exactly the mapping Alice's packet created, so the symmetric NAT lets the answer in. Connection reversal never needs to predict a port: the NATed side always speaks first.",
    kind='yes/no',
    feedback={
        '36a37eaf52beea1761f56ed6c4863ec8d0b9caa92ad401daf446877d95a9de06': "A symmetric NAT defeats hole punching because the peer cannot know the new port in advance. Here, does Bob need to know it before Alice's packet arrives?",
    },
))

register(Question(
    'nb12.forward-cgn',
    "Alice's router forwards UDP port 8080 to her computer, but the router itself sits behind her provider's carrier-grade NAT. Bob sends a datagram to 203.0.113.10:8080, the address the internet sees for Alice. Does her service answer? (yes/no)",
    ['c5c3d655b5c2936fdeebb728be2b28931e10eeb49b12cf180668c8ba16758e59'],
    "No. 203.0.113.10 belongs to the carrier's NAT, not to Alice's router. The carrier's NAT has no rule for port 8080 and drops the unsolicited datagram; Alice's own rule is never consulted. Only whoever runs the outermost NAT can forward a port.",
    kind='yes/no',
    feedback={
        '69d078d7a484459a7e56d726dfa8abbd3e8ea1e80b7614f908fe6a95daa80c57': "The forward is on Alice's router. Which box owns 203.0.113.10, and does it have the rule?",
    },
))

register(Question(
    'nb12.icmp-second-id',
    "Alice pings the server with an echo request whose identifier is 0x1234. A moment later Carol, behind the same NAT, pings the same server with the same identifier 0x1234. Which identifier does Carol's echo request carry after the NAT? a) 0x1234, b) another identifier the NAT picks, c) none: the NAT drops it",
    ['b85e0979052c53a5792b254b1765fca656b7a704c98b5a9db9d80edef21c3626'],
    "b. On the outside both requests come from 203.0.113.10 and go to 192.0.2.1, so the identifier is the only thing that can tell the two echo replies apart. Alice's request already holds 0x1234, so the NAT gives Carol's another identifier and puts 0x1234 back into the reply it forwards to her: the identifier plays the part a port plays for UDP (RFC 5508 section 3.1).",
    kind='choice',
    choices=['a', 'b', 'c'],
    feedback={
        'c4dc52e4dadae8dea5bd77997edd9b44b91e71e68e2295cb87c36100c5085901': "Then two replies would come back to 203.0.113.10 with the same identifier. How would the NAT know which one is Carol's?",
        '77c49fef8b666a7038f6b7ec004e040ade031782ca0cb4994e0a5a68e9a6fcfd': "A NAT that dropped it would break ping for every second person in a house. What does a NAT do when two inside hosts want the same UDP port?",
    },
))

register(Question(
    'nb12.quoted-source',
    "The server answers Alice's last traceroute probe with ICMP port unreachable. The error quotes the probe's IP header as the server received it, with source 203.0.113.10. When the error reaches Alice, what source address does the quoted header show? a) 203.0.113.10, b) 192.168.1.10, c) 192.0.2.1",
    ['a884e0c3b05c5cfcc1f73fddde5d5ff9a49e6feba845e31f8495efe299a04f22'],
    "b. Alice's system matches an ICMP error to the socket that caused it by the quoted header. It never sent anything from 203.0.113.10, so the NAT rewrites the quoted header back to 192.168.1.10:5001 (RFC 5508, REQ-4 a) and fixes every checksum that covers it: the quoted IP header checksum, the quoted UDP checksum and the ICMP checksum.",
    kind='choice',
    choices=['a', 'b', 'c'],
    feedback={
        '24e5cce3fd68d7cac7c7416d44f0c532f4a926386c44230296739865c2fa44f7': "That is what the server quoted. Would Alice's system recognise a packet 'from 203.0.113.10' as one of its own?",
    },
))

register(Question(
    'nb12.udp-blocked-turn',
    "Alice's network lets only TCP to port 443 out. Her ICE agent tries its TURN servers one after the other: UDP to 192.0.2.1:3479, then TCP to 192.0.2.1:3479, then TLS to 192.0.2.1:443. Which attempt gives her a relayed candidate? a) the UDP one, b) TCP on port 3479, c) TLS on port 443, d) none: without UDP there is no relay",
    ['38f1564ca86b766e483b6a55aeeee1dd97c05a65aad77834b46e7edb2f12e9aa'],
    "c. The firewall drops every UDP datagram and every TCP SYN that is not for port 443, so the UDP Allocate goes unanswered and the TCP connection to 3479 never opens. TLS on 443 looks like any HTTPS connection and gets through. The relayed address the server hands out is still a UDP address (RFC 8656): only the leg from Alice to her server runs over TLS; the server talks UDP to Bob.",
    kind='choice',
    choices=['a', 'b', 'c', 'd'],
    feedback={
        'a7c2af5e8dc3ba8bbcbefddba67cd570ace700a2f92436d44b65752b676fe2d6': "UDP is the fastest way to a TURN server. Does the firewall let any UDP datagram out?",
        '99e8d24a89c89ef3f935ff2d7ee206b545d27f8b0c8582a08105a6b0f5ccfd11': "It is TCP, but the rule names one port. Which one?",
        '9fa04ea175176bfb94b4d05d48ecd5d8b5cf24e62100517597fd462d1f2eb6a6': "TURN can carry its messages to the server over a TCP or TLS connection (RFC 8656), while the relay still talks UDP to peers. Which connection can leave Alice's network?",
    },
))

register(Question(
    'nb12.upnp-reserved',
    "Alice's router runs miniupnpd as Debian installs it. When it starts it looks at its own WAN address, 203.0.113.10, which is on miniupnpd's list of reserved addresses (the list also holds 100.64.0.0/10, the addresses a carrier-grade NAT gives home routers). Alice sends AddPortMapping for UDP port 5000. Does the router grant it? (yes/no)",
    ['4b39ce510b1be84358e8cb3dd31cb97d376f245097c94ada8fd400f7aadfcfee'],
    "No. A reserved WAN address tells miniupnpd that another NAT stands between it and the internet, as behind a carrier-grade NAT, so a port opened on this router would make nobody able to reach Alice. It refuses: GetExternalIPAddress answers an empty address and AddPortMapping answers HTTP 500 with UPnP error 501 ActionFailed. Only when it has checked with a STUN server that packets reach its WAN address unchanged (ext_perform_stun) does it grant the same request.",
    kind='yes/no',
    feedback={
        '58a0504cae690d932b36613f5c53f195de552b419f812f450e8f772e11a3f2d9': "The router could install the rule, as Alice's router did for the port forward behind the carrier's NAT. Would that rule help Bob reach her, and what could the router conclude from its own address?",
    },
))
