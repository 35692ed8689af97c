"""The manifest: what is archived, with sizes and sha256, and where each run stopped.

`ManifestStore` wraps one SQLite database (stdlib sqlite3, WAL, so `status` can read while a
run writes); this module opens it and writes it, every query is in `queries`. Writes come in
batches, one transaction for a page of listings or for a batch of finished items, so the
manifest is never what a run waits on. A manifest that is not ours, or is from a newer
archiver, is refused and never touched.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.errors import ArchiveWriteError, ManifestError
from archiver.reporting.redact import REDACT
from archiver.store.archivefs import refuse_links
from archiver.store.queries import CHUNK, FileRow, KnownItem, ListedItem, ManifestReads
from archiver.store.schema import CREATE, MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "JOURNALS",
    "MANIFEST",
    "FileRow",
    "KnownItem",
    "ListedItem",
    "ManifestStore",
    "Outcome",
    "Seen",
    "utc_now",
]

MANIFEST = "manifest.sqlite3"  # its file name in the archive folder
JOURNALS = ("", "-wal", "-shm", "-journal")  # the manifest's file and those SQLite keeps beside


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second."""
    now = int(time.time())
    if now != _LAST_NOW[0]:  # formatted once a second, not once per item
        _LAST_NOW[:] = [now, datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    return str(_LAST_NOW[1])


_LAST_NOW: list[int | str] = [-1, ""]


@dataclass(frozen=True, slots=True)
class Seen:
    """An item listed in this run, with the digest and fingerprint of its record."""

    kind: str
    item_id: str
    folder: str
    created_at: str | None
    listed_digest: bytes | None = None
    listed_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one item ended in this run: archived (`error` None) or failed.

    `catalog` is what the catalog shows of an archived item (`items.catalog` and
    `items.catalog_texts`, as `archiver.catalog.describe` makes them); None leaves it to be
    read from the item's sidecar when the catalog is next built.
    """

    source: str
    kind: str
    item_id: str
    fingerprint: str
    files: tuple[FileRow, ...]
    error: str | None
    catalog: tuple[str, str] | None = None


class ManifestStore(ManifestReads):
    """The archive's manifest database: opening it, and every write (reads: `ManifestReads`)."""

    _listed_table = False  # whether this connection made the table of `listed_unchanged`

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> ManifestStore:
        """Open (or, unless `readonly`, create) the manifest at `path`."""
        # SQLite follows links: one planted at the manifest or its journals would be written.
        refuse_links(path.parent, tuple(path.name + end for end in JOURNALS))
        exists = path.exists()
        if readonly and not exists:
            raise ManifestError(f"{path}: no manifest here; nothing has been archived yet")
        try:
            if readonly:
                # As a URI, escaped: a folder named with `?` or `#` is still this one.
                db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
            else:
                db = sqlite3.connect(path, timeout=10)
            db.row_factory = sqlite3.Row
            store = cls(db, path)
            store._check(readonly=readonly)
        except sqlite3.DatabaseError as exc:
            raise ManifestError(
                f"{path}: not an archiver manifest ({exc}); it was left untouched"
            ) from exc
        return store

    def _check(self, *, readonly: bool) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master")}
        if tables and "meta" not in tables:
            raise ManifestError(f"{self.path}: a SQLite database, but not an archiver manifest")
        if "meta" in tables and not readonly and self._unfinished_creation(tables):
            tables = set()  # made by an older archiver killed mid-way: no row in it yet
        if "meta" in tables:
            self.version = self._schema_version()
        self.db.execute("PRAGMA busy_timeout = 10000")
        if "meta" in tables and self.version < SCHEMA_VERSION and not readonly:
            self._migrate()
        if not tables:
            self.db.execute("PRAGMA journal_mode = WAL")
            with self._written():
                self.db.executescript(CREATE)
        self.db.execute("PRAGMA synchronous = NORMAL")

    def _unfinished_creation(self, tables: set[str]) -> bool:
        """Whether the manifest's tables exist but it holds no version and no row at all."""
        if self.db.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone():
            return False
        return not any(
            self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # noqa: S608
            for table in ("items", "files", "runs")
            if table in tables
        )

    def _schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        text = str(row[0]) if row else ""
        version = int(text) if text.isascii() and text.isdigit() else None
        if version is None:
            raise ManifestError(f"{self.path}: manifest without a schema version")
        if version > SCHEMA_VERSION:
            raise ManifestError(
                f"{self.path}: written by a newer archiver (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade archiver"
            )
        return version

    def _migrate(self) -> None:
        """Bring an older manifest to this schema, in one transaction."""
        with self._written():
            # Taken for writing first, so that two processes opening the same old manifest
            # cannot both migrate it: the second waits, then finds it done.
            self.db.execute("BEGIN IMMEDIATE")
            version = self._schema_version()
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    self.db.execute(statement)
                version += 1
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
        self.version = version

    @contextmanager
    def _written(self) -> Iterator[None]:
        """One transaction; a failure to write it (a full disk) is an `ArchiveWriteError`."""
        try:
            with self.db:
                yield
        except sqlite3.OperationalError as exc:
            raise ArchiveWriteError(f"cannot write the manifest {self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def wait_for_writers(self, seconds: float) -> None:
        """Wait at most `seconds` (10 unless told) for another connection's write to end."""
        self.db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000):d}")

    # Runs

    def begin_run(self, command: str) -> int:
        """Open the `runs` row of a run; returns its id."""
        with self._written():
            cursor = self.db.execute(
                "INSERT INTO runs (started_at, command) VALUES (?, ?)", (utc_now(), command)
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(self, run_id: int, exit_status: int, summary: dict[str, Any]) -> None:
        """Close the run's row with its exit status and the summary of its report."""
        with self._written():
            self.db.execute(
                "UPDATE runs SET finished_at = ?, exit_status = ?, summary = ? WHERE id = ?",
                (utc_now(), exit_status, json.dumps(summary), run_id),
            )

    # Listing

    def mark_seen(
        self,
        source: str,
        run_id: int,
        seen: Iterable[Seen],
        unchanged: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Record that these items were listed in this run (new ones as pending).

        `seen` are written whole, their `last_seen_run` with them. `unchanged` are (kind,
        item_id) of items whose record is the one last listed (same `listed_digest`): nothing
        the manifest holds of them changes, so nothing of them is written to it. That this
        run listed them is kept for the run only (`listed_unchanged`), in a temporary table
        of this connection: SQLite keeps it in memory up to its cache size, then in a file of
        its own, never in the manifest or its journal. Writing their `last_seen_run` instead
        rewrote every row of `items` on every rerun: at 200,000 tasks some 60 MB through the
        write-ahead log and its checkpoints, on the listing's path.
        """
        with self._written():
            self.db.executemany(
                "INSERT INTO items (source, kind, item_id, state, folder, created_at, "
                "first_seen_run, last_seen_run, listed_digest, listed_fingerprint) "
                "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source, kind, item_id) DO UPDATE SET "
                "last_seen_run = excluded.last_seen_run, folder = excluded.folder, "
                "created_at = excluded.created_at, listed_digest = excluded.listed_digest, "
                "listed_fingerprint = excluded.listed_fingerprint",
                [
                    (
                        source,
                        s.kind,
                        s.item_id,
                        s.folder,
                        s.created_at,
                        run_id,
                        run_id,
                        s.listed_digest,
                        s.listed_fingerprint,
                    )
                    for s in seen
                ],
            )
            rows = [(source, kind, item_id) for kind, item_id in unchanged]
            if rows:
                if not self._listed_table:
                    self.db.execute(
                        "CREATE TEMP TABLE IF NOT EXISTS listed_unchanged (source TEXT, "
                        "kind TEXT, item_id TEXT, PRIMARY KEY (source, kind, item_id)) "
                        "WITHOUT ROWID"
                    )
                    self._listed_table = True
                self.db.executemany(
                    "INSERT OR IGNORE INTO temp.listed_unchanged VALUES (?, ?, ?)", rows
                )

    def listed_unchanged(self, source: str, kind: str, ids: Sequence[str]) -> set[str]:
        """Those of these ids that `mark_seen` was given as unchanged on this connection."""
        found: set[str] = set()
        if not self._listed_table:
            return found
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            found.update(
                row[0]
                for row in self.db.execute(
                    "SELECT item_id FROM temp.listed_unchanged WHERE source = ? AND kind = ? "  # noqa: S608
                    f"AND item_id IN ({','.join('?' * len(chunk))})",
                    (source, kind, *chunk),
                )
            )
        return found

    # Outcomes

    def record(self, run_id: int, outcomes: Sequence[Outcome]) -> None:
        """Record a batch of finished items in one transaction."""
        now = utc_now()
        with self._written():
            for o in outcomes:
                key = (o.source, o.kind, o.item_id)
                for f in o.files:
                    self.db.execute(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                        (*key, f.name, f.role, f.path, f.url, f.bytes, f.sha256, f.content_type),
                    )
                    self.db.execute(
                        "UPDATE files SET current = 0 WHERE source = ? AND kind = ? "
                        "AND item_id = ? AND role = ? AND name != ?",
                        (*key, f.role, f.name),
                    )
                if o.error is None:
                    self.db.execute(
                        "UPDATE items SET state = 'archived', fingerprint = ?, archived_run = ?,"
                        " archived_at = ?, last_error = NULL, catalog = ?, catalog_texts = ? "
                        "WHERE source = ? AND kind = ? AND item_id = ?",
                        (o.fingerprint, run_id, now, *(o.catalog or (None, None)), *key),
                    )
                else:
                    self.db.execute(
                        "UPDATE items SET state = 'failed', last_error = ? "
                        "WHERE source = ? AND kind = ? AND item_id = ?",
                        (REDACT(o.error), *key),
                    )

    def forget_files(self, names: dict[tuple[str, str, str], list[str]]) -> None:
        """Drop these files (by name, per (source, kind, item_id)) from the manifest."""
        with self._written():
            self.db.executemany(
                "DELETE FROM files WHERE source = ? AND kind = ? AND item_id = ? AND name = ?",
                [(*key, name) for key, key_names in names.items() for name in key_names],
            )

    def retire_files(self, names: dict[tuple[str, str, str], list[str]]) -> None:
        """Keep these files (by name, per (source, kind, item_id)) as earlier versions only."""
        with self._written():
            self.db.executemany(
                "UPDATE files SET current = 0 WHERE source = ? AND kind = ? AND item_id = ? "
                "AND name = ?",
                [(*key, name) for key, key_names in names.items() for name in key_names],
            )

    def mark_pending(self, keys: Iterable[tuple[str, str, str]], reason: str) -> None:
        """Send items back to be fetched again by the next run (after a failed verify)."""
        with self._written():
            self.db.executemany(
                "UPDATE items SET state = 'pending', last_error = ? "
                "WHERE source = ? AND kind = ? AND item_id = ?",
                [(reason, *key) for key in keys],
            )

    def set_catalog(self, descriptions: Iterable[tuple[str, str, str, tuple[str, str]]]) -> None:
        """Keep what the catalog shows of these items: (source, kind, item_id, description).

        Only where it is not known yet: a run that archived the item again meanwhile wrote
        the description of its newer record, which stands.
        """
        with self._written():
            self.db.executemany(
                "UPDATE items SET catalog = ?, catalog_texts = ? WHERE source = ? AND kind = ? "
                "AND item_id = ? AND catalog IS NULL",
                [(*described, *key) for *key, described in descriptions],
            )

    # Per-source listing state, for incremental runs

    def set_source_state(self, source: str, *, listed_to_end: bool, clean: bool) -> None:
        """Note whether the source was listed to its end (and when), and if its run was clean."""
        with self._written():
            self.db.execute(
                "INSERT INTO source_state (source, last_full_listing, last_run_clean) "
                "VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET last_full_listing = "
                "COALESCE(excluded.last_full_listing, last_full_listing), "
                "last_run_clean = excluded.last_run_clean",
                (source, utc_now() if listed_to_end else None, int(clean)),
            )

    # Notes kept in `meta`

    def set_note(self, key: str, value: str) -> None:
        """Keep `value` under `key` in `meta` (not a change `changes` counts)."""
        with self._written():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
