"""The catalog's first screen in headless Chromium: shown from `index-first.js` alone.

Uses the browser and page helpers of `test_catalog_browser` (and skips as it does).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from archiver.catalog import first as first_module
from archiver.catalog.build import DATA_NAME, write_catalog
from tests.catalog_fixture import build_archive, read_catalog_data
from tests.test_catalog_browser import CARDS, browser, open_catalog
from tests.test_catalog_first import newest_first, read_first

if TYPE_CHECKING:  # imported by test_catalog_browser, which skips the module without it
    from playwright.sync_api import Browser

__all__ = ["browser"]  # the module's fixture, shared

pytestmark = pytest.mark.browser

# Before any page script: when index-data.js assigns its data, note the cards already shown.
BEFORE_FULL = """
(() => {
  let value;
  Object.defineProperty(window, "ARCHIVER_CATALOG", {
    configurable: true,
    get() { return value; },
    set(v) {
      value = v;
      window.__before = {
        ids: [...document.querySelectorAll("#grid .card")].map(c => c.dataset.id),
        state: document.documentElement.dataset.state,
        count: document.getElementById("count").textContent,
      };
    },
  });
})();
"""


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An archive of 30 tasks whose first script holds the newest 8."""
    monkeypatch.setattr(first_module, "FIRST_TASKS", 8)
    built = build_archive(tmp_path / "archive", tasks=30)
    write_catalog(built.root)
    return built.root


def test_first_cards_come_before_the_full_data_then_all_of_it(browser: Browser, root: Path) -> None:
    newest = [task["id"] for task in newest_first(read_catalog_data(root)["tasks"])]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(BEFORE_FULL)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto((root / "index.html").as_uri())
        page.wait_for_selector("html[data-state=ready]")
        before = page.evaluate("() => window.__before")
        # The full data ran after the first screen was up, with the newest 8 from index-first.js.
        assert before["state"] == "first"
        assert before["ids"] == newest[:8]
        assert before["count"] == "Showing 8 of 30 videos (loading the rest…)"
        ids = page.eval_on_selector_all(CARDS, "cards => cards.map(c => c.dataset.id)")
        assert ids == newest, "then every task, in the same order"
        assert page.inner_text("#count") == "30 videos"
        assert errors == []
    finally:
        context.close()


def test_without_the_full_data_the_first_screen_still_shows(browser: Browser, root: Path) -> None:
    first = [task["id"] for task in read_first(root)["tasks"]]
    (root / DATA_NAME).unlink()

    opened = open_catalog(browser, root)
    try:
        assert opened.page.eval_on_selector_all(CARDS, "c => c.map(x => x.dataset.id)") == first
        assert "archiver index" in opened.page.inner_text("#notice")
        assert opened.page.inner_text("#count") == "Showing only the newest 8 videos"
        assert "30 videos" in opened.page.inner_text("#summary"), "the counts are of all"
        # A search needs all the data: it says it is loading rather than search 8 tasks.
        opened.page.fill("#search", "neon")
        opened.page.wait_for_function(
            "() => document.getElementById('count').textContent.startsWith('Loading all 30')"
        )
        assert opened.page.locator(CARDS).count() == 0
    finally:
        opened.page.context.close()
