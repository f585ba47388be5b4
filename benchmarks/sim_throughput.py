"""Simulator speed: packet-hops per second vs a scapy-object-per-hop baseline, and a 1,000-peer run.

Prints one JSON line:
  sim_hops_per_s       hops/s of the simulator forwarding echo traffic through NATs (trace recorded)
  scapy_hops_per_s     hops/s when every hop builds a scapy IP/UDP packet and its bytes (the baseline)
  ratio                sim / scapy (target >= 50)
  population_s         wall seconds for 1,000 peers behind a NAT mix, each punching to 10 others (target <= 5)
Times are CPU seconds of this process (time.process_time), so other load on the machine matters less;
population_wall_s is also printed.
"""

from __future__ import annotations

import json
import logging
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)


def sim_hops_per_second(hosts: int = 100, packets: int = 100) -> tuple[float, int]:
    from p2plab import sim
    from p2plab.topology import Topology

    t = Topology("echo")
    for h in range(hosts):
        t.add_nat(f"n{h}", f"203.0.113.{h + 1}", f"10.0.{h}.0/24", "port-restricted-cone")
        t.add_host(f"h{h}", f"10.0.{h}.10", behind=f"n{h}", latency=0.001)
    t.add_server("server", "192.0.2.1")
    net = sim.Network.build(t, seed=1)
    srv = net.host("server").udp_socket(7)
    srv.on_datagram = lambda data, addr: srv.sendto(data, addr)
    for h in range(hosts):
        sock = net.host(f"h{h}").udp_socket(5000)
        for i in range(packets):
            net.after(i * 0.01, sock.sendto, b"x" * 64, ("192.0.2.1", 7))
    start = time.process_time()
    net.run()
    elapsed = time.process_time() - start
    return net.hops / elapsed, net.hops


def scapy_hops_per_second(hops: int = 3000) -> float:
    from scapy.layers.inet import IP, UDP
    from scapy.packet import Raw

    start = time.process_time()
    for _ in range(hops):
        bytes(IP(src="10.0.0.10", dst="192.0.2.1") / UDP(sport=5000, dport=7) / Raw(b"x" * 64))
    return hops / (time.process_time() - start)


def population_seconds() -> tuple[float, float, str]:
    from p2plab.population import run_population

    w, c = time.perf_counter(), time.process_time()
    result = run_population(1000, fanout=10, seed=0)
    return time.process_time() - c, time.perf_counter() - w, str(result)


def main() -> None:
    sim_rate, hops = sim_hops_per_second()
    scapy_rate = scapy_hops_per_second()
    pop_cpu, pop_wall, pop_text = population_seconds()
    print(json.dumps({
        "sim_hops_per_s": round(sim_rate), "sim_hops": hops, "scapy_hops_per_s": round(scapy_rate),
        "ratio": round(sim_rate / scapy_rate, 1), "ratio_target": 50,
        "population_s": round(pop_cpu, 2), "population_wall_s": round(pop_wall, 2), "population_target_s": 5,
        "population": pop_text,
    }))


if __name__ == "__main__":
    main()
