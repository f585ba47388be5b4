"""Pictures for every reader (issue #14, section 5): static images that need no JavaScript.

* ``p2plab.viz.to_svg`` draws each kind of figure the course uses (ladders, topologies, charts,
  heat maps, tables) as SVG text, without a browser: well-formed, with the alt text as its title,
  the figure's words as real text, and no element ids (many pictures share one HTML page).
* Its pictures agree with plotly's own drawing: in Chromium, plotly.js draws the same figure and
  the labels of both land in the same places.
* Every saved plotly figure in a lesson carries ``image/svg+xml`` in the same output, and every
  lesson has at least one static picture (a concept diagram in ``course/figures`` or a figure).
* Each lesson, rendered to HTML by nbconvert and opened in headless Chromium with JavaScript
  disabled, shows its pictures: at least one visible image per lesson, and a visible picture for
  every plotly figure output.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import missing, need

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"
FIGURES = COURSE / "figures"
LESSONS = sorted(COURSE.glob("[0-9][0-9]-*.ipynb"))
PLOTLY = "application/vnd.plotly.v1+json"
SVG = "image/svg+xml"
NS = "{http://www.w3.org/2000/svg}"
MD_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _outputs(nb: dict):
    for cell in nb["cells"]:
        yield from cell.get("outputs", [])


def _texts(svg: str) -> str:
    """All the words of an SVG, as a reader (or a screen reader) gets them."""
    root = ET.fromstring(svg)
    return " ".join("".join(t.itertext()) for t in root.iter(f"{NS}text"))


# -- the figures p2plab draws ------------------------------------------------------------------

def _figures():
    from p2plab import viz
    from p2plab.matrix import run_matrix
    from p2plab.punch import run_punch

    punch = run_punch("port-restricted-cone", "port-restricted-cone", seed=0)
    pairs = [{"local": "192.168.1.10:5000", "remote": "198.51.100.20:5000", "type": "host-srflx",
              "priority": 100, "state": "Succeeded", "selected": True, "why": "nominated <b>first</b>"},
             {"local": "192.0.2.1:6000", "remote": "192.168.0.25:5000", "type": "relay-host", "priority": 5,
              "state": "Failed", "why": "private address of another network"}]
    from p2plab.topology import punch as punch_topology

    return {
        "ladder": viz.ladder(punch.trace),
        "topology": viz.topology(punch_topology()),
        "heatmap": viz.punch_heatmap(run_matrix(["full-cone", "symmetric"], seed=0)),
        "relay cost": viz.relay_cost_chart(users=500),
        "birthday": viz.birthday_curve(),
        "ice table": viz.ice_pairs_table(pairs),
    }


@pytest.fixture(scope="module")
def figures():
    return _figures()


def test_every_kind_of_figure_becomes_a_well_formed_svg_with_its_words(figures):
    from p2plab import viz

    for name, fig in figures.items():
        svg = viz.to_svg(fig)
        root = ET.fromstring(svg)  # well-formed XML, or this raises
        assert root.tag == f"{NS}svg", name
        title = root.find(f"{NS}title")
        alt = fig.layout.meta["alt"]
        assert title is not None and title.text == alt, f"{name}: the SVG's <title> must be the figure's alt text"
        assert root.get("role") == "img" and root.get("aria-label") == alt, name
        assert " id=" not in svg, f"{name}: an id would clash when several pictures share one HTML page"
        assert float(root.get("width")) == 800, name
        words = _texts(svg)
        title_text = re.sub(r"<[^>]+>", " ", str(fig.layout.title.text or ""))
        for word in title_text.split():
            assert word in words, f"{name}: title word {word!r} is not in the picture"


def test_ladder_picture_has_every_arrow_label_lane_and_mark(figures):
    from p2plab import viz

    fig = figures["ladder"]
    svg = viz.to_svg(fig)
    words = _texts(svg)
    labels = next(t for t in fig.data if t.name == "labels")
    for text in labels.text:
        plain = re.sub(r"<[^>]+>", "", text).replace("&nbsp;", " ")
        assert plain.split()[0] in words, f"arrow label {plain!r} missing"
    for lane in ("alice", "nat-a", "internet", "server", "nat-b", "bob"):
        assert lane in words
    root = ET.fromstring(svg)
    # one arrowhead per drawn arrow end, one diamond per NAT rewrite, one X per drop
    arrows = sum(1 for t in fig.data if t.meta == "arrows" and t.mode == "lines+markers"
                 for s in t.marker.size if s)
    polygons = list(root.iter(f"{NS}polygon"))
    rewrites = next(t for t in fig.data if t.name == "NAT rewrite")
    assert len(polygons) >= arrows + len(rewrites.x)
    drops = next(t for t in fig.data if t.name == "dropped")
    crosses = [p for p in root.iter(f"{NS}path") if p.get("stroke") == drops.marker.color and p.get("fill") == "none"]
    assert len(crosses) == len(drops.x) + 1  # one per drop, and one in the legend


def test_heatmap_and_table_pictures_have_one_cell_per_value(figures):
    from p2plab import viz

    heat = figures["heatmap"]
    root = ET.fromstring(viz.to_svg(heat))
    z = heat.data[0].z
    cells = [r for r in root.iter(f"{NS}rect") if r.get("fill") in ("#E69F00", "#56B4E9")]
    assert len(cells) == sum(1 for row in z for v in row if v is not None)
    table = figures["ice table"]
    words = _texts(viz.to_svg(table))
    for column in table.data[0].cells.values:
        for value in column:
            first = re.sub(r"<[^>]+>", " ", str(value)).split()
            if first:
                assert first[0] in words


def test_a_figure_that_cannot_be_drawn_gets_a_clear_error():
    from p2plab import viz
    from p2plab.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="plotly figure"):
        viz.to_svg(42)


def test_display_bundle_keeps_plotly_first_and_the_summary_as_text(figures):
    fig = figures["birthday"]
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {PLOTLY, SVG, "text/plain"}
    assert bundle["text/plain"] == fig.layout.meta["summary"]
    ET.fromstring(bundle[SVG])
    assert type(fig).__mro__[1].__name__ == "Figure"  # still a plotly Figure for learners' plotly calls


# -- the saved lessons -------------------------------------------------------------------------

def test_there_are_lessons():
    assert len(LESSONS) >= 13


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_every_saved_plotly_figure_carries_a_static_svg(path):
    nb = _nb(path)
    for out in _outputs(nb):
        data = out.get("data") or {}
        if PLOTLY in data:
            assert SVG in data, f"{path.name}: a plotly figure without a static picture: re-execute the notebook"
            svg = "".join(data[SVG]) if isinstance(data[SVG], list) else data[SVG]
            ET.fromstring(svg)


WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_saved_explorer_widgets_keep_words_and_a_picture(path):
    """A saved widget is only a view id without a kernel; p2plab's explorers also save text and an SVG."""
    for out in _outputs(_nb(path)):
        data = out.get("data") or {}
        if WIDGET not in data:
            continue
        plain = "".join(data.get("text/plain", ""))
        if plain.startswith("Your prediction"):  # an ask() form: its question is its text
            continue
        assert "interactive widget" in plain and "(children=" not in plain, \
            f"{path.name}: a widget saved as its constructor repr: {plain[:80]}"
        if "Its figure now:" in plain:
            svg = data.get(SVG)
            assert svg, f"{path.name}: a widget with a figure but no static picture"
            ET.fromstring("".join(svg) if isinstance(svg, list) else svg)


