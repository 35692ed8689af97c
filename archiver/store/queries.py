"""The manifest's reads: what is archived, what a listing needs, what `SHA256SUMS` lists.

`ManifestReads` holds every SELECT the tool makes of the manifest; `ManifestStore` (in
`manifest`) adds opening and writing. Queries that build many rows read plain tuples, since
sqlite3.Row's access by name costs more than the query itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from archiver.errors import ManifestError
from archiver.store.schema import SCHEMA_VERSION

CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class FileRow:
    """One archived file, as the manifest knows it."""

    name: str
    role: str
    path: str
    url: str
    bytes: int
    sha256: str
    content_type: str | None
    current: bool = True


@dataclass(frozen=True, slots=True)
class KnownItem:
    """What the manifest knows of one item."""

    state: str
    folder: str
    files: tuple[FileRow, ...]


class ListedItem(NamedTuple):
    """What the listing needs to know of an item to tell whether it is archived and intact.

    A tuple rather than a dataclass: a rerun builds one per listed item.
    """

    state: str
    fingerprint: str | None
    last_seen_run: int | None
    folder: str
    listed_digest: bytes | None  # `record_digest` of the record as last listed
    listed_fingerprint: str | None  # the `fingerprint` of that same record
    files: tuple[tuple[str, int], ...]  # (path, bytes) of each current file


class UndescribedItem(NamedTuple):
    """An archived item whose description the manifest does not hold (see `undescribed`)."""

    source: str
    kind: str
    item_id: str
    folder: str


# One file to verify: (name, path relative to the archive, bytes, sha256, current).
VerifyFile = tuple[str, str, int, str, bool]
# One archived item to verify: (source, kind, item_id, folder, its files).
VerifyItem = tuple[str, str, str, str, list[VerifyFile]]


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of `runs`; `summary` is the JSON the run wrote, None while it runs."""

    id: int
    command: str
    started_at: str
    finished_at: str | None
    exit_status: int | None
    summary: str | None


# One file of an item in the catalog: (role, name, path, url, bytes, current).
CatalogFile = tuple[str, str, str, str, int, int]


class CatalogItem(NamedTuple):
    """One archived item with its files, as the catalog shows it.

    `catalog` and `catalog_texts` are what it shows of the record (`archiver.catalog.describe`),
    None if not known yet. A tuple rather than a dataclass: a large archive's catalog builds
    one per item.
    """

    source: str
    kind: str
    id: str
    folder: str
    created_at: str | None
    archived_at: str | None
    catalog: str | None
    catalog_texts: str | None
    files: tuple[CatalogFile, ...]


# One pass over `items` in primary-key order, its files joined: no sort, rows streamed.
_CATALOG_SQL = """
SELECT i.source, i.kind, i.item_id, i.folder, i.created_at, i.archived_at, {catalog},
       f.role, f.name, f.path, f.url, f.bytes, f.current
FROM items AS i
LEFT JOIN files AS f ON f.source = i.source AND f.kind = i.kind AND f.item_id = i.item_id
WHERE i.state = 'archived'
ORDER BY i.source, i.kind, i.item_id
"""


