"""Archiving one item: fetch its files into its folder, then write its sidecar.

An item is opened once (`open_item`), its place through the `ArchiveStore` (a local folder or
a bucket: this module does not know which); its files are then units of work of their own
(`ItemRun.fetch`), which the job's download slots take in any order, several at once; the
last one done finishes the item (`ItemRun.finish`). It touches nothing but the item's own
folder and reports what it did as an `ItemResult`; the caller keeps the statistics, the log
and the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archiver.errors import ArchivePathError, ArchiverError, ArchiveWriteError, TransferError
from archiver.net.download import FetchedFile
from archiver.net.http import HttpClient
from archiver.net.segments import SplitBoard
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
    splits: SplitBoard | None = None  # downloads that idle slots may take half of


class ItemRun:
    """One item in flight: its place open while the job's download slots fetch its files.

    The slots take files, not items, so a task's cover does not wait behind its video and no
    slot idles while another holds a whole task; several files of one item may be fetched at
    once. The item is finished (its sidecar written, if every file is whole) by whoever
    completes its last file.
    """

    def __init__(self, task: ItemTask, limits: ItemLimits, place: ItemPlace) -> None:
        self.task = task
        self.limits = limits
        self.place = place
        self.files = tuple(enumerate(task.item.media))  # (index, ref): one unit of work each
        self._rows: list[FileRow | None] = [None] * len(self.files)
        self._left = len(self.files)
        self._fetched = 0
        self._written: list[str] = []
        self._failures: list[tuple[int, str, str]] = []  # (index, role, why)
        self._open = True

    @property
    def done(self) -> bool:
        """Whether every file has been fetched, kept or failed."""
        return self._left == 0

    async def fetch(
        self, index: int, http: HttpClient, received: Callable[[int], None] = lambda n: None
    ) -> None:
        """Fetch the item's file `index`, or keep it if archived before and still whole.

        Whatever goes wrong with the file fails its role and the item, not the run: a file
        that cannot be had (`TransferError`), or a path that cannot be used (a link, a folder
        where a file should be: any `OSError` not of the whole archive). An error of the whole
        archive (a full disk) is raised, as an `ArchiveWriteError`.
        """
        ref = self.task.item.media[index]
        known = self.task.known_files
        try:
            reuse = await _reusable(self.place, known, ref.role, ref.url)
            if reuse is not None:
                self._rows[index] = reuse
                return
            stem = _free_stem(file_stem(ref), ref.role, ref.url, known)
            try:
                fetched, path = await self.place.fetch(
                    Fetch(http, ref, stem, self.limits.max_file_bytes, received, self.limits.splits)
                )
            except (ArchiverError, OSError) as exc:
                self._failures.append((index, ref.role, _why(exc, self.place.path)))
                return
            self._fetched += 1
            if path is not None:
                self._written.append(path)
            self._rows[index] = _file_row(self.task.folder, fetched)
        finally:
            self._left -= 1

    def fail(self, index: int, why: str) -> None:
        """Count file `index` as failed for a reason met outside `fetch` (a bug)."""
        self._failures.append((index, self.task.item.media[index].role, why))

    async def finish(self) -> ItemResult:
        """Write the sidecar if no file failed, close the place; what the item did."""
        files = [row for row in self._rows if row is not None]
        try:
            if not self._failures:
                await self._put_sidecar(files)
        finally:
            self.close()
        # In the item's order, however the files' downloads ended.
        failures = tuple((role, why) for _, role, why in sorted(self._failures))
        return ItemResult(tuple(files), self._fetched, failures, tuple(self._written))

    async def _put_sidecar(self, files: list[FileRow]) -> None:
        try:
            path = await self.place.put_sidecar(sidecar_bytes(_document(self.task, files)))
        except ArchiveWriteError:
            raise  # the whole archive cannot be written: the run stops
        except ArchiverError as exc:  # a link in the way, a store refusing this one object
            self._failures.append((len(self.files), SIDECAR, str(exc)))
        else:
            if path is not None:
                self._written.append(path)

    def close(self) -> None:
        """Let go of the item's place (once; a run that stops closes what is left open)."""
        if self._open:
            self._open = False
            self.place.close()


def open_item(task: ItemTask, limits: ItemLimits) -> ItemRun | ItemResult:
    """The item's place opened, ready for its files; or its failure, if the folder is unusable.

    An `ArchiveWriteError` (the whole archive cannot be written) is raised.
    """
    try:
        place = limits.store.open_item(task.folder)
    except ArchiverError as exc:
        if isinstance(exc, ArchiveWriteError):
            raise
        return ItemResult((), 0, (("folder", str(exc)),), ())
    return ItemRun(task, limits, place)


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
