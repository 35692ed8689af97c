"""A manifest archiver cannot use: a clear error, exit 2, and the file is never overwritten.

Not a SQLite database at all, a SQLite database of something else, or a manifest written by a
newer archiver (a newer schema): the run refuses it before asking any service for anything.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from archiver.standin import StandIn
from archiver.store.schema import SCHEMA
from tests.support import assert_archive_exact, config_dict, run_cli, write_config


def _digest(archive: Path) -> str:
    # The database file itself: opening a WAL database may add its -wal and -shm beside it.
    return hashlib.sha256((archive / "manifest.sqlite3").read_bytes()).hexdigest()


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"these are my notes, not a database\n" * 100)


def _another_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (name TEXT)")
    db.execute("INSERT INTO photos VALUES ('holiday.jpg')")
    db.commit()
    db.close()


def _truncated_sqlite(path: Path) -> None:
    _another_database(path)
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\0" * 50)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        pytest.param(_not_sqlite, "not an archiver manifest", id="not-sqlite"),
        pytest.param(_another_database, "not an archiver manifest", id="another-database"),
        pytest.param(_truncated_sqlite, "not an archiver manifest", id="damaged-sqlite"),
    ],
)
async def test_a_manifest_that_is_not_ours_is_refused_and_left_alone(
    standin: StandIn, tmp_path: Path, damage: object, said: str
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    manifest = archive / "manifest.sqlite3"
    damage(manifest)  # type: ignore[operator]
    before = _digest(archive)
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 2, result.output
    assert said in result.output and str(manifest) in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _digest(archive) == before
    assert standin.stats.requests == []


async def test_a_manifest_from_a_newer_archiver_is_refused_and_left_alone(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    assert (await run_cli("run", "-c", config)).code == 0
    archive = tmp_path / "archive"
    manifest = archive / "manifest.sqlite3"
    db = sqlite3.connect(manifest)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = _digest(archive)
    standin.stats.reset()
    standin.dataset.add_chanjing_task()  # something new to archive, were the run to go on
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 2, result.output
    assert "newer archiver" in result.output and "schema 99" in result.output
    assert "Traceback" not in result.output
    assert _digest(archive) == before
    assert standin.stats.requests == []


async def test_a_manifest_whose_creation_was_cut_short_is_finished(
    standin: StandIn, tmp_path: Path
) -> None:
    # What an older archiver left when killed while it made the manifest: every table, each
    # committed on its own, and no schema version yet. Every later run used to exit 2.
    archive = tmp_path / "archive"
    archive.mkdir()
    db = sqlite3.connect(archive / "manifest.sqlite3")
    db.executescript(SCHEMA)
    db.close()
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert_archive_exact(archive, standin, ("chanjing",))
