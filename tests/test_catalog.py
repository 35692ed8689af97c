"""The catalog writer without a browser: what it writes, and what it never writes.

The page itself is exercised in a real browser by `test_catalog_browser.py`; here the data and
the HTML are checked as files: atomic replacement, escaping, relative links only, and a 20,000
task archive going through.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from archiver.catalog.build import DATA_NAME, FIRST_NAME, INDEX_NAME, write_catalog
from archiver.errors import ArchiverError, ManifestError
from archiver.store.manifest import ManifestStore
from tests.catalog_fixture import (
    CHANJING,
    FACESWAP,
    XSS_TITLE,
    BuiltArchive,
    build_archive,
    read_catalog_data,
    shared_archive,
)

LINK_KEYS = ("folder", "sidecar", "video", "image")


@pytest.fixture
def archive(tmp_path: Path) -> BuiltArchive:
    """A fresh small archive with one unreadable sidecar, its catalog not yet written."""
    return build_archive(tmp_path / "archive", unreadable_sidecar=True)


def entries(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every task and template entry of the catalog data."""
    yield from data["tasks"]
    yield from data["templates"]


def hrefs(entry: dict[str, Any]) -> Iterator[str]:
    """Every link an entry gives the page."""
    for key in LINK_KEYS:
        if key in entry:
            yield entry[key]
    for file in entry["files"]:
        if file["href"] is not None:
            yield file["href"]