def test_widget_bundle_adds_the_current_figure():
    from p2plab.widgets import CostExplorer

    w = CostExplorer(users=300)
    data = w._repr_mimebundle_()
    assert WIDGET in data and SVG in data
    assert "$" in _texts(data[SVG]) and "300" in data["text/plain"]
    w.users.value = 4000  # the picture follows the widget's state
    assert w._repr_mimebundle_()[SVG] != data[SVG]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_has_a_static_picture_and_its_diagrams_exist(path):
    nb = _nb(path)
    images = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for alt, src in MD_IMAGE.findall("".join(cell["source"])):
                images.append(src)
                assert len(alt.split()) >= 8, f"{path.name}: alt text of {src} should describe the picture"
                if not re.match(r"[a-z]+://", src):
                    target = (path.parent / src).resolve()
                    assert target.is_file(), f"{path.name}: {src} does not exist"
    figures = sum(1 for out in _outputs(nb) if SVG in (out.get("data") or {}))
    assert images or figures, f"{path.name}: no static picture at all (a concept diagram or a figure)"


def test_concept_diagrams_are_crisp_accessible_svg():
    svgs = sorted(FIGURES.glob("*.svg"))
    assert len(svgs) >= 7
    used = " ".join(p.read_text(encoding="utf-8") for p in LESSONS)
    for svg in svgs:
        root = ET.parse(svg).getroot()
        assert root.tag == f"{NS}svg"
        assert root.get("role") == "img", svg.name
        title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
        assert title is not None and title.text.strip(), f"{svg.name}: needs a <title>"
        assert desc is not None and len(desc.text.split()) > 15, f"{svg.name}: needs a <desc> describing it"
        assert int(root.get("width")) >= 800, f"{svg.name}: draw it for 800 px wide"
        assert list(root.iter(f"{NS}text")), f"{svg.name}: words must be real text, not paths"
        assert not list(root.iter(f"{NS}image")), f"{svg.name}: no embedded bitmaps"
        sizes = [float(t.get("font-size") or root.get("font-size") or 16) for t in root.iter(f"{NS}text")]
        assert min(sizes) >= 11, f"{svg.name}: text under 11 px is hard to read at 800 px"
        assert f"figures/{svg.name}" in used, f"{svg.name} is not used by any lesson"


