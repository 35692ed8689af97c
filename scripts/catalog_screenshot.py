"""Take `docs/catalog.png`: the catalog of a fresh `archiver demo`, in headless Chromium.

    python scripts/catalog_screenshot.py [--out docs/catalog.png]

Needs Playwright's Python package (in the `test` extra) and the distribution's Chromium
(`apt-get install chromium`, or `$ARCHIVER_CHROMIUM`), as the browser tests do; the demo's
titles need `fonts-noto-cjk` and `fonts-noto-color-emoji` to show as text, not boxes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "catalog.png")
    args = parser.parse_args(argv)
    chromium = os.environ.get("ARCHIVER_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        print("no chromium: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="catalog-") as folder:
        archive = Path(folder) / "archiver-demo"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "-m", "archiver", "demo", str(archive)],
            env=env,
            check=True,
            stderr=subprocess.DEVNULL,
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((archive / "index.html").as_uri())
            page.wait_for_selector("html[data-state=ready]")
            # A function, not an expression: the page's CSP forbids the eval expressions need.
            # Covers load lazily: those below the fold never load, and need not.
            page.wait_for_function(
                "() => [...document.images].filter(image => "
                "image.getBoundingClientRect().top < innerHeight).every(image => image.complete)"
            )
            page.screenshot(path=str(args.out))
            browser.close()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
