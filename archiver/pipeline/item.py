"""Archiving one item: fetch its files into its folder, then write its sidecar.

It touches nothing but the item's own folder, opened once, never through a link, and reports
what it did as an `ItemResult`; the caller keeps the statistics, the log and the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archiver.errors import ArchivePathError, ArchiverError, ArchiveWriteError, TransferError
from archiver.net.download import FetchedFile, download_file
from archiver.net.http import HttpClient
from archiver.net.upload import upload_file
from archiver.sources.records import ArchiveItem
from archiver.store.archivefs import Folder, ItemFolders, archive_wide, path_error
from archiver.store.freespace import FreeSpace
from archiver.store.manifest import FileRow, utc_now
from archiver.store.paths import file_stem, within
from archiver.store.sidecar import (
    SIDECAR,
    sidecar_bytes,
    sidecar_document,
    url_identity,
    write_sidecar,
)

if TYPE_CHECKING:  # aiobotocore is an optional extra, and costs its import time
    from archiver.store.s3 import BucketStore
    from archiver.store.uploads import UploadRecords

JSON = "application/json"


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

    root: str  # the archive folder
    max_file_bytes: int
    folders: ItemFolders  # opens item folders without following links
    space: FreeSpace | None = None  # min_free_space, checked per file and per block written
    bucket: BucketStore | None = None  # the archive's bucket; None for a local archive
    uploads: UploadRecords | None = None  # a bucket's multipart uploads, for their resume


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
    if limits.bucket is not None:
        return await _fill_bucket(http, task, limits, limits.bucket, received)
    try:
        folder, made = limits.folders.open(task.folder)
    except ArchiverError as exc:
        if isinstance(exc, ArchiveWriteError):
            raise
        return ItemResult((), 0, (("folder", str(exc)),), ())
    try:
        return await _fill_folder(http, task, limits, folder, made, received)
    finally:
        os.close(folder.fd)


async def _fill_folder(
    http: HttpClient,
    task: ItemTask,
    limits: ItemLimits,
    folder: Folder,
    made: bool,
    received: Callable[[int], None],
) -> ItemResult:
    """The item's files, then its sidecar, into its open `folder` (`made` if new this run)."""
    item = task.item
    files: list[FileRow] = []
    written: list[str] = []
    failures: list[tuple[str, str]] = []
    for ref in item.media:
        reuse = _reusable(task.known_files, ref.role, ref.url, limits.root)
        if reuse is not None:
            files.append(reuse)
            continue
        stem = _free_stem(file_stem(ref), ref.role, ref.url, task.known_files)
        try:
            fetched = await download_file(
                http,
                ref.role,
                ref.url,
                folder.path,
                stem,
                max_bytes=limits.max_file_bytes,
                progress=received,
                # A folder made just now holds nothing of an earlier run: no file of it
                # needs a look for a `.part` or an orphan.
                new_folder=made,
                space=limits.space,
                expects=ref.expects,
            )
        except (ArchiverError, OSError) as exc:
            failures.append((ref.role, _why(exc, folder.path)))
            continue
        written.append(f"{folder.path}/{fetched.name}")
        files.append(_file_row(task.folder, fetched))
    count = len(written)
    if not failures:
        try:
            written.append(write_sidecar(folder, _document(task, files)))
        except ArchivePathError as exc:
            failures.append((SIDECAR, str(exc)))
    return ItemResult(tuple(files), count, tuple(failures), tuple(written))


async def _fill_bucket(
    http: HttpClient,
    task: ItemTask,
    limits: ItemLimits,
    store: BucketStore,
    received: Callable[[int], None],
) -> ItemResult:
    """The item's files, then its sidecar, as objects under its folder's key in `store`.

    Each object is final once its upload returns: there is nothing to flush afterwards.
    """
    item = task.item
    files: list[FileRow] = []
    failures: list[tuple[str, str]] = []
    fetched_count = 0
    for ref in item.media:
        reuse = await _reusable_object(store, task.known_files, ref.role, ref.url)
        if reuse is not None:
            files.append(reuse)
            continue
        stem = _free_stem(file_stem(ref), ref.role, ref.url, task.known_files)
        try:
            fetched = await upload_file(
                http,
                store,
                ref.role,
                ref.url,
                task.folder,
                stem,
                max_bytes=limits.max_file_bytes,
                progress=received,
                expects=ref.expects,
                records=limits.uploads,
            )
        except ArchiverError as exc:
            failures.append((ref.role, str(exc)))
            continue
        fetched_count += 1
        files.append(_file_row(task.folder, fetched))
    if not failures:
        try:
            data = sidecar_bytes(_document(task, files))
            await store.put_bytes(f"{task.folder}/{SIDECAR}", data, content_type=JSON)
        except ArchiverError as exc:
            failures.append((SIDECAR, str(exc)))
    return ItemResult(tuple(files), fetched_count, tuple(failures), ())


async def _reusable_object(
    store: BucketStore, known: tuple[FileRow, ...], role: str, url: str
) -> FileRow | None:
    """An archived file of this role from the same URL, still whole in the bucket."""
    identity = url_identity(url)
    for f in known:
        if f.role == role and url_identity(f.url) == identity:
            found = await store.head(f.path)
            return f if found is not None and found.size == f.bytes else None
    return None


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


def _reusable(known: tuple[FileRow, ...], role: str, url: str, root: str) -> FileRow | None:
    """An archived file of this role from the same URL, still whole on disk."""
    if not known:
        return None
    identity = url_identity(url)
    for f in known:
        if f.role == role and url_identity(f.url) == identity:
            try:
                if os.stat(within(f"{root}/", f.path)).st_size == f.bytes:  # noqa: PTH116
                    return f
            except (OSError, ValueError):  # gone, or a row that would lead out of the archive
                return None
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
