"""The course website (``make site``, tools/build_site.py): built offline with Jupyter Book 2 from the
notebooks' saved outputs, one page per notebook in course/ and labs/, nothing from solutions/.

The site is built once, from a snapshot of the repository's notebooks in a temporary folder (so a
notebook saved while the tests run cannot make them disagree), and every check compares a page with
the snapshot. The checks iterate over the notebooks that exist, so they hold as notebooks are added.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import missing, need

ROOT = Path(__file__).resolve().parent.parent
COURSE = sorted((ROOT / "course").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))
PLOTLY = "application/vnd.plotly.v1+json"


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


class _Text(HTMLParser):
    """The text a reader sees: everything but <script> and <style>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _norm(text: str) -> str:
    return " ".join(text.split())


def page_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return _norm(" ".join(parser.parts))


def _outputs(nb: dict):
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            yield from cell.get("outputs", [])


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _plotly_summary(spec) -> str:
    if isinstance(spec, str):
        spec = json.loads(spec)
    meta = (spec.get("layout") or {}).get("meta") or {}
    if isinstance(meta, list):
        meta = meta[0] if meta and isinstance(meta[0], dict) else {}
    return str(meta.get("summary", ""))


# ------------------------------------------------------------------------------------------ build
@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    need("node")
    from importlib.metadata import PackageNotFoundError, version

    try:
        jb = version("jupyter-book")
    except PackageNotFoundError:
        jb = ""
    if not jb.startswith("2."):
        missing("needs jupyter-book 2 (pip install 'jupyter-book>=2,<3')")
    base = tmp_path_factory.mktemp("site")
    src, out = base / "src", base / "html"
    src.mkdir()
    for name in ["myst.yml", "course.toml", *(p.name for p in ROOT.glob("*.bib"))]:
        shutil.copy2(ROOT / name, src / name)
    for folder in ("course", "labs", "solutions"):  # solutions/ too: the build must leave it out
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_site.py"), "--root", str(src),
                           "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, f"make site failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    manifest = json.loads((out / "pages.json").read_text(encoding="utf-8"))
    by_source = {p["source"]: p for p in manifest["pages"]}
    return {"out": out, "src": src, "manifest": manifest, "by_source": by_source, "log": proc.stdout}


def _snapshot(site: dict, nb: Path) -> Path:
    """The copy of ``nb`` that the site was built from."""
    copy = site["src"] / nb.relative_to(ROOT)
    if not copy.is_file():
        pytest.skip(f"{nb.relative_to(ROOT)} appeared after the site was built")
    return copy


def _snapshots(site: dict, folder: str) -> list[Path]:
    return sorted((site["src"] / folder).glob("*.ipynb"))


def _page(site: dict, nb: Path) -> tuple[dict, str]:
    rel = nb.relative_to(ROOT).as_posix()
    assert rel in site["by_source"], f"no page for {rel}; pages: {sorted(site['by_source'])}"
    entry = site["by_source"][rel]
    path = site["out"] / entry["path"]
    assert path.is_file(), f"{rel}: {entry['path']} is missing"
    return entry, path.read_text(encoding="utf-8")


def _all_pages(site: dict):
    for entry in site["manifest"]["pages"]:
        yield entry, (site["out"] / entry["path"]).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ pages
def test_there_are_notebooks_to_publish():
    assert COURSE and (ROOT / "course" / "00-start-here.ipynb") in COURSE


def test_one_page_per_notebook_and_a_home_page(site):
    sources = {p["source"] for p in site["manifest"]["pages"]}
    expected = {nb.relative_to(site["src"]).as_posix()
                for nb in _snapshots(site, "course") + _snapshots(site, "labs")}
    assert expected <= sources, f"missing pages: {sorted(expected - sources)}"
    assert (site["out"] / "index.html").is_file()
    home = (site["out"] / "index.html").read_text(encoding="utf-8")
    for entry in site["manifest"]["pages"]:
        if entry["path"] != "index.html":
            assert f'href="{entry["path"]}"' in home, f"the home page does not link to {entry['path']}"


