"""The catalog's first script, `index-first.js`: the first screenful of the full data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archiver.catalog import first as first_module
from archiver.catalog.build import DATA_NAME, FIRST_NAME, write_catalog
from tests.catalog_fixture import BuiltArchive, build_archive, read_catalog_data

PREFIX = "window.ARCHIVER_CATALOG_FIRST = "


def read_first(archive_dir: Path) -> dict[str, Any]:
    """The object that `index-first.js` assigns, parsed as JSON."""
    text = (archive_dir / FIRST_NAME).read_text(encoding="utf-8")
    body = text[text.index(PREFIX) + len(PREFIX) :].rstrip().removesuffix(";")
    value: dict[str, Any] = json.loads(body)
    return value


def entry_lines(text: str, key: str) -> list[str]:
    """The entries of the `key` array of a data script, as written: one line each."""
    block = text.split(f'"{key}": [\n', 1)[1].split("\n]", 1)[0]
    return [line.removesuffix(",") for line in block.split("\n") if line]


def newest_first(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`tasks` in the page's default order (catalog.js, `byDate("new")`)."""
    dated = [task for task in tasks if task.get("created")]
    undated = [task for task in tasks if not task.get("created")]  # in the data's order
    return sorted(dated, key=lambda t: (t["created"], t["id"]), reverse=True) + undated


@pytest.fixture
def archive(tmp_path: Path) -> BuiltArchive:
    return build_archive(tmp_path / "archive", tasks=30, unreadable_sidecar=True)


def test_first_items_are_the_first_of_the_full_data(
    archive: BuiltArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(first_module, "FIRST_TASKS", 7)
    write_catalog(archive.root)

    data = read_catalog_data(archive.root)
    first = read_first(archive.root)
    assert first["token"] == data["token"] and first["built"] == data["built"]
    assert first["counts"] == {"tasks": len(data["tasks"]), "templates": len(data["templates"])}
    assert first["sources"] == data["sources"]
    assert first["tasks"] == newest_first(data["tasks"])[:7]
    # The very text of each entry, not only the same values.
    full_text = (archive.root / DATA_NAME).read_text(encoding="utf-8")
    first_text = (archive.root / FIRST_NAME).read_text(encoding="utf-8")
    full_lines = entry_lines(full_text, "tasks") + entry_lines(full_text, "templates")
    assert len(entry_lines(first_text, "tasks")) == 7
    for line in entry_lines(first_text, "tasks") + entry_lines(first_text, "templates"):
        assert line in full_lines
    # The templates the first tasks use, for the titles their cards borrow; no others.
    used = {(t["source"], t["template"]) for t in first["tasks"] if "template" in t}
    assert {(t["source"], t["id"]) for t in first["templates"]} == used & {
        (t["source"], t["id"]) for t in data["templates"]
    }


def test_a_small_archive_is_all_in_the_first_script(archive: BuiltArchive) -> None:
    write_catalog(archive.root)

    data = read_catalog_data(archive.root)
    first = read_first(archive.root)
    assert first["tasks"] == newest_first(data["tasks"])
    undated = [task["id"] for task in first["tasks"] if "created" not in task]
    assert undated and [t["id"] for t in first["tasks"][-len(undated) :]] == undated
    text = (archive.root / FIRST_NAME).read_text(encoding="utf-8")
    assert "<" not in text.split("\n", 1)[1], "every '<' in the data is escaped"


def test_an_empty_archive_has_an_empty_first_script(tmp_path: Path) -> None:
    built = build_archive(tmp_path / "archive", tasks=0)
    write_catalog(built.root)

    first = read_first(built.root)
    assert first["tasks"] == [] and first["templates"] == []
    assert first["counts"] == {
        "tasks": 0,
        "templates": len(read_catalog_data(built.root)["templates"]),
    }
