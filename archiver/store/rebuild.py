"""Rebuilding a manifest from the archive's sidecars, for a local folder and for a bucket.

A manifest can be lost while the archive is not: a local `manifest.sqlite3` deleted, a state
folder gone, a bucket's manifest copy older than its objects (a run killed before it was made).
Each item's `metadata.json` says what its files are (name, bytes, sha256), so every sidecar
whose item the manifest does not call archived is read, its files are checked, and an item whose
every file checks out is recorded as archived, through the manifest's own calls, as if the run
that wrote it had: the next listing finds it archived and fetches nothing. An item that does
not check out is left out: the run archives it as new.

This module holds what both stores share (reading a sidecar, refusing one that is malformed or
would lead out of the archive, the recording); each store brings a `SidecarReader`: where the
sidecars are, and how a file is checked. `BucketSidecars` is the bucket's (a listing, a GET,
a HEAD and the sha256 stored with the object); the local folder's is in `rebuildfs`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from archiver.store.manifest import FileRow, ManifestStore, Outcome, Seen
from archiver.store.paths import safe_name, within
from archiver.store.sidecar import SIDECAR, fingerprint, record_digest

if TYPE_CHECKING:
    from archiver.store.s3 import BucketStore

log = logging.getLogger("archiver")

CHECKS_AT_ONCE = 8  # items checked at once: hashing threads, or HEAD requests in flight
BATCH = 256  # items recorded per transaction
SKIPS_TOLD = 5  # sidecars skipped that are named one by one; the rest are counted
MAX_SIDECAR = 16 * 1024**2  # bytes; a record is at most about 1 MiB of JSON (see `nesting`)


@dataclass(frozen=True, slots=True)
class Sidecar:
    """One item as its `metadata.json` describes it, every path checked to stay inside."""

    source: str
    kind: str
    item_id: str
    folder: str  # relative to the archive root: where the sidecar was found
    created_at: str | None
    record: Any
    files: tuple[FileRow, ...]  # the current files
    previous: tuple[FileRow, ...]  # files of earlier versions, kept (`previous_files`)


class SidecarReader(Protocol):
    """Where one store keeps its sidecars, and how it checks a file against one."""

    def sidecars(self) -> AsyncIterator[tuple[str, bytes | None]]:
        """(folder relative to the archive, the bytes of its sidecar; None if unreadable)."""
        ...

    async def holds(self, row: FileRow) -> bool:
        """Whether the file is in the store with its size and sha256."""
        ...


@dataclass
class Adoption:
    """What a pass over the sidecars did."""

    sidecars: int = 0  # read and understood
    adopted: int = 0  # items recorded as archived
    refused: int = 0  # items whose files did not check out: the run fetches them again
    skipped: int = 0  # sidecars that could not be used (malformed, leading out of the archive)


def parse_sidecar(folder: str, data: bytes | None) -> Sidecar | str:
    """The sidecar found in `folder`, or why it cannot be used."""
    if data is None:
        return "unreadable"
    try:
        document = json.loads(data)
    except ValueError:
        return "not valid JSON"
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        return "no files section"
    source, kind, item_id = (document.get(k) for k in ("source", "kind", "id"))
    if not (isinstance(source, str) and isinstance(kind, str) and isinstance(item_id, str)):
        return "no source, kind or id"
    # A sidecar stands in its own source's folder; one claiming another's was put there.
    if folder.split("/", 1)[0] != safe_name(source):
        return f"names the source {source!r}, outside its folder"
    entries = [(role, entry) for role, entry in document["files"].items()]
    old = document.get("previous_files")
    if isinstance(old, list):
        entries += [(entry.get("role"), entry) for entry in old if isinstance(entry, dict)]
    rows = []
    for role, entry in entries:
        row = _file_row(folder, role, entry)
        if isinstance(row, str):
            return row
        rows.append(row)
    current = len(document["files"])
    names = {row.name for row in rows[:current]}
    created = document.get("created_at")
    return Sidecar(
        source=source,
        kind=kind,
        item_id=item_id,
        folder=folder,
        created_at=created if isinstance(created, str) else None,
        record=document.get("record"),
        files=tuple(rows[:current]),
        previous=tuple(row for row in rows[current:] if row.name not in names),
    )


def _file_row(folder: str, role: Any, entry: Any) -> FileRow | str:
    """One file of a sidecar as a manifest row, or why it cannot be one."""
    if not isinstance(entry, dict) or not isinstance(role, str):
        return "a file entry that is not one"
    name, size, digest = entry.get("name"), entry.get("bytes"), entry.get("sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return f"{role}: no size"
    if not isinstance(digest, str) or len(digest) != 64:
        return f"{role}: no sha256"
    # The file lies beside its sidecar, under a name of its own: anything else (`../x`, a
    # subfolder, a dot name, the sidecar itself) would point the manifest outside the item.
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        return f"{role}: a file name that leads out of its folder"
    if name.startswith(".") or name == SIDECAR or "\0" in name:
        return f"{role}: a file name the archive does not give"
    try:
        path = within("", f"{folder}/{name}")
    except ValueError:
        return f"{role}: a path that leads out of the archive"
    url, content_type = entry.get("url"), entry.get("content_type")
    return FileRow(
        name=name,
        role=role,
        path=path,
        url=url if isinstance(url, str) else "",
        bytes=size,
        sha256=digest.lower(),
        content_type=content_type if isinstance(content_type, str) else None,
    )


async def adopt_sidecars(
    reader: SidecarReader, manifest: ManifestStore, run_id: int, *, at_once: int = CHECKS_AT_ONCE
) -> Adoption:
    """Record as archived every item whose sidecar `reader` finds whole, unless already so.

    `at_once` items are checked together; sidecars are read no faster than they are checked,
    so memory holds a few of them, never the archive's.
    """
    result = Adoption()
    recorder = _Recorder(manifest, run_id)
    claimed: set[tuple[str, str, str]] = set()
    queue: asyncio.Queue[Sidecar | None] = asyncio.Queue(maxsize=at_once)

    async def check() -> None:
        while (sidecar := await queue.get()) is not None:
            # Every file is checked, even after one fails: a reader may set damage aside.
            current = [await reader.holds(row) for row in sidecar.files]
            kept = tuple([row for row in sidecar.previous if await reader.holds(row)])
            if all(current):
                # An earlier version that does not check out is only left out of the record.
                recorder.add(dataclasses.replace(sidecar, previous=kept))
                result.adopted += 1
            else:
                result.refused += 1

    try:
        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(check()) for _ in range(at_once)]
            async for folder, data in reader.sidecars():
                sidecar = parse_sidecar(folder, data)
                if isinstance(sidecar, str):
                    result.skipped += 1
                    if result.skipped <= SKIPS_TOLD:
                        log.warning("skipped the sidecar %s/%s: %s", folder, SIDECAR, sidecar)
                    continue
                result.sidecars += 1
                key = (sidecar.source, sidecar.kind, sidecar.item_id)
                if key in claimed or _archived(manifest, sidecar):
                    continue  # the first sidecar of an item is the one taken
                claimed.add(key)
                await queue.put(sidecar)
            for _ in workers:
                await queue.put(None)
    except BaseExceptionGroup as group:
        # The store's error as it came (a `TransferError` of one request), for the run to tell.
        raise group.exceptions[0] from None
    recorder.flush()
    return result


def _archived(manifest: ManifestStore, sidecar: Sidecar) -> bool:
    known = manifest.lookup(sidecar.source, sidecar.kind, [sidecar.item_id]).get(sidecar.item_id)
    return known is not None and known.state == "archived"


class _Recorder:
    """Items found whole, written to the manifest a batch at a time.

    Only what the manifest keeps of a record (its digest and fingerprint) waits for the batch,
    not the record itself.
    """

    def __init__(self, manifest: ManifestStore, run_id: int) -> None:
        self.manifest = manifest
        self.run_id = run_id
        self.seen: dict[str, list[Seen]] = {}
        self.outcomes: list[Outcome] = []
        self.retired: dict[tuple[str, str, str], list[str]] = {}

    def add(self, s: Sidecar) -> None:
        mark = fingerprint(s.record)
        seen = Seen(s.kind, s.item_id, s.folder, s.created_at, record_digest(s.record), mark)
        self.seen.setdefault(s.source, []).append(seen)
        # Earlier versions first: each current file then retires those of its role.
        self.outcomes.append(Outcome(s.source, s.kind, s.item_id, mark, s.previous + s.files, None))
        if s.previous:
            self.retired[(s.source, s.kind, s.item_id)] = [f.name for f in s.previous]
        if len(self.outcomes) >= BATCH:
            self.flush()

    def flush(self) -> None:
        for source, seen in self.seen.items():
            self.manifest.mark_seen(source, self.run_id, seen)
        self.manifest.record(self.run_id, self.outcomes)
        if self.retired:
            self.manifest.retire_files(self.retired)
        self.seen, self.outcomes, self.retired = {}, [], {}


class BucketSidecars:
    """The sidecars of an archive in a bucket: checked by a HEAD of each file."""

    def __init__(self, store: BucketStore) -> None:
        self.store = store

    async def sidecars(self) -> AsyncIterator[tuple[str, bytes | None]]:
        async for relative, size in self.store.keys():
            if not relative.endswith(f"/{SIDECAR}") or relative.startswith(".archiver/"):
                continue
            folder = relative.rsplit("/", 1)[0]
            yield folder, await self.store.read(relative) if size <= MAX_SIDECAR else None

    async def holds(self, row: FileRow) -> bool:
        found = await self.store.head(row.path)
        # An object uploaded without its sha256 stamped (over 5 GiB) is taken on its size.
        return found is not None and found.size == row.bytes and found.sha256 in (None, row.sha256)
