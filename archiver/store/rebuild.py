"""Taking over a bucket's archive from its sidecars: what its manifest copy does not list.

A state folder that lost its manifest fetches the bucket's copy (`remote.take_over`), but that
copy is as old as the last run that ended: a run killed before it leaves objects and sidecars
the copy does not list, and a bucket with no copy at all lists nothing. Every sidecar in the
bucket whose item the manifest does not call archived is read; if each of its files is in
the bucket with the sidecar's size (and the sha256 stored with it agrees), the item is
recorded as archived, through the manifest's own calls, so the run does not fetch it again.
An item that does not check out is left alone: the run archives it as new.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from archiver.store.manifest import FileRow, ManifestStore, Outcome, Seen
from archiver.store.s3 import BucketStore
from archiver.store.sidecar import SIDECAR, fingerprint, record_digest

log = logging.getLogger("archiver")


async def adopt_sidecars(store: BucketStore, manifest: ManifestStore, run_id: int) -> int:
    """Record as archived every item the bucket holds whole and the manifest does not."""
    adopted = 0
    async for relative, _ in store.keys():
        if not relative.endswith(f"/{SIDECAR}") or relative.startswith(".archiver/"):
            continue
        folder = relative.rsplit("/", 1)[0]
        data = await store.read(relative)
        document = _parse(data)
        if document is None:
            continue
        source, kind, item_id = document["source"], document["kind"], document["id"]
        known = manifest.lookup(source, kind, [item_id]).get(item_id)
        if known is not None and known.state == "archived":
            continue
        files = await _whole_files(store, folder, document["files"])
        if files is None:
            continue
        record = document.get("record")
        mark = fingerprint(record)
        created = document.get("created_at")
        seen = Seen(kind, item_id, folder, created, record_digest(record), mark)
        manifest.mark_seen(source, run_id, [seen])
        manifest.record(run_id, [Outcome(source, kind, item_id, mark, files, None)])
        adopted += 1
    return adopted


def _parse(data: bytes | None) -> dict[str, Any] | None:
    try:
        document = json.loads(data or b"")
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        return None
    if not all(isinstance(document.get(k), str) for k in ("source", "kind", "id")):
        return None
    return document


async def _whole_files(
    store: BucketStore, folder: str, entries: dict[str, Any]
) -> tuple[FileRow, ...] | None:
    """The sidecar's files as manifest rows, if every one is in the bucket as it says."""
    rows = []
    for role, entry in entries.items():
        if not isinstance(entry, dict):
            return None
        name, size, digest = entry.get("name"), entry.get("bytes"), entry.get("sha256")
        if not isinstance(name, str) or not isinstance(size, int) or not isinstance(digest, str):
            return None
        path = f"{folder}/{name}"
        found = await store.head(path)
        if found is None or found.size != size or found.sha256 not in (None, digest):
            return None
        rows.append(
            FileRow(
                name=name,
                role=role,
                path=path,
                url=str(entry.get("url") or ""),
                bytes=size,
                sha256=digest,
                content_type=entry.get("content_type"),
            )
        )
    return tuple(rows)
