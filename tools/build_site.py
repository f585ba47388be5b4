"""Build the course website (issue #9): ``make site``, or ``python tools/build_site.py [--out DIR]``.

How it works
------------
1. A staging folder gets copies of ``myst.yml``, ``course/`` and ``labs/`` (never ``solutions/``),
   a generated home page ``index.md`` (which links to the repository set in ``course.toml``) and a
   local MyST site template ``_theme/``.
2. ``jupyter-book build --html`` (Jupyter Book 2, which drives mystmd on Node.js) parses the
   notebooks into MyST's AST. It does not execute them: the pages show the saved outputs.
3. The local template's ``build.render`` command is this script with ``--render``. mystmd runs it
   with ``CONTENT_CDN`` (a local server with ``config.json`` and ``content/<slug>.json``) and
   ``BUILD_DIRECTORY``; it writes one static HTML page per notebook, plus ``pages.json``, a
   manifest from each source notebook to its page.
4. The HTML is copied to ``--out`` (default ``_build/html``).

Offline, no prompts, nothing downloaded: the machine's ``node`` (18, 20 or 22+) is used,
``JB_ALLOW_NODEENV=no`` stops Jupyter Book from offering to install Node.js, ``CI=true`` keeps
mystmd non-interactive, and the template is local (the default ``book-theme`` would be fetched from
the Internet). Figures use the ``plotly.min.js`` shipped inside the ``plotly`` package; maths uses
the MathML that mystmd renders. Widgets need a kernel, so a page shows a note in their place.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("course", "labs")  # never solutions/
DEFAULT_OUT = ROOT / "_build" / "html"
THEME_DIR = "_theme"  # must match site.template in myst.yml
OFFLINE = "http://127.0.0.1:9"  # the discard port: nothing listens, so a request fails at once

TEMPLATE_YML = """\
myst: v1
kind: site
title: Through the NAT (offline static pages)
description: Local template; tools/build_site.py --render writes the HTML, offline.
version: 1.0.0
license: MIT
options:
  - type: boolean
    id: folders
    description: Respect nested folder structure in URL paths
build:
  render: {render}
"""


# ------------------------------------------------------------------------------------------ build
class SiteError(SystemExit):
    """A build that cannot go on, with a message that says what to do."""


def node_version() -> tuple[int, ...]:
    node = shutil.which("node")
    if node is None:
        raise SiteError("make site needs Node.js 18, 20 or 22+ on PATH (Debian/Ubuntu: apt-get install nodejs); "
                        "it never downloads one.")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    version = tuple(int(x) for x in re.findall(r"\d+", out)[:3])
    if not version or not (version[0] in (18, 20) or version[0] >= 22):
        raise SiteError(f"Jupyter Book 2 needs Node.js 18, 20 or 22+; this machine has {out}.")
    return version


def check_jupyter_book() -> str:
    try:
        from importlib.metadata import version

        jb = version("jupyter-book")
    except Exception as err:  # PackageNotFoundError
        raise SiteError("make site needs Jupyter Book 2: pip install 'jupyter-book>=2,<3'") from err
    if not jb.startswith("2."):
        raise SiteError(f"make site needs Jupyter Book 2 (jupyter-book>=2,<3); found {jb}")
    return jb


def notebook_title(path: Path) -> str:
    """The notebook's H1 (what mystmd uses as the page title), or its file name."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def repository(root: Path) -> tuple[str, str]:
    """The course's public repository URL and branch, from ``course.toml`` (the one place that sets them)."""
    path = root / "course.toml"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: it sets the course's repository, which the home page links to")
    repo = tomllib.loads(path.read_text())["repository"]
    return repo["url"], repo["branch"]


def index_markdown(root: Path) -> str:
    url, branch = repository(root)
    lines = [
        "# Through the NAT",
        "",
        "Alice wants to talk to Bob directly, laptop to laptop, but each of them sits behind a home router "
        "that does network address translation (NAT). This course goes step by step from a plain direct "
        "connection through private addresses, NAT, STUN, UDP hole punching, TCP, TURN relays and ICE, "
        "with real packets.",
        "",
        "These pages are a read-only copy of the notebooks with their saved outputs. Figures can be "
        "zoomed and hovered; widgets and experiments need a running kernel, so open the notebooks in "
        "JupyterLab (`make lab`) to change things and rerun them. Worked solutions are not published "
        "here.",
        "",
        f"The notebooks and the helper package come from the repository [{url}]({url}) (branch `{branch}`).",
        "",
    ]
    for folder, heading in (("course", "Lessons"), ("labs", "Labs")):
        notebooks = sorted((root / folder).glob("*.ipynb"))
        if notebooks:
            lines += [f"## {heading}", ""]
            lines += [f"- [{notebook_title(p)}]({folder}/{p.name})" for p in notebooks]
            lines.append("")
    return "\n".join(lines)


