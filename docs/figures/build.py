"""Write the six figures that docs/figures/{before,after}/ show, as standalone HTML pages.

Run from a checkout: ``PYTHONPATH=helpers python docs/figures/build.py OUTDIR``; then
``python docs/figures/shoot.py OUTDIR`` takes the screenshots in headless chromium.
The scenarios are the lessons' own (seeded), so the pictures match what the notebooks draw.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path


def turn_chat():
    """Notebook 09's relayed chat: Allocate (401, then success), permission, Send/Data, channel."""
    from p2plab import sim, topology
    from p2plab.stun.client import StunClient
    from p2plab.stun.server import StunServer
    from p2plab.turn import TurnClient, TurnServer

    topo = topology.punch("symmetric", "symmetric")
    topo.add_host("mallory", "203.0.113.66")
    net = sim.Network.build(topo, seed=0)
    net.run_protocol("server", StunServer(), 3478)
    net.run_protocol("server", TurnServer({"alice": "alice-secret"}, realm="p2plab", rng=random.Random(0)), 3479)
    alice = TurnClient(("192.0.2.1", 3479), "alice", "alice-secret", rng=random.Random(1))
    runner = net.run_protocol("alice", alice, 5000)
    bob_stun = StunClient(("192.0.2.1", 3478), rng=random.Random(2))
    net.run_protocol("bob", bob_stun, 5001)
    bob = net.host("bob").udp_socket(5000)

    def tell(method, *args):
        alice.now = net.now
        method(*args)
        runner.poke()

    net.run(until=0.2)
    tell(alice.create_permission, bob_stun.mapped)
    net.run(until=0.5)
    bob.sendto(b"hello alice, it's bob", alice.relayed)
    net.run(until=1.0)
    seen = [e for e in runner.events if e.kind == "data"][0].peer
    tell(alice.send_to, b"hi bob! loud and clear", seen)
    net.run(until=1.5)
    tell(alice.channel_bind, seen)
    net.run(until=2.0)
    tell(alice.send_to, b"hi bob! loud and clear", seen)
    bob.sendto(b"hello alice, it's bob", alice.relayed)
    net.run(until=2.5)
    return net.trace


def figures() -> dict:
    os.environ["P2PLAB_WORLD"] = "recorded"
    from p2plab import viz
    from p2plab.ice import run_ice
    from p2plab.matrix import run_matrix
    from p2plab.punch import run_punch
    from p2plab.recorded import real_run

    easy = run_ice("port-restricted-cone", "port-restricted-cone", seed=0)
    return {
        "1-stun-recorded": viz.ladder(real_run("stun").trace, max_rows=120),
        "2-punch-symmetric": viz.ladder(run_punch("symmetric", "port-restricted-cone", seed=0).trace, max_rows=120,
                                        title="Punch: symmetric x port-restricted cone"),
        "3-turn-relay": viz.ladder(turn_chat(), title="A relayed chat between two symmetric NATs"),
        "4-ice": viz.ladder(easy.trace, title="ICE between two port-restricted cone NATs"),
        "5-ice-pairs": viz.ice_pairs_table(easy.pairs("alice"),
                                           title="Alice's candidate pairs: port-restricted cone x port-restricted cone"),
        "6-punch-matrix": viz.punch_heatmap(run_matrix(seed=0)),
    }


def main(outdir: str) -> None:
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "plotly.min.js").write_text(get_plotlyjs())
    for name, fig in figures().items():
        div = pio.to_html(fig, include_plotlyjs=False, full_html=False, config={"responsive": True},
                          div_id=f"fig-{name}")
        (out / f"{name}.html").write_text(
            '<!doctype html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script></head>'
            f'<body style="margin:8px;font-family:sans-serif">{div}</body></html>')


if __name__ == "__main__":
    main(sys.argv[1])
