"""A real browser: JupyterLab runs a notebook; the plotly figure and the ipywidget must render.

Starts a token-less JupyterLab on a free loopback port with every directory in tmp_path and news
and update checks off, opens a notebook in Debian's Chromium through Playwright, runs all
cells, waits for a drawn plotly figure (``.js-plotly-plot``, not the text fallback) and a
rendered widget, and saves a screenshot. Skipped (with the reason) without chromium or
playwright; under CI=true that is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import missing, need

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

NOTEBOOK_CELLS = [
    "from p2plab import viz\n"
    "from p2plab.punch import run_punch\n"
    "res = run_punch('port-restricted-cone', 'port-restricted-cone', seed=0)\n"
    "viz.ladder(res.trace)",
    "from p2plab.widgets import CostExplorer\n"
    "CostExplorer()",
    "from p2plab.widgets import NatExplorer\n"
    "NatExplorer('port-restricted-cone', 'symmetric', seed=0, auto=True)",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def lab_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    dirs = {"HOME": "home", "JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
            "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTERLAB_SETTINGS_DIR": "settings",
            "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython"}
    for var, sub in dirs.items():
        (tmp / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(tmp / sub)
    notif = tmp / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True, exist_ok=True)
    notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    tracker = tmp / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # render every cell, not only those in view
    page_config = tmp / "config" / "labconfig" / "page_config.json"
    page_config.parent.mkdir(parents=True, exist_ok=True)
    page_config.write_text(json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env.pop("JUPYTER_TOKEN", None)
    return env


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/api/status", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"JupyterLab did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@contextlib.contextmanager
def jupyterlab(tmp_path: Path, root: Path):
    """A token-less JupyterLab on a free loopback port serving ``root``; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True",
           "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    env = lab_env(tmp_path)
    env["P2PLAB_WORLD"] = "recorded"  # real-lab cells load the shipped captures: quick, no namespaces
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=root)
    try:
        wait_for_server(url, proc, log)
        yield url
    finally:
        stop(proc)


