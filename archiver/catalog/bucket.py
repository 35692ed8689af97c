"""The catalog of an archive in a bucket: `index.html`, `index-data.js` and `index-first.js`.

The same three files as in a folder, at the prefix's root, built the same way from the state
folder's manifest (`data`, `first`), so that the bucket served as a static web site, or
synced down (`aws s3 sync`), browses like a local archive: every link is relative to the
prefix. The data script is written to a temporary file in the state folder, then uploaded
from it as a media file is (one PUT, or a multipart upload above `part_size`: the memory it
takes stays bounded however large the archive); the small first script goes up next, and the
page last, as it names the data scripts' build.

Whether each file is in the bucket is taken from the manifest: a HEAD per file would cost
minutes at 200,000 items, and checking the objects is `verify`'s work. Items the manifest does
not describe are described once from their sidecars in the bucket (`backfill`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from archiver.catalog.backfill import Backfill
from archiver.catalog.build import (
    DATA_NAME,
    FIRST_NAME,
    INDEX_NAME,
    WRITER_WAIT,
    new_build,
    render_page,
)
from archiver.catalog.data import SIDECAR_NAME, href, write_data
from archiver.catalog.first import FirstScreen, write_first
from archiver.config.settings import BucketSettings
from archiver.errors import ArchiverError, ManifestError
from archiver.store.archivefs import NEW_FILE_FLAGS, Folder, open_root, remove_leftovers
from archiver.store.manifest import MANIFEST, ManifestStore
from archiver.store.s3 import BucketStore

# As a web server would send them, so that a bucket served as a site shows the page.
PAGE_TYPE = "text/html; charset=utf-8"
DATA_TYPE = "text/javascript; charset=utf-8"
READ_BLOCK = 1 << 20


def write_bucket_catalog(
    settings: BucketSettings, state_dir: Path, *, locked: bool = False, if_missing: bool = False
) -> str | None:
    """Rebuild the catalog at the bucket prefix's root; return the page's `s3://` URL.

    `locked`: the caller holds the state folder's lock, so a temporary file a killed build
    left there is deleted. `if_missing`: only if the bucket has no catalog yet (None if it
    has). Raises `ManifestError` without a manifest, `ArchiveWriteError` if the manifest cannot
    keep the descriptions of items it had none of, an `ArchiverError` if the store fails.
    """
    path = state_dir / MANIFEST
    if not path.is_file():
        raise ManifestError(f"cannot build the catalog: no manifest at {path}")
    manifest = ManifestStore.open(path)  # for writing: see `write_catalog`
    try:
        manifest.wait_for_writers(WRITER_WAIT)
        state = open_root(state_dir)
    except ArchiverError:
        manifest.close()
        raise
    try:
        if locked:
            remove_leftovers(state, (DATA_NAME,))
        return asyncio.run(_write(settings, state, manifest, if_missing=if_missing))
    finally:
        manifest.close()
        os.close(state.fd)


async def _write(
    settings: BucketSettings, state: Folder, manifest: ManifestStore, *, if_missing: bool
) -> str | None:
    async with BucketStore(settings) as store:
        if if_missing and await store.head(INDEX_NAME) is not None:
            return None
        backfill = Backfill(manifest)
        for batch in backfill.batches():
            sidecars = [_read_sidecar(store, item.folder) for item in batch]
            backfill.keep(batch, await asyncio.gather(*sidecars))
        if backfill.stopped is not None:  # what is not described would show as unreadable
            raise backfill.stopped
        build = new_build()
        first = FirstScreen()
        with _scratch(state) as scratch:
            text = io.TextIOWrapper(scratch, encoding="utf-8", newline="\n")
            try:
                counts = write_data(
                    manifest.catalog_items(),
                    text,
                    build,
                    present=lambda relative: True,  # the manifest's word (see above)
                    fallback=lambda item: None,  # what `backfill` could not read is unreadable
                    first=first,
                )
                text.flush()
            finally:
                text.detach()
            await _upload(store, scratch, DATA_NAME, DATA_TYPE)
        small = io.StringIO()  # about 100 KB: one PUT from memory
        write_first(first, small, build, counts)
        await store.put_bytes(FIRST_NAME, small.getvalue().encode("utf-8"), content_type=DATA_TYPE)
        page = render_page(build, counts).encode("utf-8")
        await store.put_bytes(INDEX_NAME, page, content_type=PAGE_TYPE)
        return store.where(INDEX_NAME)


@contextlib.contextmanager
def _scratch(state: Folder) -> Iterator[BinaryIO]:
    """A new file in the state folder to write and read back; gone afterwards.

    Named as the archive's temporary files are, so that the next run deletes one that a
    killed build left (`remove_leftovers`).
    """
    name = f".{DATA_NAME}.{secrets.token_hex(6)}.tmp"
    fd = os.open(name, (NEW_FILE_FLAGS & ~os.O_WRONLY) | os.O_RDWR, 0o600, dir_fd=state.fd)
    try:
        with open(fd, "w+b") as scratch:
            yield scratch
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=state.fd)


async def _read_sidecar(store: BucketStore, folder: str) -> bytes | None:
    if href(folder) is None:  # a folder that could lead out of the archive is never read
        return None
    try:
        return await store.read(f"{folder}/{SIDECAR_NAME}")
    except ArchiverError:  # the store failed this one: described by a later build
        return None


async def _upload(store: BucketStore, source: BinaryIO, relative: str, kind: str) -> None:
    """Stream a local file into the object `relative`, final only once whole."""
    source.seek(0)
    upload = store.upload(relative, kind)
    try:
        while block := source.read(READ_BLOCK):
            await upload.append(block)
        await upload.finish()
    except BaseException:
        await upload.abort()
        raise
