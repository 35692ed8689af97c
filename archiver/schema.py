"""The manifest's SQLite schema, version 1.

One row in `items` per task or template ever listed as succeeded; one row in `files` per file
ever archived (older template versions stay, with `current = 0`). Paths are POSIX, relative to
the archive root. Times are ISO 8601 in UTC. `state` moves pending -> archived | failed; a task is
`archived` only once its files and sidecar were flushed to disk.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

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
"""