class _Links(HTMLParser):
    """Collects every src and href attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]


def test_writes_page_and_data_with_one_entry_per_archived_item(archive: BuiltArchive) -> None:
    index = write_catalog(archive.root)

    assert index == archive.root / INDEX_NAME
    data = read_catalog_data(archive.root)
    assert sorted((t["source"], t["id"]) for t in data["tasks"]) == sorted(
        (t.source, t.id) for t in archive.tasks
    )
    assert sorted(t["id"] for t in data["templates"]) == ["1", "2", "3", "4", "5"]
    assert "9000001" not in {t["id"] for t in data["tasks"]}, "a pending task was listed"
    assert data["sources"][FACESWAP]["tasks"] == len(archive.tasks_of(FACESWAP))
    assert data["sources"][CHANJING]["type"] == "chanjing_lip_sync"
    page = index.read_text(encoding="utf-8")
    assert f'data-token="{data["token"]}"' in page, "the page must name the data it expects"
    assert f'<script src="{FIRST_NAME}"' in page, "the first screen's script, in the page"
    assert f'data-full="{DATA_NAME}"' in page, "the full data, which the page's script loads"


def test_texts_come_from_the_records(archive: BuiltArchive) -> None:
    write_catalog(archive.root)
    data = read_catalog_data(archive.root)
    tasks = {task["id"]: task for task in data["tasks"]}

    first = tasks["141"]
    assert first["title"] == "Sunset over the bay"
    assert first["template"] == "1"
    assert first["prompt"].startswith("A slow dolly shot")
    assert "created" not in first and "/undated/" in first["folder"]
    with_duration = [t for t in data["tasks"] if t["source"] == CHANJING and "duration" in t]
    assert with_duration and all(t["duration"] > 0 for t in with_duration)
    template = next(t for t in data["templates"] if t["id"] == "2")
    assert template["title"] == XSS_TITLE
    assert template["author"] == "studio-2"
    older = [f for f in template["files"] if not f["current"]]
    assert [f["name"] for f in older] == ["video.v1.mp4"]
    assert template["video"].endswith("video.v2.mp4")


def test_data_script_cannot_close_a_script_tag(archive: BuiltArchive) -> None:
    write_catalog(archive.root)
    text = (archive.root / DATA_NAME).read_text(encoding="utf-8")

    assert "</" not in text
    assert "<" not in text.split("\n", 1)[1], "every '<' in the data is escaped"
    data = read_catalog_data(archive.root)
    prompts = {template["prompt"] for template in data["templates"]}
    assert "</script><script>alert('prompt')</script> & other \"quoted\" text" in prompts
    assert XSS_TITLE in {template["title"] for template in data["templates"]}


def test_every_link_is_relative_and_stays_in_the_archive(archive: BuiltArchive) -> None:
    write_catalog(archive.root)
    data = read_catalog_data(archive.root)
    root = archive.root.resolve()

    links = [link for entry in entries(data) for link in hrefs(entry)]
    assert len(links) > 3 * len(archive.tasks)
    for link in links:
        assert not re.match(r"^[a-z][a-z0-9+.-]*:|^/|^\\", link, re.IGNORECASE), link
        target = (root / unquote(link)).resolve()
        assert target.is_relative_to(root), link
        assert target.exists(), link
    for entry in entries(data):
        for file in entry["files"]:  # original URLs are kept, as text only
            assert file["url"].startswith(("https://", "ftp://"))


def test_page_links_nothing_outside_and_never_parses_html(archive: BuiltArchive) -> None:
    page = write_catalog(archive.root).read_text(encoding="utf-8")

    parser = _Links()
    parser.feed(page)
    assert parser.links == [FIRST_NAME]
    assert not re.search(r"https?:|//[a-z]", page.replace("http-equiv", ""), re.IGNORECASE)
    assert "default-src 'none'" in page, "the CSP keeps even a mistake from reaching out"
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in page, f"the page script uses {sink}"


def test_states_of_files(archive: BuiltArchive) -> None:
    gone = next(t for t in archive.tasks_of(CHANJING) if t.id not in ("", None))
    (archive.root / gone.files["video"]).unlink()
    write_catalog(archive.root)
    tasks = {task["id"]: task for task in read_catalog_data(archive.root)["tasks"]}

    assert tasks["142"]["state"] == "cover missing"
    assert tasks["142"]["level"] == "warn"
    assert "image" not in tasks["142"] and tasks["142"]["video"]
    assert tasks["142"]["problems"] == ["cover not archived: unsupported URL scheme 'ftp'"]
    assert tasks[gone.id]["state"] == "file missing on disk"
    assert "video" not in tasks[gone.id]
    assert tasks["143"]["state"] == "complete" and tasks["143"]["problems"] == []


def test_unreadable_sidecar_still_shows_from_the_manifest(archive: BuiltArchive) -> None:
    write_catalog(archive.root)
    tasks = read_catalog_data(archive.root)["tasks"]

    broken = [task for task in tasks if task["state"] == "sidecar unreadable"]
    assert len(broken) == 1
    assert broken[0]["level"] == "error"
    assert broken[0]["video"].endswith("/video.mp4") and broken[0]["created"]
    assert "title" not in broken[0] and "type" not in broken[0]


def test_records_of_any_shape_are_survived(archive: BuiltArchive) -> None:
    task = archive.tasks_of(FACESWAP)[5]
    sidecar = archive.root / task.folder / "metadata.json"
    odd = json.loads(sidecar.read_text(encoding="utf-8"))
    odd["record"] = {"videoTemp": ["not", "an", "object"], "duration": True, "title": 7}
    odd["missing"] = "not a mapping"
    sidecar.write_text(json.dumps(odd), encoding="utf-8")

    write_catalog(archive.root)

    entry = next(t for t in read_catalog_data(archive.root)["tasks"] if t["id"] == task.id)
    assert entry["state"] == "complete"
    assert not {"title", "duration", "template", "prompt"} & entry.keys()


def test_rewrite_replaces_both_files_atomically(archive: BuiltArchive) -> None:
    (archive.root / INDEX_NAME).write_text("stale", encoding="utf-8")
    write_catalog(archive.root)
    first = read_catalog_data(archive.root)["token"]
    write_catalog(archive.root)

    assert read_catalog_data(archive.root)["token"] != first
    assert first not in (archive.root / INDEX_NAME).read_text(encoding="utf-8")
    assert not list(archive.root.glob(".*.tmp")), "a temp file was left behind"
    assert (archive.root / INDEX_NAME).stat().st_mode & 0o644 == 0o644


def test_bad_manifest_leaves_the_old_catalog_whole(archive: BuiltArchive) -> None:
    write_catalog(archive.root)
    before = {
        name: (archive.root / name).read_bytes() for name in (INDEX_NAME, DATA_NAME, FIRST_NAME)
    }
    for suffix in ("", "-wal", "-shm"):
        (archive.root / f"manifest.sqlite3{suffix}").unlink(missing_ok=True)
    (archive.root / "manifest.sqlite3").write_bytes(b"this is not a database" * 100)

    with pytest.raises(ManifestError, match=r"manifest\.sqlite3"):
        write_catalog(archive.root)
    assert {n: (archive.root / n).read_bytes() for n in before} == before
    assert not list(archive.root.glob(".*.tmp"))


def test_empty_manifest_gives_an_empty_catalog(tmp_path: Path) -> None:
    ManifestStore.open(tmp_path / "manifest.sqlite3").close()  # as a first run makes it

    write_catalog(tmp_path)

    data = read_catalog_data(tmp_path)
    assert (data["tasks"], data["templates"], data["sources"]) == ([], [], {})


def test_missing_manifest_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ArchiverError) as raised:
        write_catalog(tmp_path)

    assert isinstance(raised.value, ManifestError)
    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "manifest.sqlite3") in message
    assert not list(tmp_path.iterdir()), "nothing is written without a manifest"


def test_reads_the_last_commit_while_a_run_writes(archive: BuiltArchive) -> None:
    writer = sqlite3.connect(archive.root / "manifest.sqlite3", isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO items (source, kind, item_id, state, folder) "
            "VALUES ('faceswap', 'task', '777', 'archived', 'faceswap/2026/11/777')"
        )
        write_catalog(archive.root)
        assert "777" not in {t["id"] for t in read_catalog_data(archive.root)["tasks"]}
        writer.execute("COMMIT")
    finally:
        writer.close()
    write_catalog(archive.root)
    added = next(t for t in read_catalog_data(archive.root)["tasks"] if t["id"] == "777")
    assert added["state"] == "sidecar unreadable"


def test_paths_that_could_leave_the_archive_are_not_linked(archive: BuiltArchive) -> None:
    with sqlite3.connect(archive.root / "manifest.sqlite3") as db:
        db.execute(
            "INSERT INTO items (source, kind, item_id, state, folder, created_at) "
            "VALUES ('faceswap', 'task', 'evil', 'archived', '../outside', '2025-01-01T00:00:00Z')"
        )
        db.execute(
            "INSERT INTO files (source, kind, item_id, name, role, path, url, bytes, sha256) "
            "VALUES ('faceswap', 'task', 'evil', 'video.mp4', 'video', '../../etc/passwd',"
            " 'javascript:alert(1)', 1, 'x')"
        )
    db.close()
    write_catalog(archive.root)
    evil = next(t for t in read_catalog_data(archive.root)["tasks"] if t["id"] == "evil")

    assert not any(key in evil for key in LINK_KEYS)
    assert evil["files"][0]["href"] is None and evil["files"][0]["present"] is False


@pytest.mark.timeout(600)  # building 20,000 task folders is slow on a slow disk
def test_twenty_thousand_tasks(tmp_path_factory: pytest.TempPathFactory) -> None:
    big = shared_archive(tmp_path_factory.getbasetemp(), 20_000)

    write_catalog(big.root)

    data = read_catalog_data(big.root)
    assert len(data["tasks"]) == 20_000
    assert sum(1 for task in data["tasks"] if task["level"] == "ok") >= 19_990
