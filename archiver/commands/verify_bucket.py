"""`archiver verify` of an archive in a bucket: the same checks, through the store's API.

`--quick` asks each object's HEAD: it must be there, of the manifest's size, with the manifest's
sha256 stored with it. A full verify reads every object back and hashes it. Either way each
item's sidecar is read and checked against the manifest, and the bucket is listed for objects
the manifest does not know (strays, left in place). A damaged object is first copied, by the
store itself, to `.archiver/quarantine/<UTC time>/<its path>` (kept, never deleted); its item
goes back to pending, and the next run uploads it again over the damaged one. The manifest's
copy in the bucket is then brought in line.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from archiver.commands.verify import (
    Problem,
    VerifyResult,
    _tell,
    mark_for_refetch,
    sidecar_problem,
)
from archiver.config.settings import BucketSettings, Config
from archiver.errors import ArchiverError, UsageError
from archiver.store.hashing import new_sha256
from archiver.store.lock import ArchiveLock
from archiver.store.manifest import MANIFEST, ManifestStore
from archiver.store.multipart import STAMPED_UP_TO
from archiver.store.paths import safe_name
from archiver.store.payload import OWN_ANYWHERE, QUARANTINE, Payload
from archiver.store.queries import VerifyItem
from archiver.store.remote import BucketLock, publish_manifest, take_over
from archiver.store.s3 import BucketStore
from archiver.store.sidecar import SIDECAR

# Items checked at once: HEADs and reads overlap, the store's latency hidden.
IN_FLIGHT = 16
OWN_AT_ROOT = ("index.html", "index-data.js", "index-first.js")


def run_bucket_verify(
    config: Config,
    settings: BucketSettings,
    sources: tuple[str, ...],
    *,
    quick: bool,
    interactive: bool,
    verbosity: int,
) -> int:
    """`archiver verify` of a bucket archive: 0 if all is well, else 1."""
    state = config.archive_dir
    path = state / MANIFEST
    if not path.exists() and not (state.is_dir() and take_over(settings, path)):
        raise UsageError(f"{settings.url}: no archive here: nothing has been archived yet")
    with ArchiveLock(state), BucketLock(settings, state):
        manifest = ManifestStore.open(path)
        try:
            items = manifest.archived_for_verify(sources)
            known = manifest.file_paths(sources)
            result, payload = asyncio.run(_verify(settings, items, known, sources, quick))
            if result.problems:
                mark_for_refetch(manifest, state, result.problems, quarantined=True)
                publish_manifest(settings, manifest, state)
        finally:
            manifest.close()
    _tell(result, payload, interactive=interactive, verbosity=verbosity)
    return 1 if result.problems or payload.strays else 0


async def _verify(
    settings: BucketSettings,
    items: list[VerifyItem],
    known: set[str],
    sources: tuple[str, ...],
    quick: bool,
) -> tuple[VerifyResult, Payload]:
    result = VerifyResult(items=len(items))
    async with BucketStore(settings, connections=IN_FLIGHT) as store:
        limit = asyncio.Semaphore(IN_FLIGHT)

        async def one(item: VerifyItem) -> tuple[list[Problem], int, int]:
            async with limit:
                return await _check_item(store, item, quick)

        for problems, files, size in await asyncio.gather(*(one(i) for i in items)):
            result.problems.extend(problems)
            result.files += files
            result.bytes += size
        if result.problems:
            await _quarantine(store, items, result.problems)
        payload = await _strays(store, known, sources)
    return result, payload


async def _check_item(
    store: BucketStore, item: VerifyItem, quick: bool
) -> tuple[list[Problem], int, int]:
    source, kind, item_id, folder, files = item
    problems: list[Problem] = []
    current: dict[str, str] = {}
    total = 0
    for name, path, size, sha256, is_current in files:
        what, seen = await _check_object(store, path, size, sha256, quick)
        total += seen
        if what is not None:
            problems.append(Problem(source, kind, item_id, f"{name}: {what}"))
        if is_current:
            current[name] = sha256
    try:
        data = await store.read(f"{folder}/{SIDECAR}")
    except ArchiverError as exc:
        what = f"unreadable ({exc})"
    else:
        what = "missing" if data is None else sidecar_problem(data, current)
    if what is not None:
        problems.append(Problem(source, kind, item_id, f"{SIDECAR}: {what}"))
    return problems, len(files), total


async def _check_object(
    store: BucketStore, path: str, expected: int, sha256: str, quick: bool
) -> tuple[str | None, int]:
    try:
        if quick:
            found = await store.head(path)
            if found is None:
                return "missing", 0
            if found.size != expected:
                return f"size {found.size}, expected {expected}", 0
            if found.sha256 != sha256 and (found.sha256 or found.size <= STAMPED_UP_TO):
                # Every object archiver writes has its sha256 stored with it (up to the size a
                # copy can stamp): one without was written by something else.
                return "content changed (the sha256 stored with it differs)", 0
            return None, found.size
        digest = new_sha256()
        size = 0
        async for chunk in store.stream(path):
            if chunk is None:
                return "missing", 0
            digest.update(chunk)
            size += len(chunk)
    except ArchiverError as exc:
        return f"unreadable ({exc})", 0
    if size != expected:
        return f"size {size}, expected {expected}", 0
    if digest.hexdigest() != sha256:
        return "content changed (sha256 differs)", size
    return None, size


async def _quarantine(store: BucketStore, items: list[VerifyItem], problems: list[Problem]) -> None:
    """Copy each damaged object into the quarantine; the copy is the store's, in place."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    paths: dict[tuple[str, str, str, str], str] = {}
    for source, kind, item_id, _, files in items:
        for file in files:
            paths[(source, kind, item_id, file[0])] = file[1]
    for p in problems:
        name, _, what = p.what.partition(": ")
        path = paths.get((p.source, p.kind, p.item_id, name))
        if path is None or what == "missing":
            continue
        await store.copy(path, f"{QUARANTINE}/{stamp}/{path}")


async def _strays(store: BucketStore, known: set[str], sources: tuple[str, ...]) -> Payload:
    found = Payload()
    prefixes = [f"{safe_name(s)}/" for s in sources] or [""]
    for prefix in prefixes:
        async for relative, _ in store.keys(prefix):
            name = relative.rsplit("/", 1)[-1]
            if relative in known or name in OWN_ANYWHERE:
                continue
            if relative.startswith(".archiver/") or relative in OWN_AT_ROOT:
                continue
            found.strays.append(relative)
    found.strays.sort()
    return found