def needs_browser():
    need("chromium")
    if not Path(CHROMIUM).exists():
        missing(f"needs Debian's chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        missing("needs the python package playwright (pip install -e '.[test]')")


def run_all_cells(page, url: str, name: str) -> None:
    page.set_default_timeout(60_000)
    page.goto(f"{url}/lab/tree/{name}", wait_until="domcontentloaded")
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle'; }", timeout=90_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def assert_no_errors_and_no_text_fallback(page, figures: int = 1) -> None:
    """No error output; at least ``figures`` plotly figures, each drawn as SVG (not as its text fallback)."""
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, errors.all_inner_texts()
    assert page.locator(".jp-OutputArea-output .jp-RenderedText .ansi-red-fg").count() == 0  # tracebacks
    plots = page.locator(".jp-OutputArea .js-plotly-plot")
    mimes = page.eval_on_selector_all(".jp-OutputArea-output", "els => els.map(e => e.dataset.mimeType)")
    assert plots.count() >= figures, f"{plots.count()} figures drawn, {figures} expected; outputs: {mimes}"
    assert page.locator(".jp-OutputArea .js-plotly-plot .main-svg").count() >= plots.count()


def stored_figures(path: Path) -> int:
    """How many plotly figures a notebook's stored outputs hold."""
    nb = json.loads(path.read_text())
    return sum("application/vnd.plotly.v1+json" in out.get("data", {})
               for cell in nb["cells"] if cell["cell_type"] == "code" for out in cell.get("outputs", []))


@pytest.mark.timeout(300)
def test_notebook_renders_plotly_and_widget_in_chromium(tmp_path):
    needs_browser()
    from playwright.sync_api import sync_playwright

    root = tmp_path / "notebooks"
    root.mkdir()
    write_notebook(root / "check.ipynb", NOTEBOOK_CELLS)
    with jupyterlab(tmp_path, root) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            run_all_cells(page, url, "check.ipynb")
            page.wait_for_selector(".jp-OutputArea .js-plotly-plot .main-svg", timeout=120_000)
            page.wait_for_selector(".p2plab-cost-explorer .widget-slider", timeout=120_000)
            page.wait_for_selector(".p2plab-cost-explorer .js-plotly-plot .main-svg", timeout=60_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "jupyterlab.png"), full_page=True)

            cells = page.locator(".jp-Notebook .jp-CodeCell")
            assert cells.nth(0).locator(".jp-OutputArea .js-plotly-plot").count() >= 1
            fallback = page.locator(".jp-OutputArea-output .jp-RenderedText").filter(has_text="Ladder diagram of")
            assert fallback.count() == 0, "the figure fell back to text: is the jupyterlab-plotly extension there?"
            ticks = page.locator(".js-plotly-plot .xtick text").all_text_contents()
            assert any("nat-a" in t for t in ticks), ticks
            assert page.locator(".js-plotly-plot .legendtext").filter(has_text="NAT rewrite").count() >= 1
            widget = page.locator(".p2plab-cost-explorer")
            assert widget.locator(".widget-label").filter(has_text="users").count() >= 1
            assert "per month" in widget.inner_text()
            widget.scroll_into_view_if_needed()
            widget.screenshot(path=str(tmp_path / "cost-explorer.png"))
            assert_no_errors_and_no_text_fallback(page)

            # the NAT explorer: its own text is the verdict, and it goes stale when a control changes
            explorer = page.locator(".p2plab-nat-explorer")
            explorer.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
            assert "NO DIRECT PATH" in explorer.inner_text() and "Bob's NAT (symmetric)" in explorer.inner_text()
            explorer.locator("select").nth(4).select_option("full-cone")  # bob's preset
            page.wait_for_function("() => document.querySelector('.p2plab-nat-explorer').innerText"
                                   ".includes('Settings changed')", timeout=30_000)
            assert "NO DIRECT PATH" not in explorer.inner_text()
            assert page.evaluate("() => getComputedStyle(document.querySelector("
                                 "'.p2plab-nat-explorer .p2plab-stale')).opacity") == "0.35"  # the old result fades
            explorer.locator("button").filter(has_text="Punch").first.click()
            page.wait_for_function("() => document.querySelector('.p2plab-nat-explorer').innerText"
                                   ".includes('Direct path') || document.querySelector('.p2plab-nat-explorer')"
                                   ".innerText.includes('DIRECT PATH:')", timeout=30_000)
            text = explorer.inner_text()
            assert "Settings changed" not in text and "NO DIRECT PATH" not in text and "✓ DIRECT PATH" in text
            assert "Bob's NAT (full-cone)" in text
            assert explorer.locator(".p2plab-stale").count() == 0
            page.wait_for_timeout(500)
            assert any("bob behind full-cone" in t for t in explorer.locator(".gtitle").all_text_contents())

            # resize the window (narrow, then wide again): every figure keeps its height
            for width, height in ((800, 900), (1400, 1000)):
                page.set_viewport_size({"width": width, "height": height})
                page.wait_for_timeout(800)
                sizes = page.evaluate(RESIZE_CHECK)
                assert len(sizes) >= 3 and all(f["div"] > 50 and f["svg"] > 50 for f in sizes), (width, sizes)
        finally:
            browser.close()
    assert (tmp_path / "jupyterlab.png").stat().st_size > 10_000


