"""The catalog from the manifest alone: what a run keeps of each item, and older manifests.

A run keeps what the catalog shows of each item in the manifest when it records the item; a
manifest of schema version 2 is brought to version 3 in one transaction, and its items are
described once, from their sidecars, by the first catalog built after. Either way the catalog
is the same as one made from the sidecars, and once made, no sidecar is read again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from archiver.catalog import backfill
from archiver.catalog.build import DATA_NAME, write_catalog
from archiver.catalog.data import js
from archiver.errors import ArchiveWriteError
from archiver.standin import DatasetSpec, StandIn
from archiver.store.manifest import ManifestStore
from tests.catalog_fixture import BuiltArchive, build_archive
from tests.conftest import StandInFactory
from tests.support import config_dict, run_cli, write_config

SPEC = DatasetSpec(vth_tasks=20, chanjing_tasks=20, templates=3)


def data_body(archive: Path) -> str:
    """`index-data.js` from its `"tasks"` line on: all but this build's token and time."""
    return (archive / DATA_NAME).read_text(encoding="utf-8").split("\n", 2)[2]


def to_version_2(archive: Path) -> None:
    """The manifest as an archiver of schema version 2 left it: no item described."""
    db = sqlite3.connect(archive / "manifest.sqlite3")
    with db:
        db.execute("ALTER TABLE items DROP COLUMN catalog")
        db.execute("ALTER TABLE items DROP COLUMN catalog_texts")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.close()


def described(archive: Path) -> tuple[str, int, int]:
    """The schema version; how many archived items are described, and how many are not."""
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        yes, no = db.execute(
            "SELECT count(catalog), count(*) - count(catalog) FROM items WHERE state = 'archived'"
        ).fetchone()
    finally:
        db.close()
    return str(version), int(yes), int(no)


def remove_sidecars(archive: Path) -> int:
    sidecars = list(archive.rglob("metadata.json"))
    for sidecar in sidecars:
        sidecar.unlink()
    return len(sidecars)


async def archive_with_catalog(make_standin: StandInFactory, tmp_path: Path) -> Path:
    standin: StandIn = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, catalog=True))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    return tmp_path / "archive"


async def test_a_run_describes_each_item_as_its_sidecar_does(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    archive = await archive_with_catalog(make_standin, tmp_path)
    version, yes, no = described(archive)
    assert (version, no) == ("3", 0) and yes > 20, "every item described when recorded"
    from_the_run = data_body(archive)
    assert '"title":' in from_the_run and '"duration":' in from_the_run

    to_version_2(archive)
    write_catalog(archive)

    assert described(archive) == ("3", yes, 0), "migrated, and each item described once"
    assert data_body(archive) == from_the_run


async def test_once_described_no_sidecar_is_read(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    archive = await archive_with_catalog(make_standin, tmp_path)
    before = data_body(archive)
    assert remove_sidecars(archive) > 20

    write_catalog(archive)

    assert data_body(archive) == before
    assert "sidecar unreadable" not in before


def test_items_of_an_older_archiver_are_described_once(tmp_path: Path) -> None:
    archive = build_archive(tmp_path / "archive", unreadable_sidecar=True)
    version, yes, no = described(archive.root)
    assert (yes, no) == (0, len(archive.tasks) + len(archive.templates))

    write_catalog(archive.root)
    first = data_body(archive.root)

    assert described(archive.root) == (version, no - 1, 1), "all but the unreadable sidecar"
    remove_sidecars(archive.root)
    write_catalog(archive.root)
    assert data_body(archive.root) == first
    assert first.count('"state":"sidecar unreadable"') == 1


def test_an_unreadable_sidecar_is_read_again_by_the_next_catalog(tmp_path: Path) -> None:
    archive = build_archive(tmp_path / "archive", unreadable_sidecar=True)
    write_catalog(archive.root)
    broken = next(path for path in archive.root.rglob("metadata.json") if _unreadable(path))
    task_id = broken.parent.name
    document = {"type": "chanjing_lip_sync", "record": {"id": task_id, "duration": 3000}}
    broken.write_text(json.dumps(document), encoding="utf-8")

    write_catalog(archive.root)

    entry = next(line for line in data_body(archive.root).splitlines() if task_id in line)
    assert '"state":"complete"' in entry and '"duration":3.0' in entry
    assert described(archive.root)[2] == 0


def _unreadable(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:
        return True
    return False


def test_the_migration_is_one_transaction(tmp_path: Path) -> None:
    archive = build_archive(tmp_path / "archive")
    to_version_2(archive.root)
    db = sqlite3.connect(archive.root / "manifest.sqlite3")
    with db:  # a column in the way of the migration's second statement
        db.execute("ALTER TABLE items ADD COLUMN catalog_texts TEXT")
    db.close()

    with pytest.raises(ArchiveWriteError):
        ManifestStore.open(archive.root / "manifest.sqlite3")

    db = sqlite3.connect(archive.root / "manifest.sqlite3")
    columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
    (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert (version, "catalog" in columns) == ("2", False), "the first statement was undone"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.lines.append(record.getMessage())


@pytest.mark.parametrize("slow", [False, True])
def test_describing_older_items_is_told_only_when_it_takes_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    archive = build_archive(tmp_path / "archive", tasks=60)
    if slow:  # as if reading the sidecars took longer than the user should wait unawares
        monkeypatch.setattr(backfill, "SAY_AFTER", 0.0)
    lines = _Lines()
    logger = logging.getLogger("archiver")
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        write_catalog(archive.root)
        write_catalog(archive.root)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)

    if slow:
        assert len(lines.lines) == 1, lines.lines
        assert "older archiver" in lines.lines[0] and "once" in lines.lines[0]
    else:
        assert lines.lines == []


def test_every_entry_is_written_as_json_itself_writes_it(archive_any: BuiltArchive) -> None:
    write_catalog(archive_any.root)
    text = (archive_any.root / DATA_NAME).read_text(encoding="utf-8")
    lines = [line.rstrip(",") for line in text.splitlines() if line.startswith('{"source"')]

    assert len(lines) == len(archive_any.tasks) + len(archive_any.templates)
    for line in lines:
        assert js(json.loads(line)) == line


@pytest.fixture
def archive_any(tmp_path: Path) -> BuiltArchive:
    """A small archive whose texts hold markup, quotes, accents, and one gone file."""
    built = build_archive(tmp_path / "archive", unreadable_sidecar=True)
    (built.root / built.tasks[3].files["video"]).unlink()
    return built
