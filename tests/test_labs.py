"""The labs: generated from solutions/ and in sync, no solution text leaks, no outputs, and every
lab notebook runs top to bottom with its stubs in place (each check says "not started yet")."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from p2plab import labs

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
REGION = re.compile(r"### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.M | re.S)


def _lab(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "labs" / path.name, as_version=4)


def test_there_are_labs():
    assert len(SOLUTIONS) >= 5, [p.name for p in SOLUTIONS]


def test_labs_in_sync_with_solutions():
    differ = labs.build(ROOT, check=True)
    assert differ == [], f"labs/ is out of date ({differ}); run: python -m p2plab.labs build"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_no_solution_leaks_and_no_outputs(path):
    sol = nbformat.read(path, as_version=4)
    lab = _lab(path)
    lab_code = "\n".join(c.source for c in lab.cells if c.cell_type == "code")
    regions = [m.group(1) for c in sol.cells if c.cell_type == "code" for m in REGION.finditer(c.source)]
    assert regions, f"{path.name} has no ### BEGIN SOLUTION regions"
    for region in regions:
        for line in region.splitlines():
            line = line.strip()
            if len(line) > 12 and not line.startswith("#") and line not in ("return None", "else:"):
                assert line not in lab_code, f"solution line leaks into labs/{path.name}: {line!r}"
    tagged = [c.source for c in sol.cells if "solution" in c.get("metadata", {}).get("tags", [])]
    for src in tagged:
        assert src not in lab_code
    assert "### BEGIN SOLUTION" not in lab_code and "raise NotImplementedError()" in lab_code
    for c in lab.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"labs/{path.name} has outputs"
    assert lab.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_has_objectives_and_checks_and_its_notes_are_in_docs(path):
    sol = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in sol.cells)
    assert "Learning objectives" in text
    assert re.search(r"checks\.|_checks?\.|\.check_", text)
    # instructor notes and common mistakes: in docs/ only (labs.instructor_only is the marker)
    assert not [c.id for c in sol.cells if labs.instructor_only(c)], f"{path.name} has instructor-only cells"
    number = path.stem.split("-")[0]
    notes = (ROOT / "docs" / "labs-instructor-notes.md").read_text()
    section = re.search(rf"^### {number} .*?(?=^### |\Z)", notes, re.M | re.S)
    assert section and "Common mistakes" in section.group(0), f"docs/labs-instructor-notes.md: no section for {number}"


def test_instructor_only_cells_never_reach_students():
    """labs/ (and so nbgrader releases and the site) and the lessons carry no instructor-only cell."""
    for path in sorted((ROOT / "labs").glob("*.ipynb")) + sorted((ROOT / "course").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        leaked = [c.id for c in nb.cells if labs.instructor_only(c)]
        assert not leaked, f"{path.relative_to(ROOT)}: instructor-only cells {leaked}: move them to docs/"


def test_the_build_refuses_instructor_notes_in_a_solution():
    nb = nbformat.read(SOLUTIONS[0], as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("## Instructor notes\n\n* **Time:** 30 minutes."))
    with pytest.raises(ValueError, match="docs/labs-instructor-notes.md"):
        labs.make_lab(nb)
    nb.cells[-1] = nbformat.v4.new_markdown_cell("Discuss this.", metadata={"tags": ["instructor"]})
    with pytest.raises(ValueError, match="instructor notes"):
        labs.make_lab(nb)


def test_hidden_tests_are_removed_as_nbgrader_removes_them():
    src = "result = x.check_y(f)\n### BEGIN HIDDEN TESTS\nassert result.passed, result.message\n### END HIDDEN TESTS"
    assert labs.strip_hidden_tests(src) == "result = x.check_y(f)"
    assert labs.strip_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc") == "a\nc"
    with pytest.raises(ValueError, match="unbalanced"):
        labs.strip_hidden_tests("a\n### BEGIN HIDDEN TESTS\nb")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_lab_runs_top_to_bottom_with_stubs(path, tmp_path):
    from nbclient import NotebookClient

    copy = tmp_path / path.name
    shutil.copy(ROOT / "labs" / path.name, copy)
    nb = nbformat.read(copy, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    text = "".join(o.get("text", "") for o in outputs)
    assert "not started yet" in text
    assert "Traceback" not in text and "✔ check_" not in text
