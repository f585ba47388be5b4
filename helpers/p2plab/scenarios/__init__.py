"""Scenarios: the course's programs (``p2plab.tcp``, ...) put on the hosts of a simulated network.

Protocol modules describe what a host does; a scenario builds a ``p2plab.sim.Network`` from a
topology, starts the programs on its hosts, runs it and explains the outcome in words.

* ``p2plab.scenarios.tcp.run_tcp_punch`` - a TCP hole punch between Alice and Bob.
* ``p2plab.scenarios.reversal.run_reversal`` - connection reversal: the NATed peer calls the public one.
* ``p2plab.scenarios.forwarding.run_forwarding`` - port forward, DMZ host or static NAT on Alice's router.
"""