class ManifestReads:
    """Every query of the manifest; `ManifestStore` is the class to use."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path
        self.version = SCHEMA_VERSION  # an older one only if opened read-only

    # Listing

    def lookup(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, KnownItem]:
        """What the manifest knows of these items of one source and kind."""
        found: dict[str, KnownItem] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            marks = ",".join("?" * len(chunk))
            files: dict[str, list[FileRow]] = {}
            # Plain tuples: a page of lookups builds thousands of rows, and sqlite3.Row's
            # access by name costs more than the query.
            cursor = self.db.cursor()
            cursor.row_factory = None
            for item_id, *fields in cursor.execute(
                "SELECT item_id, name, role, path, url, bytes, sha256, content_type, current "  # noqa: S608
                f"FROM files WHERE source = ? AND kind = ? AND item_id IN ({marks})",
                (source, kind, *chunk),
            ):
                fields[-1] = bool(fields[-1])
                files.setdefault(item_id, []).append(FileRow(*fields))
            for item_id, state, folder in cursor.execute(
                f"SELECT item_id, state, folder FROM items "  # noqa: S608
                f"WHERE source = ? AND kind = ? AND item_id IN ({marks})",
                (source, kind, *chunk),
            ):
                found[item_id] = KnownItem(
                    state=state,
                    folder=folder,
                    files=tuple(files.get(item_id, ())),
                )
        return found

    def listing_state(self, source: str, kind: str, ids: Sequence[str]) -> dict[str, ListedItem]:
        """What the listing needs to know of these items of one source and kind.

        Lighter than `lookup`, which a rerun would otherwise pay for every listed item: only
        the path and size of each current file, and the digest of the record as last listed.
        """
        found: dict[str, ListedItem] = {}
        listed = "listed_digest, listed_fingerprint" if self.version >= 2 else "NULL, NULL"
        cursor = self.db.cursor()
        cursor.row_factory = None
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            files: dict[str, list[tuple[str, int]]] = {}
            for item_id, path, size in cursor.execute(
                "SELECT item_id, path, bytes FROM files WHERE source = ? AND kind = ? "  # noqa: S608
                f"AND item_id IN ({marks}) AND current",
                (source, kind, *chunk),
            ):
                if item_id in files:
                    files[item_id].append((path, size))
                else:
                    files[item_id] = [(path, size)]
            for row in cursor.execute(
                f"SELECT item_id, state, fingerprint, last_seen_run, folder, {listed} "  # noqa: S608
                f"FROM items WHERE source = ? AND kind = ? AND item_id IN ({marks})",
                (source, kind, *chunk),
            ):
                found[row[0]] = ListedItem._make((*row[1:], tuple(files.get(row[0], ()))))
        return found

    # Per-source listing state, for incremental runs

    def source_state(self, source: str) -> tuple[str | None, bool]:
        """When the source was last listed to its end, and whether its last run was clean."""
        row = self.db.execute(
            "SELECT last_full_listing, last_run_clean FROM source_state WHERE source = ?",
            (source,),
        ).fetchone()
        return (row[0], bool(row[1])) if row else (None, False)

    def unsettled(self, source: str) -> int:
        """How many items of `source` are pending or failed: gaps an early stop could skip."""
        row = self.db.execute(
            "SELECT count(*) FROM items WHERE source = ? AND state != 'archived'", (source,)
        ).fetchone()
        return int(row[0])

    # Notes kept in `meta`

    def changes(self) -> str | None:
        """A mark moved on by every change to what a `SHA256SUMS` lists (see `schema`)."""
        return self.note("changes")

    def note(self, key: str) -> str | None:
        """The value kept under `key` in `meta`, if any."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # Reading

    def checksum_lines(self, source: str, rows: int = 4096) -> Iterator[str]:
        """The `SHA256SUMS` lines of every file of every archived item of `source`, by path.

        A few thousand lines a time, joined: built in SQL and read as one column, the lines of
        a large archive cost a fraction of what reading its rows would.
        """
        cursor = self.db.cursor()
        cursor.row_factory = None
        cursor.execute(
            "SELECT f.sha256 || '  ' || f.path || char(10) FROM files f "
            "JOIN items i USING (source, kind, item_id) "
            "WHERE i.state = 'archived' AND f.source = ? ORDER BY f.path",
            (source,),
        )
        while batch := cursor.fetchmany(rows):
            yield "".join([line for (line,) in batch])

    def file_paths(self, sources: Sequence[str] = ()) -> set[str]:
        """The path of every file the manifest knows (of `sources`, if given), any state."""
        query = "SELECT path FROM files"
        if sources:
            query += f" WHERE source IN ({','.join('?' * len(sources))})"
        cursor = self.db.cursor()
        cursor.row_factory = None
        return {path for (path,) in cursor.execute(query, tuple(sources))}

    def archived_for_verify(self, sources: Sequence[str] = ()) -> list[VerifyItem]:
        """Every archived item (of `sources`, if given) with its files, in folder order.

        Plain tuples on purpose: `verify` is measured against `sha256sum`, and at thousands of
        small files sqlite3.Row or a dataclass per file costs more than the hashing.
        """
        query = (
            "SELECT i.source, i.kind, i.item_id, i.folder, f.name, f.path, f.bytes, f.sha256, "
            "f.current FROM items i LEFT JOIN files f USING (source, kind, item_id) "
            "WHERE i.state = 'archived'"
        )
        if sources:
            query += f" AND i.source IN ({','.join('?' * len(sources))})"
        query += " ORDER BY i.folder, i.source, i.kind, i.item_id, f.path"
        cursor = self.db.cursor()
        cursor.row_factory = None
        items: list[VerifyItem] = []
        files: list[VerifyFile] = []
        last: tuple[str, str, str] | None = None
        for source, kind, item_id, folder, name, path, size, sha256, current in cursor.execute(
            query, tuple(sources)
        ):
            key = (source, kind, item_id)
            if key != last:
                last = key
                files = []
                items.append((source, kind, item_id, folder, files))
            if name is not None:  # an archived item with no file rows still has a sidecar
                files.append((name, path, size, sha256, bool(current)))
        return items

    def file_path(self, source: str, kind: str, item_id: str, name: str) -> str | None:
        """The path of one file of one item, if the manifest knows it."""
        row = self.db.execute(
            "SELECT path FROM files WHERE source = ? AND kind = ? AND item_id = ? AND name = ?",
            (source, kind, item_id, name),
        ).fetchone()
        return None if row is None else str(row[0])

    # Status

    def item_counts(self) -> list[tuple[str, str, str, int]]:
        """(source, kind, state, how many items) for every combination there is."""
        return [
            (str(r[0]), str(r[1]), str(r[2]), int(r[3]))
            for r in self.db.execute(
                "SELECT source, kind, state, count(*) FROM items GROUP BY source, kind, state"
            )
        ]

    def file_totals(self) -> list[tuple[str, int, int]]:
        """(source, files, bytes) of every source with files, any state."""
        return [
            (str(r[0]), int(r[1]), int(r[2]))
            for r in self.db.execute(
                "SELECT source, count(*), coalesce(sum(bytes), 0) FROM files GROUP BY source"
            )
        ]

    def failures(self, source: str, limit: int) -> list[tuple[str, str, str | None]]:
        """(kind, item_id, last error) of the first `limit` failed items of `source`, by id."""
        return [
            (str(r[0]), str(r[1]), r[2])
            for r in self.db.execute(
                "SELECT kind, item_id, last_error FROM items WHERE source = ? AND state = "
                "'failed' ORDER BY item_id LIMIT ?",
                (source, limit),
            )
        ]

    def recent_runs(self, limit: int) -> list[RunRow]:
        """The last `limit` runs, newest first."""
        return [
            RunRow(*row)
            for row in self.db.execute(
                "SELECT id, command, started_at, finished_at, exit_status, summary FROM runs "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        ]

    # Catalog

    def catalog_items(self) -> Iterator[CatalogItem]:
        """Every archived item with its files, by source, kind and id, streamed.

        One query, so one snapshot of the manifest, whatever a run writes meanwhile.
        """
        # A manifest older than version 3, opened read-only, knows no description.
        catalog = "i.catalog, i.catalog_texts" if self.version >= 3 else "NULL, NULL"
        try:
            rows = self.db.cursor()
            rows.row_factory = None
            rows.execute(_CATALOG_SQL.format(catalog=catalog))
            head: Any = (None, None, None)  # the item's own columns, of its first row
            files: list[CatalogFile] = []
            # By hand rather than itertools.groupby: at 200,000 items every step counts, and
            # the id, most often the part of the key that differs, is compared first.
            for row in rows:
                if row[2] != head[2] or row[0] != head[0] or row[1] != head[1]:
                    if head[0] is not None:
                        yield CatalogItem._make((*head, tuple(files)))
                    head, files = row[:8], []
                if row[8] is not None:  # an archived item with no file rows still has a card
                    files.append(row[8:])
            if head[0] is not None:
                yield CatalogItem._make((*head, tuple(files)))
        except sqlite3.Error as exc:
            raise ManifestError(f"cannot read the manifest {self.path}: {exc}") from exc

    def undescribed(self, after: tuple[str, str, str] | None, limit: int) -> list[UndescribedItem]:
        """Up to `limit` archived items the catalog knows nothing of, by key, after `after`.

        Those archived before the manifest kept descriptions, to be read from their sidecars.
        """
        cursor = self.db.cursor()
        cursor.row_factory = None
        # Row values: the primary key's order, so each batch starts where the last one ended.
        cursor.execute(
            "SELECT source, kind, item_id, folder FROM items WHERE state = 'archived' "
            "AND catalog IS NULL AND (source, kind, item_id) > (?, ?, ?) "
            "ORDER BY source, kind, item_id LIMIT ?",
            (*(after or ("", "", "")), limit),
        )
        return [UndescribedItem(*row) for row in cursor]

    def undescribed_count(self) -> int:
        """How many archived items the catalog knows nothing of (see `undescribed`)."""
        row = self.db.execute(
            "SELECT count(*) FROM items WHERE state = 'archived' AND catalog IS NULL"
        ).fetchone()
        return int(row[0])
