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
def test_solution_has_objectives_checks_and_instructor_notes(path):
    sol = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in sol.cells)
    assert "Learning objectives" in text
    assert "Instructor notes" in text and "Time:" in text and "Common mistakes" in text
    assert re.search(r"checks\.|_checks?\.|\.check_", text)


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
