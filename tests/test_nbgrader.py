"""Grading with real nbgrader: ``python -m p2plab.labs nbgrader DIR`` writes a course that nbgrader's own
commands release, autograde and give feedback on.

One course is built in a temporary folder for the whole module. For every lab, three submissions are
autograded: the worked solution (full marks), the unmodified release (zero, and nbgrader does not
crash) and one typical wrong answer from the lab's check tests (tests/test_checks_*.py): partial
credit, with the check's hint in the feedback HTML. The release itself must equal labs/ apart from
nbgrader's metadata.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from p2plab import classroom, labs

from conftest import missing

ROOT = Path(__file__).resolve().parents[1]
LABS = classroom.lab_names(ROOT)
MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[^\n]*\n", re.M)

# One typical wrong answer per lab: (answer cell, text in the solution, what the student wrote instead,
# a phrase of the hint the check gives, the test in tests/test_checks_*.py that has this mistake).
WRONG = {
    "01-sockets": ("lab01-09", "sock.sendto(data, addr)", "sock.sendto(data, (addr[0], 7))",
                   "the address each datagram came from", "test_echo_to_fixed_port_gets_hint"),
    "02-nat-table": ("lab02-08", "allowed = any(ip == remote[0] for ip, _ in contacted)",
                     "allowed = remote in contacted", "only ADDRESSES", "test_typical_mistakes_get_their_hints"),
    "03-stun-by-hand": ("lab03-03", "0x0001, 0, MAGIC_COOKIE", "0x0001, 20, MAGIC_COOKIE",
                        "counts only the bytes AFTER", "test_binding_request_mistakes"),
    "04-hole-punching": ("lab04-03",
                         "        if self.state != \"punching\":\n            return\n        self.state = \"connected\"\n"
                         "        self.connected = addr\n        self.cancel_timers()\n"
                         "        self.emit(\"connected\", endpoint=addr)\n",
                         "        if self.connected is None:\n            self.connected = addr\n"
                         "            self.emit(\"connected\", endpoint=addr)\n",
                         "kept punching after it was connected", "KeepsPunching"),
    "05-port-prediction": ("lab05-10", "    all_miss = 1.0\n", "    return n_open * n_probes / space\n",
                           "cannot pass 1", "test_typical_mistakes_get_their_hints"),
    "06-turn-relay": ("lab06-20", '"total_mbps": in_mbps + out_mbps', '"total_mbps": in_mbps',
                      "outbound", "test_bill_mistakes"),
    "07-ice": ("lab07-07", "2**8 * local_pref", "local_pref", "local preference is multiplied by 2^8",
               "test_priority_mistakes"),
    "08-capstone": ("lab08-08", 'if first(alice, "connected") and first(bob, "connected"):', "if False:",
                    "hole punching works for this pair", "always_relay"),
    "09-around-the-nat": ("lab09-12", "    if response[3] != 0:", "    if response[2] != 0:", "byte 3 of the response",
                          "test_verdict_mistakes"),
    "10-change-and-trust": ("lab10-20", "    if not peerauth.verify(", "    if False and not peerauth.verify(",
                            "A public key is public", "test_accept_reply_mistakes"),
}
STUDENTS = {"solution": "s-solution", "release": "s-release", "wrong": "s-wrong"}


def _nbgrader(course: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` from PATH when it creates the gradebook: the environment's bin comes first.
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=str(ROOT / "helpers") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "[ERROR]" not in proc.stderr and "| ERROR]" not in proc.stderr, proc.stderr[-3000:]
    return proc


def _answers(lab: str, wrong: bool) -> dict[str, str]:
    """The student's answer cells: the worked solution without its markers, or with one typical mistake."""
    sol = nbformat.read(ROOT / "solutions" / f"{lab}.ipynb", as_version=4)
    out = {c.id: MARKER.sub("", c.source) for c in sol.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source}
    if wrong:
        cell, old, new, _, _ = WRONG[lab]
        assert out[cell].count(old) == 1, f"{lab}: the wrong answer's text {old!r} is not in cell {cell} any more"
        out[cell] = out[cell].replace(old, new)
    return out


