"""``python -m p2plab lab up|exec|down|list``: the real Linux lab from a terminal.

    python -m p2plab lab up punch --nat-a port-restricted-cone --nat-b symmetric
    python -m p2plab lab exec alice -- ip addr
    python -m p2plab lab down            # the labs 'lab up' started (and any whose owner died)
    python -m p2plab lab down --all      # every p2plab namespace on this machine
"""

from __future__ import annotations

import argparse
import inspect
import subprocess
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("lab", help="the real Linux lab (network namespaces): up, exec, down, list",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="lab_command", metavar="ACTION")
    from ..topology import SCENARIOS

    up = sub.add_parser("up", help="build a scenario and leave it running")
    up.add_argument("scenario", choices=sorted(SCENARIOS))
    up.add_argument("--nat-a", default=None, help="preset of the first NAT (nat-a), e.g. symmetric")
    up.add_argument("--nat-b", default=None, help="preset of bob's NAT (nat-b)")
    up.add_argument("--approximate", action="store_true", help="build the nearest Linux NAT for inexpressible presets")
    up.set_defaults(func=cmd_up)

    ex = sub.add_parser("exec", help="run a command on a host of the running lab: lab exec HOST -- CMD ...")
    ex.add_argument("host")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.add_argument("--lab", default=None, help="lab id (default: the newest lab started with 'lab up')")
    ex.set_defaults(func=cmd_exec)

    down = sub.add_parser("down", help="remove labs started with 'lab up' (and leftovers)")
    down.add_argument("--all", action="store_true", help="remove every p2plab lab, whoever owns it")
    down.add_argument("--lab", default=None, help="remove only this lab id")
    down.set_defaults(func=cmd_down)

    ls = sub.add_parser("list", help="the labs on this machine")
    ls.set_defaults(func=cmd_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _scenario(name: str, nat_a: str | None, nat_b: str | None):
    from ..topology import SCENARIOS

    factory = SCENARIOS[name]
    params = list(inspect.signature(factory).parameters)
    kwargs = {}
    first = next((x for x in ("nat_a", "nat", "home_nat") if x in params), None)
    if nat_a is not None:
        if first is None:
            raise SystemExit(f"scenario {name!r} has no NAT for --nat-a")
        kwargs[first] = nat_a
    if nat_b is not None:
        if "nat_b" not in params:
            raise SystemExit(f"scenario {name!r} has no second NAT for --nat-b")
        kwargs["nat_b"] = nat_b
    return factory(**kwargs)


def cmd_up(args) -> int:
    from ..errors import LabUnavailableError
    from . import rootless
    from .lab import Lab

    if rootless.wanted():
        raise LabUnavailableError(
            "'lab up' leaves a lab running after the command ends, which needs root: without root a lab lives "
            "inside a user namespace of the Python process that made it, and ends with it. Use p2plab.netns.Lab "
            "in a notebook or a script instead (every lesson does), or run 'lab up' as root if you have it.")
    topo = _scenario(args.scenario, args.nat_a, args.nat_b)
    lab = Lab(topo, keep=True, approximate=args.approximate)
    lab.start()
    lab.detach()
    print(lab.describe())
    print()
    print(lab.addresses().to_string(index=False))
    print(f"\nlab {lab.id} is up ({lab.timings.get('up', 0):.2f} s). Try:\n"
          f"  python -m p2plab lab exec alice -- ip addr\n"
          f"  python -m p2plab lab down")
    return 0


def _kept_labs() -> dict[str, dict]:
    from . import cleanup

    recs = cleanup.read_records()
    return {k: v for k, v in recs.items() if v.get("keep") and cleanup.lab_namespaces(k)}


def cmd_exec(args) -> int:
    from ..errors import LabUnavailableError

    labs = _kept_labs()
    if args.lab:
        if args.lab not in labs:
            raise LabUnavailableError(f"no running lab {args.lab!r}; running: {', '.join(labs) or 'none'}")
        rec = labs[args.lab]
    elif labs:
        rec = max(labs.values(), key=lambda r: r.get("created", 0))
    else:
        raise LabUnavailableError("no lab is running: start one with 'python -m p2plab lab up punch'")
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise LabUnavailableError("say what to run: python -m p2plab lab exec alice -- ip addr")
    nodes = rec.get("nodes", {})
    if args.host not in nodes:
        raise LabUnavailableError(f"lab {rec['id']} has no host {args.host!r}; hosts: {', '.join(nodes)}")
    from .. import systools
    from . import rootless

    return subprocess.call(rootless.wrap(["ip", "netns", "exec", nodes[args.host], *systools.resolve(list(cmd))]))


def cmd_down(args) -> int:
    from . import cleanup

    if args.all:
        removed = cleanup.sweep(everything=True)
    else:
        labs = _kept_labs()
        targets = [args.lab] if args.lab else list(labs)
        records = cleanup.read_records()
        removed = []
        for lab_id in targets:
            if lab_id in records or cleanup.lab_namespaces(lab_id):
                cleanup.remove_lab(lab_id, records.get(lab_id))
                removed.append(lab_id)
        removed += cleanup.sweep()
    print(f"removed {len(removed)} lab(s): {', '.join(removed)}" if removed else "no labs to remove")
    return 0


def cmd_list(args) -> int:
    from . import cleanup

    recs = cleanup.read_records()
    if not recs and not cleanup.lab_namespaces():
        print("no labs")
        return 0
    for lab_id, rec in recs.items():
        alive = "kept" if rec.get("keep") else ("owner alive" if cleanup.owner_alive(rec) else "owner gone")
        print(f"{lab_id}  {rec.get('topology', '?'):10s} {len(cleanup.lab_namespaces(lab_id))} namespaces  {alive}")
    orphans = {n.split("-")[1] for n in cleanup.lab_namespaces()} - set(recs)
    for lab_id in sorted(orphans):
        print(f"{lab_id}  (no record: left behind)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