def stage(staging: Path, root: Path = ROOT) -> None:
    """Copy what the site is made of from ``root`` into ``staging`` (solutions/ stays out)."""
    shutil.copy2(root / "myst.yml", staging / "myst.yml")
    for bib in root.glob("*.bib"):  # e.g. myst.doi.bib from `jupyter-book build --doi-bib`: DOIs offline
        shutil.copy2(bib, staging / bib.name)
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    for folder in SOURCE_DIRS:
        if (root / folder).is_dir():
            shutil.copytree(root / folder, staging / folder, ignore=ignore)
    (staging / "index.md").write_text(index_markdown(root), encoding="utf-8")
    theme = staging / THEME_DIR
    theme.mkdir()
    render = f"'{sys.executable}' '{Path(__file__).resolve()}' --render"
    (theme / "template.yml").write_text(TEMPLATE_YML.format(render=json.dumps(render)), encoding="utf-8")


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "JB_ALLOW_NODEENV": "no",  # never offer to download Node.js (jupyter_book/nodeenv.py)
        "CI": "true",              # mystmd: no interactive questions
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        # Nothing is fetched at build time. mystmd sends its web requests (DOIs, remote
        # references, templates) through HTTPS_PROXY, except to localhost, and asks the npm
        # registry for its latest version; both point at a closed local port, so they fail at
        # once even on a machine that is online. The build does not need either.
        "HTTPS_PROXY": OFFLINE,
        "npm_config_registry": OFFLINE + "/",
        "NO_PROXY": "localhost,127.0.0.1,::1",
    })
    env.pop("BASE_URL", None)  # pages use relative links; a base URL is not needed
    return env


def build(out: Path, *, root: Path = ROOT, quiet: bool = False, keep: bool = False) -> dict[str, Any]:
    """Build the site of the course in ``root`` into ``out``; return the manifest (pages, seconds)."""
    t0 = time.monotonic()
    check_jupyter_book()
    node_version()
    staging = Path(tempfile.mkdtemp(prefix="p2plab-site-"))
    try:
        stage(staging, root)
        cmd = [sys.executable, "-m", "jupyter_book", "build", "--html", "--ci"]
        proc = subprocess.run(cmd, cwd=staging, env=build_env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=900)
        log = proc.stdout + proc.stderr
        html_dir = staging / "_build" / "html"
        manifest_path = html_dir / "pages.json"
        if proc.returncode != 0 or not manifest_path.is_file():
            raise SiteError(f"jupyter-book build --html failed (exit {proc.returncode}):\n{log[-6000:]}")
        if not quiet:
            problems = [ln for ln in log.splitlines() if re.search(r"⚠|✖|error", ln, re.I)]
            if problems:
                print("\n".join(problems[:40]))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(html_dir, out)
    finally:
        if keep:
            print(f"staging folder kept: {staging}")
        else:
            shutil.rmtree(staging, ignore_errors=True)
    manifest = json.loads((out / "pages.json").read_text(encoding="utf-8"))
    manifest["seconds"] = round(time.monotonic() - t0, 1)
    return manifest


# ----------------------------------------------------------------------------------------- render
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
VOID_OK = {"br", "hr", "img", "wbr"}

