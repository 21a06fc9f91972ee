"""Open a report.html in headless Chromium, as a security lead would: 1,400 px wide, no network.

Used by the browser test in ``test_suite.py`` and, by hand, to check the default run's report and
to refresh the screenshots in ``docs/img/``::

    .venv/bin/python tests/report_browser.py runs/default/report.html --shots docs/img

It drives the Chromium already on the machine (``chromium`` on the path or ``/usr/bin/chromium``)
through Playwright, and downloads no browser. What it measures (``probe``): JavaScript errors,
requests that would leave the machine (aborted), elements wider than the window, where the
verdict and the scenario matrix sit, and whether every image decoded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 1400, 900
#: Chromium without its background traffic: on a closed network it would try, and log failures
FLAGS = [
    "--disable-gpu",
    "--no-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    """The path of an installed Chromium, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@contextmanager
def opened(report: Path, errors: list[str], outside: list[str]) -> Iterator[Any]:
    """A page showing ``report`` at WIDTH x HEIGHT; JavaScript errors and off-machine requests are appended to the lists."""
    from playwright.sync_api import sync_playwright

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.route("**/*", route)
            page.goto(Path(report).resolve().as_uri(), wait_until="load")
            yield page
        finally:
            browser.close()


#: Runs in the page: what overflows the window, where the first screen's parts are, the images' widths
PROBE = """() => {
  const wide = [...document.body.querySelectorAll('*')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .map(e => e.tagName.toLowerCase() + (e.textContent || '').trim().slice(0, 40));
  const heading = t => [...document.querySelectorAll('h2, h3')].find(h => h.textContent.trim().startsWith(t));
  const top = t => { const h = heading(t); return h ? h.getBoundingClientRect().top + window.scrollY : null; };
  const after = t => {  // the first table after the heading (in it or in a following block)
    for (let e = heading(t)?.nextElementSibling; e; e = e.nextElementSibling) {
      const table = e.tagName === 'TABLE' ? e : e.querySelector('table');
      if (table) return table.getBoundingClientRect().top + window.scrollY;
      if (/^H[12]$/.test(e.tagName)) return null;
    }
    return null;
  };
  return {
    viewport: window.innerWidth,
    scroll_width: document.documentElement.scrollWidth,
    wide: wide,
    verdict_top: top('Verdict'),
    matrix_top: top('Scenario matrix'),
    matrix_table_top: after('Scenario matrix'),
    images: [...document.images].map(i => i.complete ? i.naturalWidth : -1),
  };
}"""


def probe(report: Path) -> dict[str, Any]:
    """What the browser saw of ``report`` (see the module docstring)."""
    errors: list[str] = []
    outside: list[str] = []
    with opened(report, errors, outside) as page:
        seen = page.evaluate(PROBE)
    return seen | {"errors": errors, "outside_requests": outside}


def screenshots(report: Path, out: Path, scenario_plot: str = "Records exposed over time") -> list[Path]:
    """The first screen, and the first scenario's exposure plots, as small PNG files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    first, plots = out / "report-first-screen.png", out / "report-scenario-plots.png"
    with opened(report, [], []) as page:
        page.screenshot(path=str(first))
        heading = page.locator("h3", has_text=scenario_plot).first
        page.evaluate("h => window.scrollTo(0, h.getBoundingClientRect().top + window.scrollY - 8)", heading.element_handle())
        page.screenshot(path=str(plots))
    from PIL import Image  # matplotlib's own dependency

    for p in (first, plots):  # 128 colours: a quarter of the bytes, no visible loss on tables and line plots
        Image.open(p).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(p, optimize=True)
    return [first, plots]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--shots", type=Path, help="write the screenshots into this folder")
    args = ap.parse_args(argv)
    if chromium() is None:
        print("no Chromium found (chromium on the path or /usr/bin/chromium)", file=sys.stderr)
        return 2
    print(json.dumps(probe(args.report), indent=1))
    if args.shots:
        for p in screenshots(args.report, args.shots):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
