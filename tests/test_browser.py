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
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

NOTEBOOK_CELLS = [
    "from p2plab import viz\n"
    "from p2plab.punch import run_punch\n"
    "res = run_punch('port-restricted-cone', 'port-restricted-cone', seed=0)\n"
    "viz.ladder(res.trace)",
    "from p2plab.widgets import CostExplorer\n"
    "CostExplorer()",
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
