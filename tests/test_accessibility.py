"""Accessibility rules for every notebook in course/, labs/ and solutions/ (docs/accessibility.md).

- Headings: exactly one H1, the first heading is the H1, and no level is skipped going down
  (an H2 may be followed by an H3, never by an H4). Screen-reader users move by headings.
- Images in markdown (``![alt](src)`` or ``<img>``) have alt text.
- Every plotly figure in a saved output carries a text summary (``layout.meta['summary']``, set by
  ``p2plab.viz``), so the figure has words for screen readers, terminals and the website.
- Every interactive control in ``p2plab.widgets`` has a ``description`` (its visible, spoken label).

The tests iterate over the notebooks that exist, so they hold as notebooks are added.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("course", "labs", "solutions") for p in (ROOT / folder).glob("*.ipynb"))
WIDGET_SOURCES = sorted((ROOT / "helpers" / "p2plab" / "widgets").glob("*.py"))
PLOTLY = "application/vnd.plotly.v1+json"

# ipywidgets controls a learner operates; each needs a label (containers and outputs do not).
CONTROLS = {
    "Button", "Checkbox", "ToggleButton", "ToggleButtons", "Dropdown", "RadioButtons", "Select",
    "SelectMultiple", "SelectionSlider", "SelectionRangeSlider", "IntSlider", "FloatSlider",
    "FloatLogSlider", "IntRangeSlider", "FloatRangeSlider", "IntText", "FloatText", "BoundedIntText",
    "BoundedFloatText", "Text", "Textarea", "Password", "Combobox", "ColorPicker", "DatePicker",
    "TimePicker", "Play", "FileUpload", "TagsInput",
}

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^\s{0,3}(#{1,6})(?:[ \t]+|$)(.*)$")
HTML_HEADING = re.compile(r"<h([1-6])\b", re.I)
MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]*)\)")
HTML_IMG = re.compile(r"<img\b[^>]*>", re.I)


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8")).get("cells", [])


def _markdown_lines(path: Path):
    """(cell index, line) for markdown text outside fenced code blocks and HTML comments."""
    for i, cell in enumerate(_cells(path)):
        if cell.get("cell_type") != "markdown":
            continue
        source = re.sub(r"<!--.*?-->", "", "".join(cell.get("source", "")), flags=re.S)
        fence = None
        for line in source.splitlines():
            m = FENCE.match(line)
            if m:
                marker = m.group(1)[0] * 3
                if fence is None:
                    fence = marker
                elif marker == fence:
                    fence = None
                continue
            if fence is None:
                yield i, line


def headings(path: Path) -> list[tuple[int, int, str]]:
    """(level, cell index, text) of every markdown heading, in order."""
    found = []
    for i, line in _markdown_lines(path):
        m = ATX.match(line)
        if m:
            found.append((len(m.group(1)), i, m.group(2).strip().rstrip("#").strip()))
            continue
        for level in HTML_HEADING.findall(line):
            found.append((int(level), i, line.strip()))
    return found


def heading_problems(path: Path) -> list[str]:
    found = headings(path)
    if not found:
        return ["no headings at all (the notebook needs a title, as an H1)"]
    problems = []
    h1 = [h for h in found if h[0] == 1]
    if len(h1) != 1:
        problems.append(f"{len(h1)} H1 headings (expected exactly one): {[h[2] for h in h1]}")
    if found[0][0] != 1:
        problems.append(f"the first heading is H{found[0][0]} {found[0][2]!r} in cell {found[0][1]}, not an H1")
    for (prev, _, _), (level, cell, text) in zip(found, found[1:]):
        if level > prev + 1:
            problems.append(f"H{prev} is followed by H{level} {text!r} in cell {cell} (skips a level)")
    return problems


def image_problems(path: Path) -> list[str]:
    problems = []
    for i, line in _markdown_lines(path):
        for alt, src in MD_IMAGE.findall(line):
            if not alt.strip():
                problems.append(f"cell {i}: markdown image without alt text: {src[:80]}")
        for tag in HTML_IMG.findall(line):
            if not re.search(r'\balt\s*=\s*("[^"]*\S[^"]*"|\'[^\']*\S[^\']*\')', tag):
                problems.append(f"cell {i}: <img> without alt text: {tag[:80]}")
    return problems


def plotly_summary(spec) -> str:
    if isinstance(spec, str):
        spec = json.loads(spec)
    meta = (spec.get("layout") or {}).get("meta") or {}
    if isinstance(meta, list):
        meta = meta[0] if meta and isinstance(meta[0], dict) else {}
    return str(meta.get("summary", "")).strip() if isinstance(meta, dict) else ""


def figure_problems(path: Path) -> list[str]:
    problems = []
    for i, cell in enumerate(_cells(path)):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data") or {}
            if PLOTLY in data and not plotly_summary(data[PLOTLY]):
                problems.append(f"cell {i}: a plotly figure without a text summary (layout.meta['summary']); "
                                "build it with p2plab.viz.make_figure(..., summary_text=...)")
            for mime in ("image/png", "image/jpeg", "image/svg+xml"):
                if mime in data and not str(data.get("text/plain", "")).strip():
                    problems.append(f"cell {i}: a {mime} output without a text/plain description")
    return problems


# ------------------------------------------------------------------------------------------ tests
def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_headings_are_in_order(path):
    problems = heading_problems(path)
    assert not problems, f"{_ids(path)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_images_have_alt_text(path):
    problems = image_problems(path)
    assert not problems, f"{_ids(path)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_figures_have_text_summaries(path):
    problems = figure_problems(path)
    assert not problems, f"{_ids(path)}:\n  " + "\n  ".join(problems)


def _controls_without_description(source: Path) -> list[str]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    missing = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in CONTROLS:
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        desc = kw.get("description")
        if desc is None and not any(k.arg is None for k in node.keywords):  # no **kwargs to carry one
            missing.append(f"{source.name}:{node.lineno} {name}(...) has no description=")
        elif isinstance(desc, ast.Constant) and not str(desc.value).strip():
            missing.append(f"{source.name}:{node.lineno} {name}(...) has an empty description")
    return missing


def test_widget_controls_have_descriptions():
    assert WIDGET_SOURCES, "helpers/p2plab/widgets has no modules"
    problems = [p for src in WIDGET_SOURCES for p in _controls_without_description(src)]
    assert not problems, "controls without a label:\n  " + "\n  ".join(problems)


def test_the_checks_catch_what_they_should(tmp_path):
    """The rules themselves, on a small notebook that breaks each of them."""
    def nb(*markdown: str, outputs=()):
        cells = [{"cell_type": "markdown", "metadata": {}, "source": m} for m in markdown]
        cells.append({"cell_type": "code", "metadata": {}, "source": "", "execution_count": 1,
                      "outputs": list(outputs)})
        path = tmp_path / f"nb{len(list(tmp_path.iterdir()))}.ipynb"
        path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        return path

    assert heading_problems(nb("# Title\n\n## A\n\n### B\n\n## C")) == []
    assert heading_problems(nb("# Title\n\n```python\n# a comment, not a heading\n```\n## A")) == []
    assert any("skips a level" in p for p in heading_problems(nb("# Title\n\n### Too deep")))
    assert any("2 H1" in p for p in heading_problems(nb("# One", "# Two")))
    assert any("not an H1" in p for p in heading_problems(nb("## Intro", "# Title")))
    assert image_problems(nb("# T\n\n![a NAT table](nat.png)")) == []
    assert image_problems(nb("# T\n\n![](nat.png)"))
    assert image_problems(nb('# T\n\n<img src="nat.png">'))
    fig = {"output_type": "display_data", "metadata": {},
           "data": {PLOTLY: {"data": [], "layout": {"meta": {"summary": "two hosts"}}}}}
    bare = {"output_type": "display_data", "metadata": {}, "data": {PLOTLY: {"data": [], "layout": {}}}}
    assert figure_problems(nb("# T", outputs=[fig])) == []
    assert figure_problems(nb("# T", outputs=[bare]))