CSS = """\
:root { --fg: #1a1a1a; --muted: #555; --bg: #fff; --code: #f5f5f4; --accent: #0b5cad; --border: #d6d6d6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); font: 16px/1.6 system-ui, -apple-system,
  "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, summary:focus-visible { outline: 3px solid #f2a900; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 0; }
.layout { display: flex; min-height: 100vh; }
nav.toc { width: 18rem; flex: none; border-right: 1px solid var(--border); padding: 1rem; font-size: .92rem;
  position: sticky; top: 0; align-self: flex-start; max-height: 100vh; overflow-y: auto; }
nav.toc .site-title { font-weight: 700; font-size: 1.1rem; display: block; margin-bottom: 1rem; }
nav.toc ul { list-style: none; padding-left: 0; margin: 0 0 1rem 0; }
nav.toc li { margin: .2rem 0; }
nav.toc .part { font-weight: 700; margin-top: 1rem; color: var(--muted); }
nav.toc a[aria-current="page"] { font-weight: 700; color: var(--fg); }
main { flex: 1; min-width: 0; max-width: 58rem; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 2rem; line-height: 1.25; }
pre, code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .9em; }
code { background: var(--code); padding: .05em .3em; border-radius: 3px; }
pre { background: var(--code); padding: .75rem 1rem; overflow-x: auto; border-radius: 4px; line-height: 1.4; }
pre code { background: none; padding: 0; }
.cell { margin: 1rem 0; }
.cell-input pre { border-left: 4px solid var(--accent); }
.cell-label { font-size: .75rem; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
.output pre { background: #fff; border: 1px solid var(--border); white-space: pre-wrap; overflow-wrap: anywhere; }
.output-stderr pre { background: #fff4f4; }
.output-html { overflow-x: auto; }
.output-html table { border-collapse: collapse; font-size: .85rem; }
.output-html th, .output-html td { border: 1px solid var(--border); padding: .2rem .5rem; }
table.md { border-collapse: collapse; margin: 1rem 0; }
table.md th, table.md td { border: 1px solid var(--border); padding: .3rem .6rem; vertical-align: top; }
blockquote { border-left: 4px solid var(--border); margin: 1rem 0; padding: 0 1rem; color: #333; }
.admonition { border: 1px solid var(--border); border-left: 5px solid var(--accent); padding: .25rem 1rem;
  margin: 1rem 0; border-radius: 4px; }
.admonition-title { font-weight: 700; }
figure.plotly { margin: 1rem 0; }
.plotly-graph { width: 100%; min-height: 300px; }
figcaption { font-size: .9rem; color: #333; white-space: pre-wrap; }
.widget-note { border: 1px dashed var(--border); padding: .5rem 1rem; }
.pager { display: flex; justify-content: space-between; gap: 1rem; margin-top: 3rem;
  border-top: 1px solid var(--border); padding-top: 1rem; }
.meta { color: var(--muted); font-size: .9rem; }
.to-contents { display: none; }
/* Narrow screens: the lesson comes first and the contents fold below it, one link away. */
@media (max-width: 800px) { .layout { display: flex; flex-direction: column; } nav.toc { width: auto;
  position: static; max-height: none; border-right: none; border-top: 1px solid var(--border); order: 2; }
  main { padding: 1rem; order: 1; } .to-contents { display: block; margin-bottom: .5rem; font-size: .9rem; } }
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def slug_path(slug: str) -> str:
    """mystmd's slug ``course.start-here`` (folders: true) is the URL ``course/start-here``."""
    return slug.replace(".", "/")