# -- in a browser with JavaScript off ------------------------------------------------------------

def _needs_browser():
    need("chromium")
    if not Path(CHROMIUM).exists():
        missing(f"needs Debian's chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing("needs the python package playwright (pip install -e '.[test]')")


COUNT_PICTURES = """() => {
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 40 && r.height > 40; };
  const imgs = [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0 && visible(i));
  const svgs = [...document.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg') && visible(s));
  // nbconvert's lab template puts an output's SVG in div.jp-RenderedSVG, inline or as a data: <img>
  const outputSvgs = [...imgs, ...svgs].filter(e => e.closest('.jp-RenderedSVG'));
  return {total: imgs.length + svgs.length, imgs: imgs.filter(e => !e.closest('.jp-OutputArea-output')).length,
          outputSvgs: outputSvgs.length,
          broken: [...document.querySelectorAll('img')].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)};
}"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every lesson as nbconvert HTML (lab template), beside a copy of course/figures."""
    from nbconvert import HTMLExporter

    out = tmp_path_factory.mktemp("lessons")
    if FIGURES.is_dir():
        shutil.copytree(FIGURES, out / "figures")
    exporter = HTMLExporter(template_name="lab")
    pages = {}
    for path in LESSONS:
        body, _ = exporter.from_filename(str(path))
        page = out / (path.stem + ".html")
        page.write_text(body, encoding="utf-8")
        pages[path] = page
    return pages


def test_lessons_show_their_pictures_with_javascript_disabled(rendered):
    _needs_browser()
    from playwright.sync_api import sync_playwright

    problems, counts = [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(java_script_enabled=False, viewport={"width": 1000, "height": 800})
            page = context.new_page()
            for path, html in rendered.items():
                page.goto(html.as_uri())
                page.wait_for_load_state("load")
                got = page.evaluate(COUNT_PICTURES)
                figures = sum(1 for out in _outputs(_nb(path)) if PLOTLY in (out.get("data") or {}))
                counts[path.stem] = (got["imgs"], got["outputSvgs"], figures)
                if got["total"] < 1:
                    problems.append(f"{path.name}: no visible picture with JavaScript off")
                if got["outputSvgs"] < figures:
                    problems.append(f"{path.name}: {figures} plotly figures but {got['outputSvgs']} visible static pictures")
                if got["broken"]:
                    problems.append(f"{path.name}: images that did not load: {got['broken']}")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    print("pictures per lesson (markdown images, output SVGs, plotly figures):", counts)


def test_plotly_and_the_static_picture_put_labels_in_the_same_places(figures, tmp_path):
    """plotly.js draws the ladder in Chromium; the static SVG's labels must land within a few px."""
    _needs_browser()
    import plotly
    from playwright.sync_api import sync_playwright

    from p2plab import viz

    fig = figures["ladder"]
    spec = json.loads(fig.to_json())
    spec["layout"]["width"] = 800
    svg = viz.to_svg(spec)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    page_html = tmp_path / "compare.html"
    page_html.write_text(
        f'<html><head><script src="{plotly_js.as_uri()}"></script></head><body style="margin:0">'
        f'<div id="static" style="position:absolute;left:0;top:0;width:800px">{svg}</div>'
        f'<div id="live" style="position:absolute;left:0;top:0;width:800px;height:{spec["layout"]["height"]}px"></div>'
        f'<script>Plotly.newPlot("live", {json.dumps(spec["data"])}, {json.dumps(spec["layout"])}, '
        f'{{staticPlot: true}}).then(() => document.body.dataset.ready = 1);</script></body></html>',
        encoding="utf-8")
    locate = """(sel) => [...document.querySelectorAll(sel)].map(t => {
        const r = t.getBoundingClientRect(); return [t.textContent.trim(), r.x + r.width / 2, r.y + r.height / 2];
    }).filter(x => x[0])"""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 800, "height": 1000})
            page.goto(page_html.as_uri())
            page.wait_for_selector("body[data-ready]", timeout=20000)
            live = page.evaluate(locate, "#live .textpoint text")
            mine = page.evaluate(locate, "#static text")
        finally:
            browser.close()
    assert live, "plotly.js drew no text labels"
    by_text: dict[str, list[tuple[float, float]]] = {}
    for text, x, y in mine:
        by_text.setdefault(text, []).append((x, y))
    checked = 0
    for text, x, y in live:
        spots = by_text.get(text)
        assert spots, f"label {text!r} drawn by plotly is missing from the static picture"
        dist = min(abs(x - sx) + abs(y - sy) for sx, sy in spots)
        assert dist < 16, f"label {text!r}: plotly at ({x:.0f}, {y:.0f}), static picture {dist:.0f} px away"
        checked += 1
    assert checked >= 8


