"""Re-capture tests/data/miniupnpd-2.3.1/: the bytes Debian's miniupnpd speaks over UPnP IGD in the lab.

    sudo PYTHONPATH=helpers python tools/capture_upnp_fixtures.py

Two runs on lab router nat-a: as configured (its external address is reserved, so it refuses:
GetExternalIPAddress answers '', AddPortMapping UPnP error 501) and with ``ext_perform_stun`` against
the lab's STUN server, when it grants: AddPortMapping succeeds; a mapping to
another LAN address gets 718 (secure mode), a port below 1024 gets 606 (its permission rules), and
deleting a mapping that was never made is answered with success (not 714 NoSuchEntryInArray).
tests/test_upnp.py parses these files; tests/test_upnp_netns.py checks a fresh run still says the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

from p2plab import topology
from p2plab.netns import Lab
from p2plab.portmap import igd, upnp
from p2plab.portmap import lab as pml

OUT = Path(__file__).resolve().parents[1] / "tests/data/miniupnpd-2.3.1"
LAN, GW, ALICE = "192.168.1.0/24", "192.168.1.1", topology.ALICE_IP


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    refused = [("GetExternalIPAddress", []), ("AddPortMapping", upnp.add_port_mapping_args(5000, "UDP", 5000, ALICE))]
    with Lab(topology.punch("symmetric", "symmetric")) as lab:
        d = pml.start_miniupnpd(lab, "nat-a", upnp=True)
        t = lab.run_python("alice", igd.transcript, ALICE, LAN, GW, refused)
        d.log()
    (OUT / "ssdp-response.txt").write_bytes(t["ssdp"][0][1])
    (OUT / "rootDesc.xml").write_bytes(t["description"])
    (OUT / "GetExternalIPAddress-reserved.xml").write_bytes(t["calls"][0]["response"])
    (OUT / "AddPortMapping-501.xml").write_bytes(t["calls"][1]["response"])
    granted = [("GetExternalIPAddress", []), ("AddPortMapping", upnp.add_port_mapping_args(5000, "UDP", 5000, ALICE)),
               ("AddPortMapping", upnp.add_port_mapping_args(5001, "UDP", 5001, "192.168.1.99")),
               ("AddPortMapping", upnp.add_port_mapping_args(80, "TCP", 8080, ALICE)),
               ("DeletePortMapping", upnp.delete_port_mapping_args(5000, "UDP")),
               ("DeletePortMapping", upnp.delete_port_mapping_args(6001, "UDP"))]
    with Lab(topology.punch("symmetric", "symmetric")) as lab:
        stun, addr = pml.start_stun(lab)
        d = pml.start_miniupnpd(lab, "nat-a", upnp=True, stun=addr)
        t = lab.run_python("alice", igd.transcript, ALICE, LAN, GW, granted)
        d.log()
    names = ["GetExternalIPAddress", "AddPortMapping-ok", "AddPortMapping-718", "AddPortMapping-606",
             "DeletePortMapping-ok", "DeletePortMapping-unknown"]
    for name, call in zip(names, t["calls"]):
        (OUT / f"{name}.xml").write_bytes(call["response"])
    (OUT / "AddPortMapping-request.xml").write_bytes(t["calls"][1]["request"])
    for p in sorted(OUT.iterdir()):
        print(p.name, p.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
