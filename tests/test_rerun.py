"""A rerun that finds nothing new: what it spares itself, and what it still checks.

An unchanged record is known by a cheap digest, so nothing of it is written to the manifest
(that the run listed it is kept in a temporary table, for the run); SHA256SUMS are not
rewritten while the manifest's `changes` mark and the file stand where they were. A changed
record, a record listed twice, an older manifest and a manifest changed behind the lists'
back are each handled as before.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from archiver.pipeline import listing
from archiver.standin import DatasetSpec
from archiver.store.checksums import write_checksums
from archiver.store.manifest import ManifestStore
from archiver.store.schema import SCHEMA_VERSION
from archiver.store.sidecar import record_digest
from tests.conftest import StandInFactory
from tests.support import config_dict, run_cli, sidecars, write_config

SPEC = DatasetSpec(vth_tasks=40, chanjing_tasks=0, succeeded_share=1.0, templates=3)

# The items table as schema version 1 had it, for a manifest an older archiver wrote.
ITEMS_V1 = """
CREATE TABLE items_v1 (
    source TEXT NOT NULL, kind TEXT NOT NULL, item_id TEXT NOT NULL, state TEXT NOT NULL,
    folder TEXT NOT NULL, created_at TEXT, fingerprint TEXT, first_seen_run INTEGER,
    last_seen_run INTEGER, archived_run INTEGER, archived_at TEXT, last_error TEXT,
    PRIMARY KEY (source, kind, item_id)
) WITHOUT ROWID;
INSERT INTO items_v1 SELECT source, kind, item_id, state, folder, created_at, fingerprint,
    first_seen_run, last_seen_run, archived_run, archived_at, last_error FROM items;
