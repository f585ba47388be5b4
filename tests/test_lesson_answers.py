"""Lessons ship unanswered: no saved output shows a prediction's answer, and every question spells out
its choices. (Issue 14: a self-paced learner must predict before reading the explanation.)"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

from p2plab.checks import predict, questions

COURSE = Path(__file__).resolve().parent.parent / "course"
# 08 is being rewritten (TCP hole punching, issue 14 section 3); its answer cells are converted with
# `python -m p2plab.checks.predict convert course/08-tcp.ipynb` after that merge. strict=True makes this
# test fail as soon as 08 is converted, so the mark cannot be forgotten.
PENDING: set[str] = set()


def _load_questions() -> dict[str, predict.Question]:
    for mod in pkgutil.iter_modules(questions.__path__):
        importlib.import_module(f"{questions.__name__}.{mod.name}")
    return dict(predict.QUESTIONS)


def _lessons():
    for path in sorted(COURSE.glob("*.ipynb")):
        marks = [pytest.mark.xfail(strict=True, reason="converted after the TCP rewrite")] if path.name in PENDING else []
        yield pytest.param(path, id=path.name, marks=marks)


def _saved_text(nb: dict) -> str:
    """Everything a reader of the saved notebook can see besides its sources: outputs and widget state."""
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append(json.dumps(out, ensure_ascii=False))
    parts.append(json.dumps(nb.get("metadata", {}).get("widgets", {}), ensure_ascii=False))
    return "\n".join(parts)


@pytest.mark.parametrize("path", list(_lessons()))
def test_saved_outputs_show_no_answer(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    qs = _load_questions()
    saved = _saved_text(nb)
    # json.dumps escapes quotes and newlines; compare a plain prefix that survives escaping
    leaked = [q.id for q in qs.values() if json.dumps(q.explanation[:80], ensure_ascii=False)[1:-1] in saved]
    assert not leaked, f"{path.name}: saved outputs contain the explanation of {leaked}"
    assert "✔ Right" not in saved and "✘ Not what happens" not in saved, f"{path.name}: a checked answer is saved"
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code":
            assert not re.search(r"""^\s*answer\(\s*["'][^"']+["']\s*,""", src, re.M), \
                f"{path.name}: a pre-answered cell: {src!r}; use ask(...)"


@pytest.mark.parametrize("path", list(_lessons()))
def test_every_question_lists_its_choices(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    qs = _load_questions()
    cells = nb["cells"]
    asked = 0
    for i, cell in enumerate(cells):
        m = re.search(r'ask\("([^"]+)"\)', "".join(cell["source"])) if cell["cell_type"] == "code" else None
        if not m:
            continue
        asked += 1
        q = qs[m.group(1)]
        md = next("".join(c["source"]) for c in reversed(cells[:i]) if c["cell_type"] == "markdown")
        assert "Predict" in md, f"{path.name}: ask({q.id!r}) has no question above it"
        if q.kind == "yes/no":
            assert re.search(r"\byes\b", md) and re.search(r"\bno\b", md), f"{path.name}: {q.id} does not say yes/no"
        elif q.kind == "choice":
            for choice in q.choices:
                assert f"{choice})" in md or f"`{choice}`" in md or f'"{choice}"' in md, \
                    f"{path.name}: {q.id} does not list choice {choice!r} in its text"
    if path.name not in ("00-start-here.ipynb",) and "Predict" in "".join("".join(c["source"]) for c in cells):
        assert asked, f"{path.name}: has predictions but no ask(...) form"