@pytest.mark.timeout(300)
def test_a_course_notebook_runs_in_chromium_and_its_explorer_punches(tmp_path):
    """Course notebook 06 in a real browser: every figure drawn, the NAT explorer rendered and usable,
    and a "predict, then run" form that explains only after the learner has answered."""
    needs_browser()
    from playwright.sync_api import sync_playwright

    root = tmp_path / "course"
    shutil.copytree(Path(__file__).resolve().parents[1] / "course", root)
    with jupyterlab(tmp_path, root) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            run_all_cells(page, url, "06-udp-hole-punching.ipynb")
            explorer = page.locator(".p2plab-nat-explorer")
            explorer.first.wait_for(timeout=120_000)
            page.wait_for_function(  # the kernel is idle again: every cell has run
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
                " && document.querySelectorAll('.jp-InputArea-prompt').length > 0"
                " && ![...document.querySelectorAll('.jp-InputArea-prompt')].some(p => p.textContent.includes('*'))",
                timeout=120_000)
            explorer.first.scroll_into_view_if_needed()
            explorer.first.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
            assert explorer.first.locator("select").count() >= 2  # keyboard-usable dropdowns
            before = explorer.first.inner_text()
            explorer.first.locator("button").filter(has_text="Punch").first.click()
            page.wait_for_timeout(1500)
            assert "NO DIRECT PATH" in explorer.first.inner_text() or "DIRECT" in explorer.first.inner_text(), before
            # the first prediction (punch.symmetric-x-cone): no explanation until the learner answers
            form = page.locator(".p2plab-prediction").first
            form.scroll_into_view_if_needed()
            assert "filter" not in form.inner_text() and "Right" not in form.inner_text()
            form.get_by_role("button", name="Check my prediction").click()
            page.wait_for_timeout(800)
            assert "first" in form.inner_text()  # nothing chosen yet: asked to choose first
            form.get_by_role("radio", name="no").check()
            form.get_by_role("button", name="Check my prediction").click()
            page.wait_for_function("el => el.innerText.includes('Right')", arg=form.element_handle(), timeout=30_000)
            assert "port-restricted" in form.inner_text()  # the explanation, now that she has answered
            page.screenshot(path=str(tmp_path / "course-06.png"), full_page=True)
            cells = page.locator(".jp-Notebook .jp-Cell")
            for i in range(cells.count()):  # visit every cell so each figure is drawn at its size
                cells.nth(i).scroll_into_view_if_needed()
                page.wait_for_timeout(60)
            assert_no_errors_and_no_text_fallback(page, stored_figures(root / "06-udp-hole-punching.ipynb"))
        finally:
            browser.close()
    assert (tmp_path / "course-06.png").stat().st_size > 10_000


# -- standalone figures: ladders and charts drawn by plotly.js in chromium, no JupyterLab ---------------

WIDTHS = (1400, 800)


def _turn_chat():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docs" / "figures" / "build.py"
    spec = importlib.util.spec_from_file_location("p2plab_figures_build", path)
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.turn_chat()


def ladder_figures() -> dict:
    """The ladders the lessons draw (same scenarios and seeds), keyed by a name that says the story."""
    import random

    from p2plab import sim, topology, viz
    from p2plab.ice import run_ice
    from p2plab.punch import run_punch
    from p2plab.recorded import load
    from p2plab.stun.client import StunClient
    from p2plab.stun.server import StunServer
    from p2plab.tcp import run_tcp_punch
    from p2plab.widgets import NatExplorer

    net = sim.Network.build(topology.one_nat("port-restricted-cone"), seed=0)
    net.run_protocol("server", StunServer(), 3478)
    net.run_protocol("alice", StunClient(("192.0.2.1", 3478), rng=random.Random(1)), 5000)
    net.run(until=2)
    explorer = NatExplorer("port-restricted-cone", "symmetric", seed=0, auto=True)
    return {
        "stun": viz.ladder(net.trace),
        "stun-recorded": viz.ladder(load("stun"), max_rows=120),
        "punch": viz.ladder(run_punch("port-restricted-cone", "port-restricted-cone", seed=0).trace),
        "punch-symmetric": viz.ladder(run_punch("symmetric", "port-restricted-cone", seed=0).trace, max_rows=120),
        "punch-explorer": explorer.figure,
        "tcp": viz.ladder(run_tcp_punch("port-restricted-cone", "port-restricted-cone", seed=0).trace),
        "turn": viz.ladder(_turn_chat()),
        "turn-recorded": viz.ladder(load("turn-relay"), max_rows=120),
        "ice": viz.ladder(run_ice("port-restricted-cone", "port-restricted-cone", seed=0).trace),
        "ice-recorded": viz.ladder(load("ice"), max_rows=120),
    }


def chart_figures() -> dict:
    from p2plab import viz
    from p2plab.ice import run_ice
    from p2plab.matrix import run_matrix

    return {
        "ice-pairs": viz.ice_pairs_table(run_ice("port-restricted-cone", "port-restricted-cone", seed=0).pairs("alice")),
        "punch-matrix": viz.punch_heatmap(run_matrix(["port-restricted-cone", "symmetric", "full-cone"])),
        "relay-cost": viz.relay_cost_chart(1000, 2.0, 0.05, 0.3),
        "birthday": viz.birthday_curve(),
    }


