"""``python -m p2plab COMMAND``: the course's command-line tools.

Each command lives in its own module, which defines ``register(subparsers)``; the module is
imported only when the command list is built, and its heavy imports happen inside the handler.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import P2PLabError

# modules that define register(subparsers) -> adds one or more commands
COMMAND_MODULES = [
    "p2plab.doctor",
    "p2plab.matrix",
    "p2plab.stun.cli",
    "p2plab.turn.cli",
    "p2plab.netns.cli",
    "p2plab.viz.cli",
    "p2plab.recorded",
    "p2plab.around_cli",
    "p2plab.webrtc.cli",
    "p2plab.scenarios.cli",
    "p2plab.ice.cli",
    "p2plab.names_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m p2plab", description="Through the NAT: p2plab tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("p2plab"):
                continue  # that part of the package is not installed/written yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except P2PLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
