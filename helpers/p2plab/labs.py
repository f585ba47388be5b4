"""Generate the learners' ``labs/`` notebooks from the instructors' ``solutions/``.

``solutions/`` is the single source. For each solution notebook this makes the lab notebook:

* code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (nbgrader's markers and stub),
* cells tagged ``solution`` are dropped,
* outputs, execution counts and run timestamps are cleared, cell ids are kept (stable,
  nbgrader-compatible).

``python -m p2plab.labs build`` writes ``labs/``; ``python -m p2plab.labs build --check`` exits 1
when ``labs/`` differs from what it would write (``make test`` runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.M | re.S)


def strip_solution(source: str) -> str:
    """Replace each solution region by an indented stub."""

    def repl(m: re.Match) -> str:
        indent = m.group(1)
        return "\n".join(indent + line for line in STUB.splitlines()) + m.group(2)

    out = _REGION.sub(repl, source)
    if BEGIN in out or END in out:
        raise ValueError("unbalanced ### BEGIN SOLUTION / ### END SOLUTION markers")
    return out


def make_lab(solution_nb):
    """The lab version of a solution notebook (an nbformat NotebookNode)."""
    import copy

    nb = copy.deepcopy(solution_nb)
    cells = []
    for cell in nb.cells:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        cell.get("metadata", {}).pop("execution", None)  # run timestamps of the solution: noise in a lab
        if cell.cell_type == "code":
            cell.source = strip_solution(cell.source)
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    return nb


def _render(nb) -> str:
    import nbformat

    return nbformat.writes(nb) + "\n"


def build(root: Path, check: bool = False) -> list[str]:
    """Write (or, with check, compare) labs/ from solutions/. Returns the names that differ."""
    import nbformat

    src, dst = root / "solutions", root / "labs"
    dst.mkdir(exist_ok=True)
    differ = []
    wanted = set()
    for path in sorted(src.glob("*.ipynb")):
        wanted.add(path.name)
        text = _render(make_lab(nbformat.read(path, as_version=4)))
        target = dst / path.name
        if not target.exists() or target.read_text() != text:
            differ.append(path.name)
            if not check:
                target.write_text(text)
    for extra in sorted(dst.glob("*.ipynb")):
        if extra.name not in wanted:
            differ.append(extra.name + " (no solution notebook)")
            if not check:
                extra.unlink()
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2plab.labs")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="generate labs/ from solutions/")
    b.add_argument("--check", action="store_true", help="exit 1 if labs/ is out of date")
    b.add_argument("--root", default=".", help="the course repository (default: current folder)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    differ = build(root, check=args.check)
    if args.check:
        if differ:
            print("labs/ is out of date with solutions/: " + ", ".join(differ), file=sys.stderr)
            print("run: python -m p2plab.labs build", file=sys.stderr)
            return 1
        print(f"labs/ is in sync with solutions/ ({len(list((root / 'solutions').glob('*.ipynb')))} notebooks)")
        return 0
    print("rebuilt: " + (", ".join(differ) if differ else "nothing (already in sync)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