class PageRenderer:
    """MyST AST (mdast, as mystmd writes it to content/<slug>.json) to HTML for one page."""

    def __init__(self, page: dict, prefix: str, site_dir: Path):
        self.page = page
        self.prefix = prefix  # relative path from this page to the site root, "" or "../../"
        self.site_dir = site_dir
        self.has_plotly = False
        self.figure_count = 0

    # -- helpers
    def children(self, node: dict) -> str:
        return "".join(self.node(c) for c in node.get("children") or [])

    def url(self, node: dict) -> str:
        url = str(node.get("url", ""))
        if node.get("internal") and url.startswith("/"):
            target = url.strip("/")
            return f"{self.prefix}{target + '/' if target else ''}index.html"
        if url.startswith("/") and not url.startswith("//"):
            return self.prefix + "build" + url  # files mystmd copied to its public folder
        return url

    def value(self, mime: str, entry: Any) -> Any:
        """An output's data, inline (``content``) or in a file of the public folder (``path``)."""
        if isinstance(entry, dict):
            if "content" in entry:
                return entry["content"]
            if "path" in entry:
                path = self.site_dir / "public" / Path(str(entry["path"])).name
                if path.is_file():
                    if mime.startswith("image/") and mime != "image/svg+xml":
                        return {"src": self.prefix + "build/" + path.name}
                    return path.read_text(encoding="utf-8")
            return ""
        return entry

    # -- nodes
    def node(self, n: dict) -> str:
        t = n.get("type")
        method = getattr(self, f"n_{t}", None)
        if method is not None:
            return method(n)
        if "children" in n:
            return self.children(n)
        if "value" in n:
            return esc(n["value"])
        return ""

    def n_text(self, n):
        return esc(n.get("value", ""))

    def n_root(self, n):
        return self.children(n)

    def n_block(self, n):
        return f'<div class="block" id="{esc(n.get("html_id") or n.get("identifier") or "")}">{self.children(n)}</div>'

    def n_paragraph(self, n):
        return f"<p>{self.children(n)}</p>\n"

    def n_heading(self, n):
        depth = min(max(int(n.get("depth", 2)), 1), 6)
        ident = n.get("html_id") or n.get("identifier") or ""
        return f'<h{depth} id="{esc(ident)}">{self.children(n)}</h{depth}>\n'

    def n_strong(self, n):
        return f"<strong>{self.children(n)}</strong>"

    def n_emphasis(self, n):
        return f"<em>{self.children(n)}</em>"

    def n_delete(self, n):
        return f"<del>{self.children(n)}</del>"

    def n_subscript(self, n):
        return f"<sub>{self.children(n)}</sub>"

    def n_superscript(self, n):
        return f"<sup>{self.children(n)}</sup>"

    def n_inlineCode(self, n):  # noqa: N802 - mdast node names
        return f"<code>{esc(n.get('value', ''))}</code>"

    def n_break(self, n):
        return "<br>"

    def n_thematicBreak(self, n):  # noqa: N802
        return "<hr>\n"

    def n_html(self, n):
        return str(n.get("value", ""))

    def n_link(self, n):
        inner = self.children(n) or esc(n.get("url", ""))
        return f'<a href="{esc(self.url(n))}">{inner}</a>'

    def n_image(self, n):
        alt = n.get("alt") or ""
        title = f' title="{esc(n["title"])}"' if n.get("title") else ""
        return f'<img src="{esc(self.url(n))}" alt="{esc(alt)}"{title} style="max-width:100%">'

    def n_list(self, n):
        if n.get("ordered"):
            start = n.get("start")
            attr = f' start="{int(start)}"' if start not in (None, 1) else ""
            return f"<ol{attr}>{self.children(n)}</ol>\n"
        return f"<ul>{self.children(n)}</ul>\n"

    def n_listItem(self, n):  # noqa: N802
        kids = n.get("children") or []
        # mdast wraps each item's text in a paragraph; tight lists render without <p>.
        if not n.get("spread") and len(kids) == 1 and kids[0].get("type") == "paragraph":
            return f"<li>{self.children(kids[0])}</li>"
        return f"<li>{self.children(n)}</li>"

    def n_blockquote(self, n):
        return f"<blockquote>{self.children(n)}</blockquote>\n"

    def n_table(self, n):
        return f'<table class="md">{self.children(n)}</table>\n'

    def n_tableRow(self, n):  # noqa: N802
        return f"<tr>{self.children(n)}</tr>"

    def n_tableCell(self, n):  # noqa: N802
        tag = "th" if n.get("header") else "td"
        scope = ' scope="col"' if tag == "th" else ""
        align = f' style="text-align:{esc(n["align"])}"' if n.get("align") else ""
        return f"<{tag}{scope}{align}>{self.children(n)}</{tag}>"

    def n_details(self, n):
        return f"<details>{self.children(n)}</details>\n"

    def n_summary(self, n):
        return f"<summary>{self.children(n)}</summary>"

    def n_admonition(self, n):
        kind = esc(n.get("kind", "note"))
        return f'<aside class="admonition admonition-{kind}" role="note">{self.children(n)}</aside>\n'

    def n_admonitionTitle(self, n):  # noqa: N802
        return f'<p class="admonition-title">{self.children(n)}</p>'

    def n_container(self, n):
        return f"<figure>{self.children(n)}</figure>\n"

    def n_caption(self, n):
        return f"<figcaption>{self.children(n)}</figcaption>"

    def n_math(self, n):
        return f'<div class="math">{self.math(n)}</div>\n'

    def n_inlineMath(self, n):  # noqa: N802
        return f'<span class="math">{self.math(n)}</span>'

    def math(self, n) -> str:
        rendered = str(n.get("html", ""))
        m = re.search(r"<math.*?</math>", rendered, re.S)  # KaTeX's MathML: browsers draw it natively
        return m.group(0) if m else f"<code>{esc(n.get('value', ''))}</code>"

    def n_footnoteReference(self, n):  # noqa: N802
        label = esc(n.get("label") or n.get("identifier") or "")
        return f'<sup><a href="#fn-{label}">{label}</a></sup>'

    def n_footnoteDefinition(self, n):  # noqa: N802
        label = esc(n.get("label") or n.get("identifier") or "")
        return f'<div class="footnote" id="fn-{label}"><sup>{label}</sup> {self.children(n)}</div>'

    def n_crossReference(self, n):  # noqa: N802
        inner = self.children(n) or esc(n.get("label") or n.get("identifier") or "")
        return f'<a href="#{esc(n.get("html_id") or n.get("identifier") or "")}">{inner}</a>'

    def n_code(self, n):
        lang = esc(n.get("lang") or "")
        code = f'<pre><code class="language-{lang}">{esc(n.get("value", ""))}</code></pre>'
        if n.get("executable"):
            return f'<div class="cell cell-input"><div class="cell-label">In</div>{code}</div>\n'
        return code + "\n"

    def n_outputs(self, n):
        inner = self.children(n)
        return f'<div class="cell cell-outputs">{inner}</div>\n' if inner else ""

    def n_output(self, n):
        data = n.get("jupyter_data") or {}
        kind = data.get("output_type")
        if kind == "stream":
            name = data.get("name", "stdout")
            text = ANSI.sub("", "".join(data.get("text", "")))
            return f'<div class="output output-{esc(name)}"><pre>{esc(text)}</pre></div>'
        if kind == "error":
            tb = ANSI.sub("", "\n".join(data.get("traceback") or [f"{data.get('ename')}: {data.get('evalue')}"]))
            return f'<div class="output output-error" role="alert"><pre>{esc(tb)}</pre></div>'
        bundle = {m: self.value(m, v) for m, v in (data.get("data") or {}).items()}
        return self.bundle(bundle, data.get("metadata") or {})

    def bundle(self, data: dict, metadata: dict) -> str:
        plain = data.get("text/plain")
        if "application/vnd.jupyter.widget-view+json" in data:
            # The widget's text form is its constructor repr, noise to a reader: keep the class name.
            m = re.match(r"\s*([A-Za-z_]\w*)[(:]", str(plain or ""))
            name = f" (<code>{esc(m.group(1))}</code>)" if m else ""
            svg = data.get("image/svg+xml")  # the widget's figure as it was saved (p2plab.viz.static)
            picture = (f'<div class="output output-svg" role="img" aria-label="{esc(plain or "figure")}">{svg}</div>'
                       if isinstance(svg, str) and svg else "")
            return ('<div class="output output-widget widget-note">'
                    f"<p><strong>Interactive widget{name}.</strong> It needs a running Python kernel: open "
                    f"this notebook in JupyterLab to use it.</p>{picture}</div>")
        if "application/vnd.plotly.v1+json" in data:
            return self.plotly(data["application/vnd.plotly.v1+json"], plain, data.get("image/svg+xml"))
        if "text/html" in data:
            return f'<div class="output output-html">{data["text/html"]}</div>'
        for mime in ("image/png", "image/jpeg", "image/gif", "image/webp"):
            if mime in data:
                value = data[mime]
                src = value["src"] if isinstance(value, dict) else f"data:{mime};base64,{str(value).strip()}"
                alt = (metadata.get(mime) or {}).get("alt") if isinstance(metadata.get(mime), dict) else None
                alt = alt or (plain if plain else "output image")
                return f'<div class="output output-image"><img src="{esc(src)}" alt="{esc(alt)}"></div>'
        if "image/svg+xml" in data:
            return f'<div class="output output-svg" role="img" aria-label="{esc(plain or "figure")}">{data["image/svg+xml"]}</div>'
        if "text/markdown" in data:
            return f'<div class="output output-markdown"><pre>{esc(data["text/markdown"])}</pre></div>'
        if "text/latex" in data:
            return f'<div class="output output-latex"><pre>{esc(data["text/latex"])}</pre></div>'
        if "application/json" in data:
            return f'<div class="output output-json"><pre>{esc(json.dumps(data["application/json"], indent=2))}</pre></div>'
        if plain is not None:
            return f'<div class="output output-text"><pre>{esc(ANSI.sub("", str(plain)))}</pre></div>'
        return ""

    def plotly(self, spec: Any, plain: Any, svg: Any = None) -> str:
        if isinstance(spec, str):
            spec = json.loads(spec)
        self.has_plotly = True
        self.figure_count += 1
        layout = spec.get("layout") or {}
        meta = layout.get("meta") or {}
        if isinstance(meta, list):
            meta = meta[0] if meta and isinstance(meta[0], dict) else {}
        summary = str(meta.get("summary") or plain or "")
        alt = str(meta.get("alt") or summary.split("\n", 1)[0] or "plotly figure")
        fig_id = f"fig-{self.figure_count}"
        payload = json.dumps({"data": spec.get("data") or [], "layout": layout,
                              "config": {**(spec.get("config") or {}), "displaylogo": False, "responsive": True}})
        payload = payload.replace("</", "<\\/")  # never end the <script> early
        caption = f'<figcaption id="{fig_id}-summary">{esc(summary)}</figcaption>' if summary else ""
        # the figure's static picture (p2plab.viz.static) for readers with JavaScript off
        static = f'<noscript><div class="static-figure">{svg}</div></noscript>' if isinstance(svg, str) and svg else ""
        return (f'<figure class="output output-plotly plotly">'
                f'<div class="plotly-graph" id="{fig_id}" role="img" aria-label="{esc(alt)}"'
                f' aria-describedby="{fig_id}-summary"></div>{static}{caption}'
                f'<script type="application/json" id="{fig_id}-data">{payload}</script></figure>')