def _submit(course: Path, student: str, lab: str, answers: dict[str, str] | None) -> None:
    nb = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    for cell in nb.cells:
        if answers and cell.id in answers:
            cell.source = answers[cell.id]
    target = course / "submitted" / student / lab / f"{lab}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        missing("needs nbgrader (pip install -e '.[classroom]')")
    course = tmp_path_factory.mktemp("nbgrader-course")
    timings = {}
    t0 = time.perf_counter()
    assert labs.main(["nbgrader", str(course), "--root", str(ROOT)]) == 0
    _nbgrader(course, "generate_assignment", "*")
    timings["generate"] = time.perf_counter() - t0
    for lab in LABS:
        _submit(course, STUDENTS["solution"], lab, _answers(lab, wrong=False))
        _submit(course, STUDENTS["release"], lab, None)
        _submit(course, STUDENTS["wrong"], lab, _answers(lab, wrong=True))
    t0 = time.perf_counter()
    _nbgrader(course, "autograde", "*")
    timings["autograde"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _nbgrader(course, "generate_feedback", "*")
    timings["feedback"] = time.perf_counter() - t0
    _nbgrader(course, "export")
    print("nbgrader timings (s):", {k: round(v, 1) for k, v in timings.items()})
    return course


def _scores(course: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(student, lab) -> (score, max score), from the grades.csv that `nbgrader export` wrote."""
    with open(course / "grades.csv", newline="") as f:
        return {(r["student_id"], r["assignment"]): (float(r["score"]), float(r["max_score"]))
                for r in csv.DictReader(f)}


def _feedback_text(course: Path, student: str, lab: str) -> str:
    markup = (course / "feedback" / student / lab / f"{lab}.html").read_text()
    markup = re.sub(r"<(style|script)\b.*?</\1>", "", markup, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_every_lab_has_points_summing_to_ten():
    assert sorted(classroom.POINTS) == LABS
    for lab, cells in classroom.POINTS.items():
        assert sum(cells.values()) == classroom.POINTS_PER_LAB, lab
        assert len(cells) >= 2, f"{lab}: one test only, so no partial credit"


@pytest.mark.parametrize("lab", LABS)
def test_source_notebook_metadata(lab):
    src = classroom.source_notebook(nbformat.read(ROOT / "solutions" / f"{lab}.ipynb", as_version=4), lab)
    kinds = {"answer": [], "test": [], "read-only": []}
    for cell in src.cells:
        meta = cell.metadata.get("nbgrader")
        if cell.cell_type == "markdown":
            assert meta and meta["locked"] and not meta["grade"] and not meta["solution"]
            kinds["read-only"].append(cell.id)
        elif meta and meta["solution"]:
            assert "### BEGIN SOLUTION" in cell.source and not meta["grade"] and meta["grade_id"] == cell.id
            kinds["answer"].append(cell.id)
        elif meta and meta["grade"]:
            assert meta["locked"] and meta["points"] == classroom.POINTS[lab][cell.id]
            assert "### BEGIN HIDDEN TESTS" in cell.source and "assert " in cell.source
            kinds["test"].append(cell.id)
    assert kinds["answer"] and kinds["test"] and kinds["read-only"]
    assert sorted(kinds["test"]) == sorted(classroom.POINTS[lab])


def test_refuses_to_overwrite_a_course(tmp_path, capsys):
    (tmp_path / "source").mkdir()
    assert labs.main(["nbgrader", str(tmp_path), "--root", str(ROOT)]) == 2
    assert "exists already" in capsys.readouterr().err


def test_a_check_cell_without_points_is_refused():
    nb = nbformat.read(ROOT / "solutions" / "01-sockets.ipynb", as_version=4)
    saved = dict(classroom.POINTS["01-sockets"])
    try:
        del classroom.POINTS["01-sockets"]["lab01-13"]
        with pytest.raises(ValueError, match="lab01-13 is a test but has no points"):
            classroom.source_notebook(nb, "01-sockets")
    finally:
        classroom.POINTS["01-sockets"] = saved


@pytest.mark.parametrize("lab", LABS)
def test_release_is_the_lab(course, lab):
    release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
    lab_nb = nbformat.read(ROOT / "labs" / f"{lab}.ipynb", as_version=4)
    assert classroom.release_matches_lab(release, lab_nb) == []
    assert release.metadata == lab_nb.metadata
    text = json.dumps(release.dict())
    assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    assert not [c.id for c in release.cells if labs.instructor_only(c)]


@pytest.mark.parametrize("lab", LABS)
def test_autograde_solution_release_and_typical_mistake(course, lab):
    scores = _scores(course)
    got, full = scores[(STUDENTS["solution"], lab)]
    assert full == classroom.POINTS_PER_LAB
    assert got == full, f"{lab}: the worked solution got {got}/{full}"
    got, _ = scores[(STUDENTS["release"], lab)]
    assert got == 0, f"{lab}: the unmodified release got {got}/{full}"
    got, _ = scores[(STUDENTS["wrong"], lab)]
    assert 0 < got < full, f"{lab}: the typical mistake ({WRONG[lab][4]}) got {got}/{full}, not partial credit"


@pytest.mark.parametrize("lab", LABS)
def test_feedback_shows_the_hint(course, lab):
    text = _feedback_text(course, STUDENTS["wrong"], lab)
    hint = WRONG[lab][3]
    assert re.search(r"AssertionError: [^\n]*" + re.escape(hint), text), \
        f"{lab}: the feedback does not show the hint {hint!r} as the failed test's message"
    solution = _feedback_text(course, STUDENTS["solution"], lab)
    assert "AssertionError" not in solution and "Traceback" not in solution
    release = _feedback_text(course, STUDENTS["release"], lab)
    assert "not started yet" in release
