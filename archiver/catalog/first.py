"""The catalog's first script, `index-first.js`: the first screenful, to show before the rest.

At 200,000 tasks `index-data.js` is close to 200 MB, and the browser parses all of it before
any of it runs (17 s on a small machine). The page therefore loads a small script first: the
counts the header shows, every source, and the first `FIRST_TASKS` tasks in the page's default
order (newest first), with the templates they use. The page shows those at once and loads the
full data after its first paint; until that is in, search, filters and the other orders wait.

The tasks are picked while `write_data` streams the manifest (a heap of `FIRST_TASKS`), so the
full data is still written in one pass; each entry is the very text written into the full data.
"""

from __future__ import annotations

import heapq
import json
from typing import TextIO

from archiver.catalog.data import DATA_FORMAT, js
from archiver.store.queries import CatalogItem

# More than a large screen shows at once (cards are at least 230 px wide and the page renders
# 60 at a time), and small enough to parse in milliseconds (about 100 KB).
FIRST_TASKS = 100

# Larger is shown earlier: dated tasks before undated ones, newer first, then the larger id;
# undated ones in the data's order. As the page's `byDate("new")` has it (its strings compare
# by UTF-16 unit, Python's by code point: the same for the ASCII dates and ids of records).
_Rank = tuple[int, str, str] | tuple[int, int]


class FirstScreen:
    """Collects what `index-first.js` holds while the full data is written."""

    def __init__(self, size: int | None = None) -> None:
        self.size = FIRST_TASKS if size is None else size
        self._heap: list[tuple[_Rank, int, str]] = []
        self._templates: dict[tuple[str, str], str] = {}
        self._seen = 0
        self.sources = "{}"

    def task(self, item: CatalogItem, entry: str) -> None:
        """Offer a task and its entry (as written into the full data)."""
        self._seen += 1
        rank: _Rank = (1, item.created_at, item.id) if item.created_at else (0, -self._seen)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, (rank, self._seen, entry))
        elif rank > self._heap[0][0]:
            heapq.heapreplace(self._heap, (rank, self._seen, entry))

    def template(self, item: CatalogItem, entry: str) -> None:
        """Keep a template's entry, in case one of the first tasks uses it."""
        self._templates[(item.source, item.id)] = entry

    def tasks(self) -> list[str]:
        """The first tasks' entries, in the page's default order."""
        return [entry for _, _, entry in sorted(self._heap, reverse=True)]

    def templates(self, tasks: list[str]) -> list[str]:
        """The entries of the templates `tasks` use (a card may show its template's title)."""
        used: dict[tuple[str, str], str] = {}
        for entry in tasks:
            task = json.loads(entry)
            key = (task["source"], str(task.get("template")))
            if "template" in task and key in self._templates:
                used[key] = self._templates[key]
        return list(used.values())


def write_first(
    first: FirstScreen, out: TextIO, build: tuple[str, str], counts: dict[str, int]
) -> None:
    """Write `index-first.js` of a build whose full data `write_data` wrote into `first`."""
    token, built_at = build
    tasks = first.tasks()
    total = {"tasks": counts["tasks"], "templates": counts["templates"]}
    out.write(
        "/* The archiver catalog's first screen, rebuilt from the manifest. Do not edit. */\n"
    )
    out.write(f'window.ARCHIVER_CATALOG_FIRST = {{"format": {DATA_FORMAT}, ')
    out.write(f'"token": {js(token)}, "built": {js(built_at)}, "counts": {js(total)},\n')
    out.write('"tasks": [\n' + ",\n".join(tasks))
    out.write('\n],\n"templates": [\n' + ",\n".join(first.templates(tasks)))
    out.write(f'\n],\n"sources": {first.sources}\n}};\n')