def write_pages(root: Path, figures: dict) -> dict[str, Path]:
    """One standalone HTML page per figure, with plotly.js from the plotly package (no network)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    root.mkdir(parents=True, exist_ok=True)
    (root / "plotly.min.js").write_text(get_plotlyjs())
    pages = {}
    for name, fig in figures.items():
        div = pio.to_html(fig, include_plotlyjs=False, full_html=False, config={"responsive": True},
                          div_id=f"fig-{name}")
        page = root / f"{name}.html"
        page.write_text('<!doctype html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script>'
                        f'</head><body style="margin:8px">{div}</body></html>')
        pages[name] = page
    return pages


LABEL_BOXES = """() => {
  const boxes = [];
  const gd = document.querySelector('.js-plotly-plot');
  for (const el of gd.querySelectorAll('.textpoint text, .annotation-text')) {
    const r = el.getBoundingClientRect();
    if (el.textContent.trim() && r.width > 0) boxes.push({t: el.textContent, x: r.left, y: r.top, w: r.width, h: r.height});
  }
  return boxes;
}"""

ARROWS_AND_LABELS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const arrows = gd.data.filter(t => t.meta === 'arrows').reduce((n, t) => n + t.x.filter(x => x === null).length, 0);
  const idx = gd.data.findIndex(t => t.name === 'labels');
  const trace = gd.querySelectorAll('.scatterlayer .trace')[idx];
  const labels = [...trace.querySelectorAll('.textpoint text')].map(e => e.textContent.trim()).filter(Boolean);
  return {arrows, labels};
}"""


def overlaps(boxes: list[dict], slack: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of labels whose boxes intersect (by more than ``slack`` pixels each way)."""
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if (a["x"] + a["w"] - slack > b["x"] and b["x"] + b["w"] - slack > a["x"]
                    and a["y"] + a["h"] - slack > b["y"] and b["y"] + b["h"] - slack > a["y"]):
                out.append((a["t"], b["t"]))
    return out


def open_page(page, path: Path) -> None:
    page.goto(path.resolve().as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.wait_for_timeout(150)


@pytest.mark.timeout(300)
def test_ladders_in_chromium_label_every_arrow_without_overlap(tmp_path):
    """At 1400 and 800 px: each ladder arrow has a label, and no two labels overlap (DOM boxes)."""
    needs_browser()
    from playwright.sync_api import sync_playwright

    pages = write_pages(tmp_path / "ladders", ladder_figures())
    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 1000})
                for name, path in pages.items():
                    open_page(page, path)
                    found = page.evaluate(ARROWS_AND_LABELS)
                    assert found["arrows"] > 0, name
                    if found["arrows"] != len(found["labels"]):
                        problems.append(f"{name} at {width} px: {found['arrows']} arrows, {len(found['labels'])} labels")
                    bad = overlaps(page.evaluate(LABEL_BOXES))
                    if bad:
                        problems.append(f"{name} at {width} px: overlapping labels {bad[:3]}")
                    if name == "stun":
                        assert any(t.startswith("Binding success: you are 203.0.113.10:") for t in found["labels"])
                    if width == 800 and name in ("turn", "ice"):
                        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
    assert not problems, "\n".join(problems)


RESIZE_CHECK = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
  const svg = gd.querySelector('.main-svg');
  return {id: gd.id, div: gd.getBoundingClientRect().height, svg: svg ? svg.getBoundingClientRect().height : 0,
          width: gd.getBoundingClientRect().width};
})"""


@pytest.mark.timeout(300)
def test_figures_keep_their_height_when_the_window_is_resized(tmp_path):
    """The reported bug: figures vanished (container at 0 px) after a window resize. Resize, look again."""
    needs_browser()
    from playwright.sync_api import sync_playwright

    figures = dict(chart_figures())
    figures["turn"] = ladder_figures()["turn"]
    pages = write_pages(tmp_path / "charts", figures)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, path in pages.items():
                open_page(page, path)
                before = page.evaluate(RESIZE_CHECK)
                for width, height in ((800, 700), (500, 600), (1400, 1000)):
                    page.set_viewport_size({"width": width, "height": height})
                    page.wait_for_timeout(400)  # plotly's responsive handler is debounced
                    after = page.evaluate(RESIZE_CHECK)
                    assert after and all(f["div"] > 50 and f["svg"] > 50 for f in after), (name, width, before, after)
                    assert all(f["width"] <= width for f in after), (name, width, after)  # it follows the window
        finally:
            browser.close()
