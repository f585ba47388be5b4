"""The course's foundations: one source of truth for dependencies, notebooks in the right state,
the two commands, and a light ``import p2plab``."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("scapy", "pandas", "plotly")


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement like 'scapy>=2.6,<2.9'."""
    name = re.split(r"[\s<>=!~;\[@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _notebooks(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).glob("*.ipynb"))


# ---------------------------------------------------------------------------- environment.yml
def test_environment_yml_structure():
    env = _environment()
    assert isinstance(env, dict)
    assert env.get("name") == "through-the-nat"
    assert env.get("channels") == ["conda-forge"]
    deps = env.get("dependencies")
    assert isinstance(deps, list) and deps
    strings = [d for d in deps if isinstance(d, str)]
    dicts = [d for d in deps if isinstance(d, dict)]
    assert len(strings) + len(dicts) == len(deps), "dependencies must be names or one {pip: [...]} block"
    assert len(dicts) == 1 and set(dicts[0]) == {"pip"}, "exactly one pip: block"
    assert "pip" in strings, "conda must install pip for the pip: block"
    assert any(_name(d) == "python" for d in strings)


def test_conda_dependencies_are_pyprojects_dependencies():
    """One source of truth: environment.yml lists exactly pyproject's [project].dependencies."""
    conda = {_name(d) for d in _environment()["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    project = {_name(d) for d in _pyproject()["project"]["dependencies"]}
    assert conda == project, (f"only in environment.yml: {sorted(conda - project)}; "
                              f"only in pyproject.toml: {sorted(project - conda)}")


def test_conda_dependencies_carry_no_versions():
    """Versions live in pyproject.toml only; pip enforces them when it installs `-e .`."""
    for dep in _environment()["dependencies"]:
        if isinstance(dep, str) and _name(dep) not in ("python",):
            assert _name(dep) == dep.strip().lower(), f"{dep!r}: put its version range in pyproject.toml"


def test_pip_section_installs_the_package_editable():
    pip = next(d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip


# ---------------------------------------------------------------------------- notebooks
def test_start_here_exists():
    assert (ROOT / "course" / "00-start-here.ipynb").is_file()


@pytest.mark.parametrize("path", _notebooks("course", "solutions", "labs"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_kernelspec_is_python3(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3", f"{path.name}: kernelspec name is {spec.get('name')!r}, not 'python3'"


@pytest.mark.parametrize("path", _notebooks("course", "solutions"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_lessons_and_solutions_are_executed(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    unrun = [i for i, c in enumerate(nb.cells) if c in code and c.execution_count is None]
    assert not unrun, f"{path.name}: code cells {unrun} have not been run; execute the notebook and save it"
    counts = [c.execution_count for c in code]
    assert counts == sorted(counts), f"{path.name}: cells were run out of order {counts}; use Restart & Run All"


def test_labs_have_no_outputs():
    dirty = {}
    for path in _notebooks("labs"):
        nb = nbformat.read(path, as_version=4)
        cells = [i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
        if cells:
            dirty[path.name] = cells
    assert not dirty, f"labs ship without outputs (Edit > Clear Outputs of All Cells); cells with outputs: {dirty}"


# ---------------------------------------------------------------------------- commands
def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\s*$", script, re.M), ".ci/run must call `make test`"


def test_makefile_lab_opens_start_here():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "course/00-start-here.ipynb" in makefile


def test_readme_mentions_both_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "python -m p2plab doctor" in readme
    assert "environment.yml" in readme


def test_import_p2plab_is_light():
    code = ("import sys, p2plab, p2plab.doctor, p2plab.world, p2plab.errors, p2plab.addresses; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"import p2plab pulled in heavy libraries: {out.stdout.strip()}"


def test_cli_help_works():
    out = subprocess.run([sys.executable, "-m", "p2plab", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "doctor" in out.stdout
