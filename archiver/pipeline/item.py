"""Archiving one item: fetch its files into its folder, then write its sidecar.

It touches nothing but the item's own folder, opened once through the `ArchiveStore` (a local
folder or a bucket: this module does not know which), and reports what it did as an
`ItemResult`; the caller keeps the statistics, the log and the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archiver.errors import ArchivePathError, ArchiverError, ArchiveWriteError, TransferError
from archiver.net.download import FetchedFile
from archiver.net.http import HttpClient
from archiver.sources.records import ArchiveItem
from archiver.store.archivefs import archive_wide, path_error
from archiver.store.backend import ArchiveStore, Fetch, ItemPlace
from archiver.store.manifest import FileRow, utc_now
from archiver.store.paths import file_stem
from archiver.store.sidecar import SIDECAR, sidecar_bytes, sidecar_document, url_identity


@dataclass(frozen=True, slots=True)
class ItemTask:
    """One item to archive, with what the manifest knows of it. Carries no credential."""

    source: str
    source_type: str
    item: ArchiveItem
    folder: str  # relative to the archive root, already checked to stay inside it
    known_files: tuple[FileRow, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What archiving one item did: its files, the roles that failed and why, what to flush."""

    files: tuple[FileRow, ...]
    fetched: int  # files downloaded in this run (the others were archived already)
    failures: tuple[tuple[str, str], ...]  # (role, why)
    written: tuple[str, ...]  # files written, to be made durable before the manifest says so


@dataclass(frozen=True, slots=True)
class ItemLimits:
    """What every item of a run shares."""

    store: ArchiveStore  # where the archive lives: a folder or a bucket
    max_file_bytes: int


async def archive_item(
    http: HttpClient,
    task: ItemTask,
    limits: ItemLimits,
    received: Callable[[int], None] = lambda n: None,
) -> ItemResult:
    """Fetch the item's files that are not archived yet; write its sidecar if none failed.

    Whatever goes wrong with one file fails its role and the item, not the run: a file that
    cannot be had (`TransferError`), or a path of the item that cannot be used (a link, a
    folder where a file should be: any `OSError` not of the whole archive). An error of the
    whole archive (a full disk) is raised, as an `ArchiveWriteError`.
    """
    try:
        place = limits.store.open_item(task.folder)
    except ArchiverError as exc:
        if isinstance(exc, ArchiveWriteError):
            raise
        return ItemResult((), 0, (("folder", str(exc)),), ())
    try:
        return await _fill(http, task, limits, place, received)
    finally:
        place.close()


async def _fill(
    http: HttpClient,
    task: ItemTask,
    limits: ItemLimits,
    place: ItemPlace,
    received: Callable[[int], None],
) -> ItemResult:
    """The item's files, then its sidecar, into its open `place`."""
    item = task.item
    files: list[FileRow] = []
    written: list[str] = []
    failures: list[tuple[str, str]] = []
    fetched_count = 0
    for ref in item.media:
        reuse = await _reusable(place, task.known_files, ref.role, ref.url)
        if reuse is not None:
            files.append(reuse)
            continue
        stem = _free_stem(file_stem(ref), ref.role, ref.url, task.known_files)
        try:
            fetched, path = await place.fetch(
                Fetch(http, ref, stem, limits.max_file_bytes, received)
            )
        except (ArchiverError, OSError) as exc:
            failures.append((ref.role, _why(exc, place.path)))
            continue
        fetched_count += 1
        if path is not None:
            written.append(path)
        files.append(_file_row(task.folder, fetched))
    if not failures:
        try:
            path = await place.put_sidecar(sidecar_bytes(_document(task, files)))
        except ArchiveWriteError:
            raise  # the whole archive cannot be written: the run stops
        except ArchiverError as exc:  # a link in the way, a store refusing this one object
            failures.append((SIDECAR, str(exc)))
        else:
            if path is not None:
                written.append(path)
    return ItemResult(tuple(files), fetched_count, tuple(failures), tuple(written))


def _why(exc: ArchiverError | OSError, folder: str) -> str:
    """Why one file failed, in one line naming the path; re-raises what ends the run."""
    if isinstance(exc, TransferError | ArchivePathError):
        return str(exc)
    if isinstance(exc, OSError):
        where = str(exc.filename or folder)
        if archive_wide(exc):
            raise path_error(where, exc) from exc
        return f"{where}: {exc.strerror}"
    if archive_wide(exc):
        raise exc
    return str(exc)


def _file_row(folder: str, fetched: FetchedFile) -> FileRow:
    return FileRow(
        name=fetched.name,
        role=fetched.role,
        path=f"{folder}/{fetched.name}",
        url=fetched.url,
        bytes=fetched.bytes,
        sha256=fetched.sha256,
        content_type=fetched.content_type,
    )


def _document(task: ItemTask, files: list[FileRow]) -> dict[str, Any]:
    current = {f.name for f in files}
    return sidecar_document(
        source=task.source,
        source_type=task.source_type,
        item=task.item,
        files=files,
        missing=dict(task.item.problems),
        previous=[f for f in task.known_files if f.name not in current],
        archived_at=utc_now(),
    )


async def _reusable(
    place: ItemPlace, known: tuple[FileRow, ...], role: str, url: str
) -> FileRow | None:
    """An archived file of this role from the same URL, still whole in the archive."""
    if not known:
        return None
    identity = url_identity(url)
    for f in known:
        if f.role == role and url_identity(f.url) == identity:
            return f if await place.whole(f) else None
    return None


def _free_stem(stem: str, role: str, url: str, known: tuple[FileRow, ...]) -> str:
    """`stem`, or `stem.2`, ... if an archived file of another URL already has that name."""
    if not known:
        return stem
    identity = url_identity(url)
    taken = {f.name.rsplit(".", 1)[0] for f in known if url_identity(f.url) != identity}
    if stem not in taken:
        return stem
    n = 2
    while f"{stem}.{n}" in taken:
        n += 1
    return f"{stem}.{n}"
