"""Scenarios: the course's programs (``p2plab.tcp``, ...) put on the hosts of a simulated network.

Protocol modules describe what a host does; a scenario builds a ``p2plab.sim.Network`` from a
topology, starts the programs on its hosts, runs it and explains the outcome in words.

* ``p2plab.scenarios.tcp.run_tcp_punch`` - a TCP hole punch between Alice and Bob.
"""
