"""Screenshot every HTML page in a directory with headless chromium (1400 px wide): NAME.png."""

from __future__ import annotations

import sys
from pathlib import Path

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main(indir: str, outdir: str, width: int = 1400) -> None:
    from playwright.sync_api import sync_playwright

    src, dst = Path(indir), Path(outdir)
    dst.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": width, "height": 1000})
        for html in sorted(src.glob("*.html")):
            page.goto(html.resolve().as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg")
            page.wait_for_timeout(300)
            page.locator(".js-plotly-plot").first.screenshot(path=str(dst / f"{html.stem}.png"))
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1400)