_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the content server is local


def fetch_json(base: str, path: str) -> Any:
    with _LOCAL.open(f"{base.rstrip('/')}/{path.lstrip('/')}", timeout=60) as resp:
        return json.load(resp)


def nav_html(pages: list[dict], index_slug: str, current: str, prefix: str, title: str) -> str:
    items, open_list = [f'<a class="site-title" href="{prefix}index.html">{esc(title)}</a>'], False
    home_current = ' aria-current="page"' if current == index_slug else ""
    items.append(f'<ul><li><a href="{prefix}index.html"{home_current}>Home</a></li></ul>')
    for page in pages:
        if not page.get("slug"):
            if open_list:
                items.append("</ul>")
            items.append(f'<p class="part">{esc(page.get("title", ""))}</p><ul>')
            open_list = True
            continue
        if not open_list:
            items.append("<ul>")
            open_list = True
        cur = ' aria-current="page"' if page["slug"] == current else ""
        href = f"{prefix}{slug_path(page['slug'])}/index.html"
        items.append(f'<li><a href="{href}"{cur}>{esc(page.get("title", page["slug"]))}</a></li>')
    if open_list:
        items.append("</ul>")
    return '<nav class="toc" id="contents" aria-label="Course contents">' + "".join(items) + "</nav>"


