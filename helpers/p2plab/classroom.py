"""An nbgrader course directory generated from ``solutions/``: ``python -m p2plab.labs nbgrader DIR``.

The labs already use nbgrader's conventions (``### BEGIN SOLUTION`` / ``### END SOLUTION`` and its
stub), so a course for `nbgrader <https://nbgrader.readthedocs.io>`_ needs only cell metadata:

* a code cell with a solution region is an *autograded answer* (``solution: true``);
* a code cell that runs a self-check (``result = <lab>.check_xxx(...)``) is an *autograder test*
  worth the points in :data:`POINTS`. Its hidden test asserts that every check in the cell passed,
  with the check's message as the assertion message, so nbgrader's feedback shows the hint
  (``AssertionError: your punches went to ...``), not a bare ``AssertionError``;
* a code cell with its own ``### BEGIN HIDDEN TESTS`` region in ``solutions/`` (a lab's extra tests,
  run only when grading) is an autograder test too;
* markdown cells (the instructions) are read-only.

Cells tagged ``solution`` (the answers to "predict, then run" questions) are left out, as in
``labs/``. Hidden tests are removed by ``nbgrader generate_assignment``, so the notebook nbgrader
releases is ``labs/<lab>.ipynb`` plus nbgrader's metadata; the learner sees the same friendly check,
which prints and never raises, and the assertion only runs when ``nbgrader autograde`` puts the
hidden tests back.

Grade ids are the notebooks' cell ids (``lab04-06``), which are stable.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

COURSE_ID = "through-the-nat"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SCHEMA_VERSION = 3

#: Points of each autograder test cell, by lab and cell id. Every lab is worth 10 points. A check that
#: asks for the whole exercise is worth most; a lab whose exercise has one check also gives points
#: for a weaker hidden test (the code works in the simulator), so a nearly right answer gets partial credit.
POINTS: dict[str, dict[str, int]] = {
    "01-sockets": {"lab01-10": 4, "lab01-13": 6},
    "02-nat-table": {"lab02-09": 7, "lab02-14": 3},
    "03-stun-by-hand": {"lab03-04": 3, "lab03-09": 4, "lab03-16": 3},
    "04-hole-punching": {"lab04-06": 7, "lab04-08": 3},
    "05-port-prediction": {"lab05-04": 3, "lab05-11": 3, "lab05-15": 4},
    "06-turn-relay": {"lab06-06": 3, "lab06-16": 5, "lab06-21": 2},
    "07-ice": {"lab07-08": 2, "lab07-12": 3, "lab07-17": 3, "lab07-26": 2},
    "08-capstone": {"lab08-09": 3, "lab08-10": 7},
    "09-around-the-nat": {"lab09-04": 3, "lab09-13": 3, "lab09-23": 2, "lab09-30": 2},
    "10-change-and-trust": {"lab10-10": 4, "lab10-17": 2, "lab10-21": 4},
}
POINTS_PER_LAB = 10

_CHECK = re.compile(r"^(\w+)\s*=\s*\w+\.check_\w+\(", re.M)
_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION", re.M)

NBGRADER_CONFIG = '''\
# nbgrader configuration for "Through the NAT", written by `python -m p2plab.labs nbgrader`.
# Run nbgrader's commands in this folder (see docs/instructor-guide.md, "Grading").
c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = "{course_id}"
# The same stub as labs/ (python -m p2plab.labs build), so releases equal labs/.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
# A lab notebook runs in seconds; a cell that takes longer than this is stuck.
c.Execute.timeout = 300
'''


def _meta(cell: Any, *, grade: bool, solution: bool, locked: bool, points: int | None = None) -> None:
    meta = {"grade": grade, "grade_id": cell.id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta


def check_assertion(source: str) -> str:
    """The hidden test for a check cell: every ``result = x.check_y(...)`` in it must have passed."""
    names = _CHECK.findall(source)
    if not names:
        raise ValueError(f"not a check cell (no `result = <lab>.check_xxx(...)` line): {source[:80]!r}")
    lines = [BEGIN_HIDDEN]
    for name in names:
        lines.append(f"assert {name}.passed, {name}.message")
    lines.append(END_HIDDEN)
    return "\n".join(lines)


def source_notebook(solution_nb: Any, lab: str) -> Any:
    """The nbgrader source notebook of one lab (an nbformat NotebookNode), from its solution notebook."""
    if lab not in POINTS:
        raise ValueError(f"no points for lab {lab!r}: add it to POINTS in p2plab/classroom.py")
    points = dict(POINTS[lab])
    nb = copy.deepcopy(solution_nb)
    cells = []
    for cell in nb.cells:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        cell.get("metadata", {}).pop("execution", None)
        if cell.cell_type == "markdown":
            _meta(cell, grade=False, solution=False, locked=True)
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            has_solution = bool(_SOLUTION.search(cell.source))
            is_check = bool(_CHECK.search(cell.source))
            has_hidden = BEGIN_HIDDEN in cell.source
            if has_solution and (is_check or has_hidden):
                raise ValueError(f"{lab}, cell {cell.id}: a cell is either an answer or a test; split it")
            if has_solution:
                _meta(cell, grade=False, solution=True, locked=False)
            elif is_check or has_hidden:
                if cell.id not in points:
                    raise ValueError(f"{lab}, cell {cell.id} is a test but has no points: add it to POINTS "
                                     "in p2plab/classroom.py")
                if is_check:
                    cell.source = cell.source.rstrip("\n") + "\n" + check_assertion(cell.source)
                _meta(cell, grade=True, solution=False, locked=True, points=points.pop(cell.id))
        cells.append(cell)
    if points:
        raise ValueError(f"{lab}: POINTS names cells that are not tests: {sorted(points)}")
    nb.cells = cells
    return nb


def lab_names(root: Path) -> list[str]:
    """The labs, from the solution notebooks' names (``01-sockets``, ...)."""
    return [p.stem for p in sorted((root / "solutions").glob("*.ipynb"))]


