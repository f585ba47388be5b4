"""Right answers for the labs' checks, executed from the solution notebooks themselves.

``solution("02-nat-table")`` runs the notebook's code cells that define things (imports, functions,
classes) in a fresh namespace and returns it, so the tests check exactly what the notebooks teach.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _upper(target: ast.expr) -> bool:
    if isinstance(target, ast.Tuple):
        return all(_upper(e) for e in target.elts)
    return isinstance(target, ast.Name) and target.id.isupper()


def _defines_only(source: str) -> str:
    tree = ast.parse(source)
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))
            or (isinstance(n, ast.Assign) and all(_upper(t) for t in n.targets))]
    return "\n".join(ast.get_source_segment(source, n) for n in keep)


@functools.cache
def solution(stem: str) -> dict:
    nb = nbformat.read(ROOT / "solutions" / f"{stem}.ipynb", as_version=4)
    ns: dict = {"__name__": f"solution_{stem.replace('-', '_')}"}
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" not in cell.get("metadata", {}).get("tags", []):
            exec(compile(_defines_only(cell.source), f"<{stem}>", "exec"), ns)
    return ns