@pytest.mark.parametrize("nb", COURSE, ids=_ids)
def test_course_page_shows_the_saved_outputs(site, nb):
    entry, markup = _page(site, nb)
    text = page_text(markup)
    notebook = _load(_snapshot(site, nb))
    checked = 0
    for out in _outputs(notebook):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            for line in "".join(out.get("text", "")).splitlines():
                line = _norm(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line))
                if line:
                    assert line in text, f"{entry['path']}: output line missing: {line!r}"
                    checked += 1
        data = out.get("data") or {}
        if PLOTLY in data:
            summary = _plotly_summary(data[PLOTLY])
            if summary:
                assert _norm(summary) in text, f"{entry['path']}: figure summary missing: {summary[:80]!r}"
                checked += 1
    if any(_outputs(notebook)):
        assert checked, f"{nb.name}: has outputs but none were found on its page"
    n_figures = sum(1 for out in _outputs(notebook) if PLOTLY in (out.get("data") or {}))
    assert markup.count('class="output output-plotly') == n_figures, f"{entry['path']}: figures lost"
    if n_figures:
        assert "_static/plotly.min.js" in markup
        script = site["out"] / "_static" / "plotly.min.js"
        assert script.is_file() and script.stat().st_size > 100_000


@pytest.mark.parametrize("nb", LABS, ids=_ids)
def test_lab_page_exists(site, nb):
    entry, markup = _page(site, nb)
    assert entry["path"].startswith("labs/")
    first_heading = next(
        (ln[2:].strip() for c in _load(_snapshot(site, nb))["cells"] if c["cell_type"] == "markdown"
         for ln in "".join(c["source"]).splitlines() if ln.startswith("# ")), None)
    if first_heading:
        assert f"<h1>{html.escape(first_heading, quote=True)}</h1>" in markup


def test_no_error_outputs_on_any_page(site):
    for entry, markup in _all_pages(site):
        assert "output-error" not in markup, f"{entry['path']} shows an error output"
        assert "Traceback (most recent call last)" not in page_text(markup), f"{entry['path']} shows a traceback"


def test_solutions_are_not_published(site):
    out = site["out"]
    assert not [p for p in out.rglob("*") if "solution" in p.name.lower()]
    assert not [e for e in site["manifest"]["pages"] if e["source"].startswith("solutions/")]
    lab_sources = "\n".join("".join(c["source"]) for nb in _snapshots(site, "labs") for c in _load(nb)["cells"])
    secret_lines = set()
    for nb in _snapshots(site, "solutions"):
        for cell in _load(nb)["cells"]:
            src = "".join(cell["source"])
            for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.S):
                secret_lines |= {ln.strip() for ln in block.splitlines()
                                 if len(ln.strip()) >= 25 and ln.strip() not in lab_sources}
    everything = "\n".join(page_text(markup) for _, markup in _all_pages(site))
    leaked = sorted(line for line in secret_lines if _norm(line) in everything)
    assert not leaked, f"solution code on the site: {leaked[:5]}"


def test_pages_load_nothing_from_the_internet(site):
    external = re.compile(r'<(?:script|link|iframe)\b[^>]*(?:src|href)="(?:https?:)?//', re.I)
    for entry, markup in _all_pages(site):
        assert not external.search(markup), f"{entry['path']} loads a script or style from the network"


def test_pages_have_a_language_a_title_and_one_h1(site):
    for entry, markup in _all_pages(site):
        assert '<html lang="en">' in markup
        assert re.search(r"<title>[^<]+</title>", markup)
        assert len(re.findall(r"<h1[ >]", markup)) == 1, f"{entry['path']}: not exactly one <h1>"
        for img in re.findall(r"<img\b[^>]*>", markup):
            assert re.search(r'\balt="[^"]+"', img), f"{entry['path']}: image without alt text: {img[:120]}"
