"""The manifest's SQLite schema, version 3, and the steps that bring older manifests to it.

One row in `items` per task or template ever listed as succeeded; one row in `files` per file
ever archived (older template versions stay, with `current = 0`). Paths are POSIX, relative to
the archive root. Times are ISO 8601 in UTC. `state` moves pending -> archived | failed; a task is
`archived` only once its files and sidecar were flushed to disk.

Version 2 added `items.listed_digest` and `items.listed_fingerprint`: a cheap digest of the
record as last listed and that record's fingerprint, written together, so that a rerun which
lists the same record again need not fingerprint it again. It also added `meta.changes`, moved on
by triggers at every change to what a `SHA256SUMS` lists (the files of archived items), so that a
run which changed nothing can tell those lists are current without rebuilding them.

Version 3 added `items.catalog` and `items.catalog_texts`: what the catalog shows of the item's
record (how its card uses its files, and its texts; see `archiver.catalog.describe`), written
when the item is recorded as archived, so that the catalog is built from the manifest alone.
NULL means not known yet: an item archived before version 3, described from its sidecar when
the catalog is next built.
"""

from __future__ import annotations

SCHEMA_VERSION = 3

# Whatever writes the manifest, verify's repairs included, moves `changes` on: any change to a
# file row that a SHA256SUMS line shows, or to which items are archived.
_BUMP = "BEGIN UPDATE meta SET value = value + 1 WHERE key = 'changes'; END"
CHANGE_TRACKING = (
    "INSERT OR IGNORE INTO meta VALUES ('changes', '0')",
    f"CREATE TRIGGER IF NOT EXISTS files_inserted AFTER INSERT ON files {_BUMP}",
    f"CREATE TRIGGER IF NOT EXISTS files_deleted AFTER DELETE ON files {_BUMP}",
    "CREATE TRIGGER IF NOT EXISTS files_updated "
    f"AFTER UPDATE OF source, kind, item_id, path, sha256 ON files {_BUMP}",
    "CREATE TRIGGER IF NOT EXISTS items_inserted "
    f"AFTER INSERT ON items WHEN new.state = 'archived' {_BUMP}",
    "CREATE TRIGGER IF NOT EXISTS items_deleted "
    f"AFTER DELETE ON items WHEN old.state = 'archived' {_BUMP}",
    "CREATE TRIGGER IF NOT EXISTS items_updated "
    f"AFTER UPDATE OF source, kind, item_id, state ON items {_BUMP}",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,            -- 'task' | 'template'
    item_id       TEXT NOT NULL,            -- the id as the service gave it (a string)
    state         TEXT NOT NULL,            -- 'pending' | 'archived' | 'failed'
    folder        TEXT NOT NULL,            -- e.g. 'faceswap/2025/09/141'
    created_at    TEXT,                     -- ISO 8601 UTC, NULL when the record had none
    fingerprint   TEXT,                     -- sha256 of the record as last archived
    first_seen_run INTEGER,
    last_seen_run INTEGER,
    archived_run  INTEGER,
    archived_at   TEXT,
    last_error    TEXT,                     -- why the last attempt failed, NULL if it did not
    listed_digest BLOB,                     -- `sidecar.record_digest` of the record as last listed
    listed_fingerprint TEXT,                -- `sidecar.fingerprint` of that same record
    catalog       TEXT,                     -- JSON: how its card uses its files; NULL: unknown
    catalog_texts TEXT,                     -- JSON: the card's texts, encoded for the page
    PRIMARY KEY (source, kind, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_state ON items (source, state);
CREATE TABLE IF NOT EXISTS files (
    source        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    name          TEXT NOT NULL,            -- file name inside the item's folder
    role          TEXT NOT NULL,            -- 'video' | 'cover' | 'preview' | 'thumb'
    path          TEXT NOT NULL,            -- relative to the archive root
    url           TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    content_type  TEXT,
    current       INTEGER NOT NULL DEFAULT 1, -- 0 for an older version kept beside a newer one
    PRIMARY KEY (source, kind, item_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id            INTEGER PRIMARY KEY,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    exit_status   INTEGER,                  -- NULL while running or if the process died
    command       TEXT NOT NULL,
    summary       TEXT                      -- JSON: the run report's counts
);
CREATE TABLE IF NOT EXISTS source_state (
    source            TEXT PRIMARY KEY,
    last_full_listing TEXT,                 -- when a listing last reached the end
    last_run_clean    INTEGER NOT NULL DEFAULT 0  -- 1: the last run listed it all, no failure
) WITHOUT ROWID;
""" + "".join(f"{statement};\n" for statement in CHANGE_TRACKING)

# From each older version, the statements that bring a manifest to the next one. New columns go
# last, as ALTER TABLE puts them, so that a migrated manifest and a new one have the same shape.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE items ADD COLUMN listed_digest BLOB",
        "ALTER TABLE items ADD COLUMN listed_fingerprint TEXT",
        *CHANGE_TRACKING,
    ),
    2: (
        "ALTER TABLE items ADD COLUMN catalog TEXT",
        "ALTER TABLE items ADD COLUMN catalog_texts TEXT",
    ),
}

# A new manifest in one transaction: a run killed while it creates one leaves none or a whole
# one (`executescript` alone would commit each statement by itself).
CREATE = (
    f"BEGIN IMMEDIATE; {SCHEMA}; "  # noqa: S608 (constants of this module)
    f"INSERT OR REPLACE INTO meta VALUES ('schema_version', {SCHEMA_VERSION:d}); COMMIT;"
)