def write_course(root: Path, out: Path) -> list[Path]:
    """Write an nbgrader course directory to ``out`` (``nbgrader_config.py`` and ``source/<lab>/<lab>.ipynb``).

    Refuses to overwrite an existing ``source/`` folder, which may hold an instructor's own edits.
    Returns the notebooks written.
    """
    import nbformat

    root, out = Path(root), Path(out)
    if (out / "source").exists():
        raise FileExistsError(f"{out / 'source'} exists already; give an empty or new folder (nbgrader's "
                              "gradebook and submissions live next to it, so nothing is overwritten)")
    labs = lab_names(root)
    if not labs:
        raise FileNotFoundError(f"no solution notebooks in {root / 'solutions'}: give --root, the course repository")
    written = []
    for lab in labs:
        nb = source_notebook(nbformat.read(root / "solutions" / f"{lab}.ipynb", as_version=4), lab)
        target = out / "source" / lab / f"{lab}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(NBGRADER_CONFIG.format(course_id=COURSE_ID))
    return written


def release_matches_lab(release_nb: Any, lab_nb: Any) -> list[str]:
    """Differences between a notebook nbgrader released and ``labs/``, ignoring nbgrader's metadata
    (``nbgrader`` and the ``editable``/``deletable`` flags its LockCells sets). Empty when they agree."""
    def norm(nb: Any) -> list[tuple]:
        out = []
        for c in nb.cells:
            meta = {k: v for k, v in c.metadata.items() if k not in ("nbgrader", "editable", "deletable")}
            out.append((c.id, c.cell_type, c.source, meta, c.get("outputs", []), c.get("execution_count")))
        return out

    a, b = norm(release_nb), norm(lab_nb)
    diffs = [f"{x[0]}: {x[1:]!r} != {y[1:]!r}" for x, y in zip(a, b) if x != y]
    if len(a) != len(b):
        diffs.append(f"{len(a)} cells released, {len(b)} in labs/")
    return diffs


__all__ = ["POINTS", "POINTS_PER_LAB", "COURSE_ID", "source_notebook", "write_course", "check_assertion",
           "release_matches_lab", "lab_names"]
