"""Archiving one item: fetch its files into its folder, then write its sidecar.

It touches nothing but the item's own folder, and reports what it did as an `ItemResult`; the
caller keeps the statistics, the log and the manifest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from archiver.download import download_file
from archiver.errors import TransferError
from archiver.freespace import FreeSpace
from archiver.http import HttpClient
from archiver.manifest import FileRow, utc_now
from archiver.paths import file_stem, within
from archiver.records import ArchiveItem
from archiver.sidecar import sidecar_document, url_identity, write_sidecar


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
    space: FreeSpace | None = None  # min_free_space, checked per file and per block written


async def archive_item(
    http: HttpClient,
    task: ItemTask,
    limits: ItemLimits,
    received: Callable[[int], None] = lambda n: None,
) -> ItemResult:
    """Fetch the item's files that are not archived yet; write its sidecar if none failed.

    A file that cannot be had (`TransferError`) fails its role and the item, not the run; an
    `ArchiveWriteError` (a full disk) is raised.
    """
    item = task.item
    folder = f"{limits.root}/{task.folder}"
    # A folder that is not there holds nothing of an earlier run: no file of it needs a
    # look for a `.part` or an orphan (one stat per item, instead of a scan per file).
    new_folder = bool(item.media) and not os.path.isdir(folder)  # noqa: PTH112, ASYNC240
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
                folder,
                stem,
                max_bytes=limits.max_file_bytes,
                progress=received,
                new_folder=new_folder,
                space=limits.space,
            )
        except TransferError as exc:
            failures.append((ref.role, str(exc)))
            continue
        written.append(f"{folder}/{fetched.name}")
        files.append(
            FileRow(
                name=fetched.name,
                role=ref.role,
                path=f"{task.folder}/{fetched.name}",
                url=fetched.url,
                bytes=fetched.bytes,
                sha256=fetched.sha256,
                content_type=fetched.content_type,
            )
        )
    count = len(written)
    if not failures:
        current = {f.name for f in files}
        document = sidecar_document(
            source=task.source,
            source_type=task.source_type,
            item=item,
            files=files,
            missing=dict(item.problems),
            previous=[f for f in task.known_files if f.name not in current],
            archived_at=utc_now(),
        )
        # A few kilobytes: written where the files were, with no hop to another thread.
        written.append(write_sidecar(folder, document))
    return ItemResult(tuple(files), count, tuple(failures), tuple(written))


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
