"""`python -m bench.firstcard`: how soon the catalog shows its first card in headless Chromium.

Opens an archive's `index.html` straight from the file system (a `file://` URL, as a user
does) in the distribution's Chromium driven by Playwright, one fresh browser per round, and
reads the page's own clock (`performance.now()`, zero at navigation start) at these moments:

- **first screen evaluated**: `index-first.js` (the first screenful, which the page shows
  before it loads the rest) has run: its assignment to `window.ARCHIVER_CATALOG_FIRST`
  happened (caught by a setter put there before any page script runs);
- **data evaluated**: `index-data.js` has run, i.e. its assignment to `window.ARCHIVER_CATALOG`
  happened (the same way); the page takes over with every item right after;
- **card in DOM**: the first `#grid .card` is in the document (a MutationObserver);
- **first card painted**: the first frame after that has been produced (a task posted from a
  `requestAnimationFrame` callback runs once that frame is done), the figure the goal is about;
- **load**: the page's `load` event (`loadEventStart` of its navigation entry).

Then, once the page says it holds all the data (`data-state="ready"`), the JS heap it holds
(Chrome's `Performance.getMetrics`, `JSHeapUsedSize`). Medians of the rounds. Without
Playwright or Chromium it says so in one line and measures nothing.

    python -m bench.firstcard --tasks 200000 --rounds 5
    python -m bench.firstcard --archive DIR        # an archive whose catalog is already built
    python -m bench.catalog --tasks 20000 --browser
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 300_000  # 200,000 tasks on a busy small machine: far more than any round takes

# Runs in the page before any of its own scripts (Playwright's init scripts are not subject to
# the page's Content-Security-Policy, which forbids every script without its nonce).
PROBE = """
(() => {
  const marks = {};
  window.__firstcard = marks;
  const watch = (name, mark) => {
    let value;
    Object.defineProperty(window, name, {
      configurable: true,
      get() { return value; },
      set(v) { value = v; marks[mark] = performance.now(); },
    });
  };
  watch("ARCHIVER_CATALOG_FIRST", "first");
  watch("ARCHIVER_CATALOG", "data");
  const seen = () => {
    if (marks.card !== undefined || !document.querySelector("#grid .card")) return false;
    marks.card = performance.now();
    // rAF runs just before the frame is produced; a task posted from it runs after.
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => { marks.painted = performance.now(); };
      channel.port2.postMessage(null);
    });
    return true;
  };
  new MutationObserver((records, observer) => {
    if (seen()) observer.disconnect();
  }).observe(document, { childList: true, subtree: true });
})();
"""


class NoBrowser(Exception):
    """Playwright or Chromium is missing: the measurement cannot be made here."""


@dataclass(frozen=True, slots=True)
class FirstCard:
    """One opening of the page; times in seconds from navigation start, heap in bytes."""

    first: float  # NaN for a catalog without a first script
    data: float
    card: float
    painted: float
    load: float
    heap: int


def find_chromium() -> str | None:
    """The distribution's Chromium: `$ARCHIVER_CHROMIUM`, else `chromium` on the PATH."""
    configured = os.environ.get("ARCHIVER_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


def measure_first_card(index: Path, rounds: int) -> list[FirstCard]:
    """Open `index` `rounds` times, each in a new Chromium; raise `NoBrowser` without one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise NoBrowser("Playwright is not installed (pip install -e '.[test]')") from error
    chromium = find_chromium()
    if chromium is None:
        raise NoBrowser("no Chromium (apt-get install chromium, or set $ARCHIVER_CHROMIUM)")
    results = []
    with sync_playwright() as playwright:
        for _ in range(rounds):
            # A new browser each round: nothing of the previous opening (heap, compiled
            # scripts) helps the next; the file itself stays in the OS page cache, as it does
            # for a user who opens the catalog a second time.
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                results.append(_open_once(browser, index))
            finally:
                browser.close()
    return results


def _open_once(browser: Any, index: Path) -> FirstCard:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.add_init_script(PROBE)
    page.goto(index.resolve().as_uri(), wait_until="load", timeout=TIMEOUT_MS)
    # Functions, not expressions: evaluating an expression string is what the CSP forbids.
    # The full data is loaded after the first paint, maybe after the `load` event: wait for it
    # too, so that its time and the heap of the whole catalog are read.
    page.wait_for_function(
        "() => window.__firstcard && window.__firstcard.painted !== undefined"
        " && document.documentElement.dataset.state === 'ready'",
        timeout=TIMEOUT_MS,
    )
    marks = page.evaluate(
        "() => ({...window.__firstcard, "
        "load: performance.getEntriesByType('navigation')[0].loadEventStart})"
    )
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    return FirstCard(
        first=marks.get("first", float("nan")) / 1000,
        data=marks.get("data", float("nan")) / 1000,
        card=marks["card"] / 1000,
        painted=marks["painted"] / 1000,
        load=marks["load"] / 1000,
        heap=int(metrics.get("JSHeapUsedSize", 0)),
    )


def report(results: list[FirstCard]) -> list[str]:
    """The lines that say what the rounds measured: medians, then every round."""

    def line(label: str, values: list[float]) -> str:
        each = ", ".join(f"{v:.2f}" for v in values)
        return f"{label}: median {statistics.median(values):.2f} s ({each})"

    heap = statistics.median(r.heap for r in results)
    return [
        line("first card painted", [r.painted for r in results]),
        line("  index-first.js evaluated", [r.first for r in results]),
        line("  index-data.js evaluated", [r.data for r in results]),
        line("  first card in the DOM", [r.card for r in results]),
        line("  load event", [r.load for r in results]),
        f"  JS heap used: median {heap / 1e6:.0f} MB",
    ]


def browser_lines(index: Path, rounds: int) -> list[str]:
    """`report` of `rounds` openings of `index`, or one line saying why it was skipped."""
    try:
        return report(measure_first_card(index, rounds))
    except NoBrowser as missing:
        return [f"first card: skipped, {missing}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.firstcard", description=__doc__)
    parser.add_argument("--tasks", type=int, default=200_000, help="tasks (default 200,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--archive", type=Path, help="an archive with its catalog built")
    parser.add_argument("--workdir", type=Path, help="where to build it (default: a temp folder)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, {platform.machine()}, load {os.getloadavg()[0]:.1f}")
    if args.archive is not None:
        for line in browser_lines(args.archive / "index.html", args.rounds):
            print(line)
        return 0
    from archiver.catalog.build import write_catalog
    from bench.catalog import build_archive

    work = Path(tempfile.mkdtemp(prefix="bench-firstcard-", dir=args.workdir))
    try:
        root = work / "archive"
        build_archive(root, args.tasks, sidecars=False)
        index = write_catalog(root)
        size = (root / "index-data.js").stat().st_size
        small = (root / "index-first.js").stat().st_size
        print(
            f"{args.tasks:,} tasks, index-data.js {size / 1e6:.0f} MB,"
            f" index-first.js {small / 1e3:.0f} KB"
        )
        for line in browser_lines(index, args.rounds):
            print(line)
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