# -- the static site (make site) with JavaScript off ---------------------------------------------

def test_site_pages_show_diagrams_and_figure_pictures_with_javascript_disabled(tmp_path):
    """``tools/build_site.py`` copies the diagrams; with JavaScript off each plotly figure shows its SVG."""
    import subprocess
    import sys
    from importlib.metadata import PackageNotFoundError, version

    need("node")
    try:
        jb = version("jupyter-book")
    except PackageNotFoundError:
        jb = ""
    if not jb.startswith("2."):
        missing("needs jupyter-book 2 (pip install 'jupyter-book>=2,<3')")
    _needs_browser()
    from playwright.sync_api import sync_playwright

    src, out = tmp_path / "src", tmp_path / "html"
    src.mkdir()
    for name in ["myst.yml", "course.toml", *(p.name for p in ROOT.glob("*.bib"))]:
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(COURSE, src / "course", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_site.py"), "--root", str(src), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, f"make site failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    pages = {p["source"]: out / p["path"] for p in json.loads((out / "pages.json").read_text())["pages"]}
    count = """() => {
      const visible = el => { const r = el.getBoundingClientRect(); return r.width > 40 && r.height > 40; };
      const imgs = [...document.querySelectorAll('main img')];
      return {diagrams: imgs.filter(i => i.complete && i.naturalWidth > 0 && visible(i) && i.alt.length > 20).length,
              broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
              figures: [...document.querySelectorAll('.static-figure > svg')].filter(visible).length};
    }"""
    problems, seen = [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(java_script_enabled=False, viewport={"width": 1000, "height": 800}).new_page()
            for lesson in LESSONS:
                rel = lesson.relative_to(ROOT).as_posix()
                assert rel in pages, f"no site page for {rel}"
                page.goto(pages[rel].as_uri())
                got = page.evaluate(count)
                nb = _nb(lesson)
                diagrams = sum(len(MD_IMAGE.findall("".join(c["source"]))) for c in nb["cells"] if c["cell_type"] == "markdown")
                figures = sum(1 for o in _outputs(nb) if PLOTLY in (o.get("data") or {}))
                seen[lesson.stem] = (got["diagrams"], got["figures"])
                if got["broken"]:
                    problems.append(f"{rel}: images that did not load on the site: {got['broken']}")
                if got["diagrams"] < diagrams:
                    problems.append(f"{rel}: {diagrams} diagrams, {got['diagrams']} visible with alt text")
                if got["figures"] < figures:
                    problems.append(f"{rel}: {figures} plotly figures, {got['figures']} static pictures visible")
            narrow = browser.new_context(java_script_enabled=False, viewport={"width": 800, "height": 900}).new_page()
            narrow.goto(pages[LESSONS[1].relative_to(ROOT).as_posix()].as_uri())
            layout = narrow.evaluate("""() => ({main: document.querySelector('main h1').getBoundingClientRect().top,
                                                nav: document.querySelector('nav.toc').getBoundingClientRect().top})""")
            if not layout["main"] < 300 < layout["nav"]:
                problems.append(f"at 800 px the lesson's title should come first and the contents below it: {layout}")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    print("site pictures per lesson (diagrams, figure SVGs):", seen)