PLOTLY_BOOT = """<script src="{prefix}_static/plotly.min.js"></script>
<script>
document.querySelectorAll('.plotly-graph').forEach(function (el) {{
  var spec = JSON.parse(document.getElementById(el.id + '-data').textContent);
  Plotly.newPlot(el, spec.data, spec.layout, spec.config);
}});
</script>"""


def render_page(doc: dict, page: dict | None, pages: list[dict], index_slug: str, project_title: str,
                site_dir: Path) -> tuple[str, str]:
    slug = doc.get("slug") or index_slug
    rel = "" if slug == index_slug else slug_path(slug)
    prefix = "../" * (rel.count("/") + 1) if rel else ""
    front = doc.get("frontmatter") or {}
    title = front.get("title") or (page or {}).get("title") or project_title
    renderer = PageRenderer(page or {}, prefix, site_dir)
    body = renderer.node(doc.get("mdast") or {})
    location = str(doc.get("location", ""))
    downloads = ""
    for export in front.get("exports") or []:
        if export.get("format") == "ipynb" and export.get("url"):
            downloads = (f'<p class="meta">Source: <code>{esc(location.lstrip("/"))}</code> · '
                         f'<a href="{esc(prefix + "build/" + export["url"].lstrip("/"))}" '
                         f'download="{esc(export.get("filename", "notebook.ipynb"))}">download the notebook</a></p>')
    real = [p for p in pages if p.get("slug")]
    slugs = [index_slug] + [p["slug"] for p in real]
    titles = {index_slug: "Home", **{p["slug"]: p.get("title", p["slug"]) for p in real}}
    pos = slugs.index(slug) if slug in slugs else -1

    def link(s: str, label: str) -> str:
        href = f"{prefix}index.html" if s == index_slug else f"{prefix}{slug_path(s)}/index.html"
        return f'<a href="{href}">{label} {esc(titles[s])}</a>'

    prev_link = link(slugs[pos - 1], "← Previous:") if pos > 0 else "<span></span>"
    next_link = link(slugs[pos + 1], "Next:") if 0 <= pos < len(slugs) - 1 else "<span></span>"
    heading = "" if front.get("content_includes_title") else f"<h1>{esc(title)}</h1>\n"
    page_title = title if slug == index_slug else f"{title} · {project_title}"
    document = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(page_title)}</title>
