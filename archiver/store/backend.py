"""Where the archive's items go: one interface, a local folder or a bucket.

The pipeline archives an item through an `ArchiveStore` without knowing which it is: it opens
the item's place, asks whether a file archived before is still whole, fetches each file into
the place, then puts the sidecar. Both implementations keep the same promises (a file appears
under its final name only when complete, its sha256 checked; nothing goes through a link).

- `FolderStore` (here): today's local archive, through `archivefs` (the item's folder opened
  once, never through a link) and `download_file` (a `.part` resumed, renamed when complete).
  What it writes is returned, to be made durable in the batch flush before the manifest says so.
- `BucketItems` (`archiver.store.s3`): objects in a bucket, streamed in by `upload_file`;
  each is durable once its upload returns, so nothing is returned to flush.

The job opens its store with `open_store` (a bucket needs a client on the job's event loop);
after the job, `store_of` gives the run's steps that follow (`publish_checksums`) the same
interface, so neither asks which store it is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from archiver.store.archivefs import Folder, ItemFolders, remove_leftovers
from archiver.store.checksums import write_checksums
from archiver.store.freespace import FreeSpace
from archiver.store.manifest import FileRow, ManifestStore
from archiver.store.paths import within
from archiver.store.sidecar import write_sidecar

if TYPE_CHECKING:
    from archiver.config.settings import Config
    from archiver.net.download import FetchedFile
    from archiver.net.http import HttpClient
    from archiver.net.segments import SplitBoard
    from archiver.sources.records import MediaRef


@dataclass(frozen=True, slots=True)
class Fetch:
    """One file to fetch into an item's place."""

    http: HttpClient
    ref: MediaRef
    stem: str
    max_bytes: int
    progress: Callable[[int], None]
    splits: SplitBoard | None = None  # where idle slots may take half of it (a folder only)


class ItemPlace(Protocol):
    """One item's folder in the archive, open while its files and sidecar go in."""

    @property
    def path(self) -> str:
        """Where it is, for messages."""
        ...

    async def whole(self, row: FileRow) -> bool:
        """Whether a file archived before is still there, of its recorded size."""
        ...

    async def fetch(self, job: Fetch) -> tuple[FetchedFile, str | None]:
        """Fetch one file into the place; it, and what to flush to disk (None: nothing)."""
        ...

    async def put_sidecar(self, data: bytes) -> str | None:
        """Write the item's `metadata.json` atomically; what to flush (None: nothing)."""
        ...

    def close(self) -> None: ...


class ArchiveStore(Protocol):
    """Where the archive lives, as the pipeline and the steps after the job see it."""

    def open_item(self, folder: str) -> ItemPlace:
        """The place of the item at `folder` (relative to the archive), made if missing.

        Raises an `ArchiverError`: an `ArchiveWriteError` stops the run, any other fails
        the item only.
        """
        ...

    def publish_checksums(self, manifest: ManifestStore, source: str) -> None:
        """Bring `<source>/SHA256SUMS` in line with the manifest (after the job)."""
        ...

    def publish_catalog(self, state_dir: Path, *, eventful: bool) -> None:
        """Rebuild the catalog from the manifest in `state_dir`, after a run with news or
        where there is none yet. The caller holds the archive's lock."""
        ...

    def close(self) -> None: ...


@contextlib.asynccontextmanager
async def open_store(
    config: Config, space: FreeSpace | None, *, connections: int, dry_run: bool = False
) -> AsyncIterator[ArchiveStore]:
    """The archive's store for the job, open while the block runs, closed after.

    A dry run writes nothing: it gets the folder store of the archive (or state) folder, and
    no bucket is opened.
    """
    if config.s3 is None or dry_run:
        folder = FolderStore(str(config.archive_dir), space)
        try:
            yield folder
        finally:
            folder.close()
        return
    # An optional extra (aiobotocore), imported for a bucket only.
    from archiver.store.remote import open_bucket_items

    async with open_bucket_items(config.s3, config.archive_dir, connections) as items:
        yield items


def store_of(config: Config) -> ArchiveStore:
    """The archive's store, for the steps that follow the job."""
    if config.s3 is None:
        return FolderStore(str(config.archive_dir), None)
    # An optional extra (aiobotocore), imported for a bucket only.
    from archiver.store.s3 import BucketItems, BucketStore

    return BucketItems(BucketStore(config.s3), None)


class FolderStore:
    """The archive in a local folder."""

    def __init__(self, root: str, space: FreeSpace | None) -> None:
        self.root = root
        self.space = space
        self._folders = ItemFolders(root)

    def open_item(self, folder: str) -> FolderPlace:
        opened, made = self._folders.open(folder)
        if not made:
            # A run killed while writing the sidecar left its temporary file: it is redone now.
            try:
                remove_leftovers(opened)
            except BaseException:
                os.close(opened.fd)
                raise
        return FolderPlace(self, opened, made)

    def publish_checksums(self, manifest: ManifestStore, source: str) -> None:
        write_checksums(manifest, Path(self.root), source)

    def publish_catalog(self, state_dir: Path, *, eventful: bool) -> None:
        if eventful or not (state_dir / "index.html").exists():
            # Imported here: a run that changed nothing, the usual nightly one, needs none.
            from archiver.catalog.build import write_catalog

            write_catalog(state_dir, locked=True)

    def close(self) -> None:
        self._folders.close()


class FolderPlace:
    """An item's folder, open (its descriptor) while the item is archived."""

    def __init__(self, store: FolderStore, folder: Folder, made: bool) -> None:
        self.store = store
        self.folder = folder
        self.made = made  # new in this run: no `.part` of an earlier run can be in it

    @property
    def path(self) -> str:
        return self.folder.path

    async def whole(self, row: FileRow) -> bool:
        try:
            return os.stat(within(f"{self.store.root}/", row.path)).st_size == row.bytes  # noqa: PTH116
        except (OSError, ValueError):  # gone, or a row that would lead out of the archive
            return False

    async def fetch(self, job: Fetch) -> tuple[FetchedFile, str | None]:
        from archiver.net.download import download_file

        fetched = await download_file(
            job.http,
            job.ref.role,
            job.ref.url,
            self.folder.path,
            job.stem,
            max_bytes=job.max_bytes,
            progress=job.progress,
            new_folder=self.made,
            space=self.store.space,
            expects=job.ref.expects,
            splits=job.splits,
        )
        return fetched, f"{self.folder.path}/{fetched.name}"

    async def put_sidecar(self, data: bytes) -> str | None:
        return write_sidecar(self.folder, data)

    def close(self) -> None:
        os.close(self.folder.fd)