DROP TABLE items;
ALTER TABLE items_v1 RENAME TO items;
CREATE INDEX items_state ON items (source, state);
DELETE FROM meta WHERE key != 'schema_version';
UPDATE meta SET value = '1' WHERE key = 'schema_version';
"""


def sidecar_marks(archive: Path) -> dict[str, tuple[int, int]]:
    """Each sidecar's inode and modification time: a sidecar written again changes both."""
    return {
        str(path.relative_to(archive)): (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in archive.rglob("metadata.json")
    }


def item_rows(archive: Path) -> set[tuple[Any, ...]]:
    """What the manifest holds of each item, but the run that last listed it."""
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        return set(
            db.execute(
                "SELECT source, kind, item_id, state, folder, created_at, fingerprint, "
                "archived_run, archived_at, listed_digest, listed_fingerprint FROM items"
            )
        )
    finally:
        db.close()


def seen_runs(archive: Path) -> set[int]:
    """The runs that the manifest says last listed an item."""
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        return {row[0] for row in db.execute("SELECT DISTINCT last_seen_run FROM items")}
    finally:
        db.close()


def file_mark(path: Path) -> tuple[int, int]:
    return path.stat().st_ino, path.stat().st_mtime_ns


def latest_report(archive: Path) -> dict[str, Any]:
    reports = sorted((archive / ".archiver" / "runs").glob("*.json"))
    report: dict[str, Any] = json.loads(reports[-1].read_text())
    return report


def sums_text(archive: Path) -> str:
    return (archive / "faceswap" / "SHA256SUMS").read_text()


def manifest_lines(archive: Path) -> str:
    manifest = ManifestStore.open(archive / "manifest.sqlite3", readonly=True)
    try:
        return "".join(manifest.checksum_lines("faceswap"))
    finally:
        manifest.close()


def to_version_1(archive: Path) -> None:
    """Turn the archive's manifest into what an archiver of schema version 1 left."""
    db = sqlite3.connect(archive / "manifest.sqlite3")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.executescript(ITEMS_V1)
    db.commit()
    db.close()


def schema_of(archive: Path) -> tuple[str, set[str], set[str]]:
    """The schema version, the columns of `items` and the triggers of the archive's manifest."""
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
        triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    finally:
        db.close()
    return str(version), columns, triggers


async def test_an_unchanged_rerun_rewrites_nothing_and_fetches_nothing(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    marks, rows = sidecar_marks(archive), item_rows(archive)
    assert len(marks) == 40 + 3  # every task and template
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert sidecar_marks(archive) == marks
    assert item_rows(archive) == rows
    # Not even the run that last listed them: a rerun rewrote the whole table for that.
    assert seen_runs(archive) == {1}
    assert standin.stats.media_bytes_sent == 0
    assert latest_report(archive)["totals"]["already_archived"] == 40


async def test_a_changed_task_has_its_sidecar_refreshed_and_no_other(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    task = standin.dataset.succeeded_vth()[5]
    key = ("faceswap", "task", str(task["id"]))
    original = task["reason"]
    # Changed, then changed back: each time the sidecar follows, and no file is fetched.
    for reason in ("retried by support", original):
        standin.dataset.update(task["id"], reason=reason)
        before = sidecar_marks(archive)
        standin.stats.reset()
        result = await run_cli("run", "-c", config, "--no-progress")
        assert result.code == 0, result.output
        after = sidecar_marks(archive)
        assert [name for name in after if after[name] != before[name]] == [
            name for name in after if f"/{task['id']}/" in f"/{name}"
        ]
        assert sidecars(archive)[key]["record"]["reason"] == reason
        assert standin.stats.media_bytes_sent == 0
        assert latest_report(archive)["sources"]["faceswap"]["updated"] == 1


@pytest.mark.parametrize("batch", [1, listing.SEEN_BATCH], ids=["written-each-page", "batched"])
async def test_a_record_listed_twice_on_a_rerun_counts_once(
    make_standin: StandInFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(listing, "SEEN_BATCH", batch)
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    assert (await run_cli("run", "-c", config)).code == 0
    # Tasks of pages 3 and 4 again at the top, as when the list shifts while it is paged.
    for record in standin.dataset.succeeded_vth()[25:32]:
        standin.dataset.add_raw("vth", record)
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert standin.stats.media_bytes_sent == 0
    assert latest_report(tmp_path / "archive")["totals"]["already_archived"] == 40


async def test_a_version_1_manifest_is_brought_to_the_current_version(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    to_version_1(archive)
    version, columns, triggers = schema_of(archive)
    assert version == "1" and "listed_digest" not in columns and not triggers
    # A dry run reads it as it is, and leaves it so.
    assert (await run_cli("run", "-c", config, "--dry-run")).code == 0
    assert schema_of(archive)[0] == "1"
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert standin.stats.media_bytes_sent == 0
    version, columns, triggers = schema_of(archive)
    assert version == str(SCHEMA_VERSION)
    assert {"listed_digest", "listed_fingerprint"} <= columns
    assert len(triggers) == 6
    assert sums_text(archive) == manifest_lines(archive)
    # The migrating run remembered every record, so the next one knows each unchanged.
    rows = item_rows(archive)
    assert all(row[-2] is not None and row[-1] is not None for row in rows)
    marks = sidecar_marks(archive)
    assert (await run_cli("run", "-c", config)).code == 0
    assert item_rows(archive) == rows
    assert sidecar_marks(archive) == marks
    assert latest_report(archive)["totals"]["already_archived"] == 40


async def test_an_unchanged_archive_does_not_rewrite_its_sha256sums(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    before = sums_text(archive)
    sums = archive / "faceswap" / "SHA256SUMS"
    mark = file_mark(sums)
    assert (await run_cli("run", "-c", config)).code == 0
    assert sums_text(archive) == before
    assert file_mark(sums) == mark  # not replaced, not even by the same text


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE items SET state = 'failed' WHERE kind = 'task' AND item_id = ?",
        "DELETE FROM files WHERE kind = 'task' AND item_id = ? AND role = 'cover'",
        "UPDATE files SET sha256 = 'ab' || substr(sha256, 3) WHERE kind = 'task' AND item_id = ?",
    ],
    ids=["item-no-longer-archived", "file-row-removed", "file-digest-changed"],
)
async def test_sha256sums_follow_a_manifest_changed_behind_their_back(
    make_standin: StandInFactory, tmp_path: Path, change: str
) -> None:
    # As when a run dies between its last commit and the lists, or a repair edits the rows.
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    before = sums_text(archive)
    db = sqlite3.connect(archive / "manifest.sqlite3")
    with db:
        db.execute(change, (str(standin.dataset.succeeded_vth()[7]["id"]),))
    db.close()
    manifest = ManifestStore.open(archive / "manifest.sqlite3")
    try:
        write_checksums(manifest, archive, "faceswap")
    finally:
        manifest.close()
    assert sums_text(archive) != before
    assert sums_text(archive) == manifest_lines(archive)


def test_record_digest_tells_records_apart_and_knows_them_again() -> None:
    record = {"id": 7, "state": 30, "origin": "https://cdn.example/v.mp4?sig=1", "t": [1, 2.5]}
    again = json.loads(json.dumps(record))
    assert record_digest(record) == record_digest(again)
    assert len(record_digest(record) or b"") == 16
    others = [
        {**record, "state": 31},
        {**record, "origin": "https://cdn.example/v.mp4?sig=2"},
        {**record, "t": [1, 2.5, None]},
        {**record, "id": 7.0},
        {**record, "id": "7"},
        {**record, "extra": True},
    ]
    digests = {record_digest(r) for r in [record, *others]}
    assert len(digests) == 1 + len(others)
    assert record_digest({"id": object()}) is None