<link rel="stylesheet" href="{prefix}_static/site.css">
</head>
<body>
<a class="skip" href="#content">Skip to content</a>
<div class="layout">
{nav_html(pages, index_slug, slug, prefix, project_title)}
<main id="content">
<a class="to-contents" href="#contents">Course contents</a>
<article data-source="{esc(location)}">
{heading}{downloads}{body}
</article>
<nav class="pager" aria-label="Previous and next page">{prev_link}{next_link}</nav>
</main>
</div>
{PLOTLY_BOOT.format(prefix=prefix) if renderer.has_plotly else ""}
</body>
</html>
"""
    return (rel + "/index.html" if rel else "index.html"), document


def render() -> None:
    """Run by mystmd (template.yml build.render): write the static HTML into BUILD_DIRECTORY."""
    cdn = os.environ["CONTENT_CDN"]
    out = Path(os.environ["BUILD_DIRECTORY"])
    site_dir = out.parent / "site"  # mystmd's _build/site: the content and public files it serves
    config = fetch_json(cdn, "config.json")
    project = config["projects"][0]
    project_title = project.get("title") or config.get("title") or "Site"
    pages = project.get("pages") or []
    index_slug = project.get("index") or "index"
    out.mkdir(parents=True, exist_ok=True)
    static = out / "_static"
    static.mkdir(exist_ok=True)
    (static / "site.css").write_text(CSS, encoding="utf-8")
    import plotly

    shutil.copy2(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", static / "plotly.min.js")
    if (site_dir / "public").is_dir():
        shutil.copytree(site_dir / "public", out / "build", dirs_exist_ok=True)
    manifest: dict[str, Any] = {"title": project_title, "pages": []}
    for page in [None] + [p for p in pages if p.get("slug")]:
        slug = index_slug if page is None else page["slug"]
        doc = fetch_json(cdn, f"content/{slug}.json")
        path, document = render_page(doc, page, pages, index_slug, project_title, site_dir)
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(document, encoding="utf-8")
        manifest["pages"].append({"slug": slug, "source": str(doc.get("location", "")).lstrip("/"),
                                  "path": path, "title": (doc.get("frontmatter") or {}).get("title", "")})
    (out / "pages.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(f"p2plab site: wrote {len(manifest['pages'])} pages to {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: _build/html)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the course folder with myst.yml, course/ and labs/ (default: this repository)")
    parser.add_argument("--keep", action="store_true", help="keep the staging folder (for debugging)")
    parser.add_argument("--render", action="store_true", help=argparse.SUPPRESS)  # run by mystmd
    args = parser.parse_args(argv)
    if args.render:
        render()
        return 0
    manifest = build(args.out.resolve(), root=args.root.resolve(), keep=args.keep)
    pages = manifest["pages"]
    print(f"Built {len(pages)} pages into {args.out} in {manifest['seconds']} s "
          f"(Jupyter Book {check_jupyter_book()}, node {'.'.join(map(str, node_version()))}, offline).")
    print(f"Open {args.out / 'index.html'} in a browser.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
