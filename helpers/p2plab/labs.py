"""Generate the learners' ``labs/`` notebooks from the instructors' ``solutions/``.

``solutions/`` is the single source. For each solution notebook this makes the lab notebook:

* code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (nbgrader's markers and stub),
* ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` regions (tests that only grading runs) are
  removed, as ``nbgrader generate_assignment`` removes them,
* cells tagged ``solution`` are dropped,
* outputs, execution counts and run timestamps are cleared, cell ids are kept (stable,
  nbgrader-compatible).

Instructor notes and common mistakes live in ``docs/labs-instructor-notes.md`` only: the build refuses
a solution notebook with an instructor-only cell (see :func:`instructor_only`), so none can reach
``labs/``, an nbgrader release or the website.

``python -m p2plab.labs build`` writes ``labs/``; ``python -m p2plab.labs build --check`` exits 1
when ``labs/`` differs from what it would write (``make test`` runs it).
``python -m p2plab.labs nbgrader DIR`` writes an nbgrader course directory (``p2plab.classroom``).
``python -m p2plab.labs links`` makes the README's Binder badge and docs/jupyterhub.md use the repository
set in ``course.toml`` (``p2plab.repository``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)", re.M | re.S)
_HIDDEN = re.compile(r"\n?^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*$", re.M | re.S)

#: What marks instructor-only content in a notebook: a cell tagged ``instructor``, a heading
#: "Instructor notes" or the words "Common mistakes". Such text belongs in docs/labs-instructor-notes.md.
INSTRUCTOR_TAG = "instructor"
_INSTRUCTOR_TEXT = re.compile(r"^#+[ \t]*Instructor notes|Common mistakes", re.M | re.I)


def strip_solution(source: str) -> str:
    """Replace each solution region by an indented stub."""

    def repl(m: re.Match) -> str:
        indent = m.group(1)
        return "\n".join(indent + line for line in STUB.splitlines()) + m.group(2)

    out = _REGION.sub(repl, source)
    if BEGIN in out or END in out:
        raise ValueError("unbalanced ### BEGIN SOLUTION / ### END SOLUTION markers")
    return out


def strip_hidden_tests(source: str) -> str:
    """Remove each ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region (and its line break),
    line for line as nbgrader's ClearHiddenTests does."""
    out = _HIDDEN.sub("", source)
    if "### BEGIN HIDDEN TESTS" in out or "### END HIDDEN TESTS" in out:
        raise ValueError("unbalanced ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS markers")
    return out


def instructor_only(cell) -> bool:
    """True for a cell that only instructors may see (tagged ``instructor``, an "Instructor notes"
    heading, or "Common mistakes")."""
    tags = cell.get("metadata", {}).get("tags", [])
    return INSTRUCTOR_TAG in tags or bool(_INSTRUCTOR_TEXT.search(cell.get("source", "")))


def make_lab(solution_nb):
    """The lab version of a solution notebook (an nbformat NotebookNode)."""
    import copy

    nb = copy.deepcopy(solution_nb)
    cells = []
    for cell in nb.cells:
        if instructor_only(cell):
            raise ValueError(f"cell {cell.get('id')} holds instructor notes or common mistakes: move them to "
                             "docs/labs-instructor-notes.md (notebooks reach students; docs/ is for instructors)")
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        cell.get("metadata", {}).pop("execution", None)  # run timestamps of the solution: noise in a lab
        if cell.cell_type == "code":
            cell.source = strip_hidden_tests(strip_solution(cell.source))
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
    g = sub.add_parser("nbgrader", help="write an nbgrader course directory (source/ and nbgrader_config.py)")
    g.add_argument("dir", help="the course directory to create (must not contain source/ yet)")
    g.add_argument("--root", default=".", help="the course repository (default: current folder)")
    k = sub.add_parser("links", help="make the README's Binder badge and docs/jupyterhub.md use course.toml's "
                                     "repository")
    k.add_argument("--check", action="store_true", help="only list what disagrees (exit 1 if anything does)")
    k.add_argument("--root", default=".", help="the course repository (default: current folder)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.cmd == "links":
        from . import repository

        try:
            if args.check:
                problems = repository.check(root)
                for p in problems:
                    print(p, file=sys.stderr)
                if problems:
                    print("run: python -m p2plab.labs links", file=sys.stderr)
                    return 1
                print(f"README.md and {repository.JUPYTERHUB} use {repository.settings(root).url} "
                      f"({repository.SETTINGS})")
                return 0
            changed = repository.rewrite(root)
        except (FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("rewrote: " + (", ".join(changed) if changed else "nothing (already in agreement)"))
        return 0
    if args.cmd == "nbgrader":
        from .classroom import write_course

        try:
            written = write_course(root, Path(args.dir))
        except (FileExistsError, FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.dir}/nbgrader_config.py and {len(written)} assignments in {args.dir}/source/: "
              + ", ".join(p.parent.name for p in written))
        print(f"next: cd {args.dir} && nbgrader generate_assignment \"*\"   (docs/instructor-guide.md, 'Grading')")
        return 0
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
