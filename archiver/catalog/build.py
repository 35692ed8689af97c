"""The browsable catalog: `<archive_dir>/index.html`, its data script `index-data.js` and
the first screenful of that data, `index-first.js` (`first`), which the page shows first.

The catalog is rebuilt from scratch from the manifest alone (after each run with news, and by
`archiver index`), so it is never out of step with the archive: every item's texts are kept in
the manifest when it is recorded (`describe`), and the items archived before that are
described once from their sidecars (`backfill`). It is a static page that opens from the file
system: a `file://` page cannot fetch JSON, so the data rides in a sibling script that assigns
one object (`data`), and the page's own CSS and JS are inlined from `archiver/catalog/assets`.

Three rules keep the page safe to open whatever the APIs sent:

- every path in it is relative and percent-encoded per segment, so the archive can be moved and
  nothing can point outside it; original media URLs are data shown as text, never links;
- the data script escapes every `<` (so no record can close a script tag), and the page script
  puts text into the DOM only through `textContent` and attributes, never as HTML;
- a Content-Security-Policy allows nothing but the page's own nonce'd scripts and local media.

The files are written by the archive's one atomic writer (`archivefs.atomic_file`: a new
temporary file, fsync, rename): the data scripts first, then the page, which names the build
it expects and says so if they differ. The catalog of an archive in a bucket is the same three
files, uploaded (`bucket`).
"""

from __future__ import annotations

import html
import io
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from archiver.catalog.backfill import Backfill
from archiver.catalog.data import SIDECAR_NAME, href, write_data
from archiver.catalog.describe import Description, describe_sidecar
from archiver.catalog.first import FirstScreen, write_first
from archiver.errors import ArchiverError, ArchiveWriteError, ManifestError
from archiver.store.archivefs import Folder, atomic_file, open_root, remove_leftovers
from archiver.store.manifest import MANIFEST, ManifestStore
from archiver.store.queries import CatalogItem

INDEX_NAME = "index.html"
DATA_NAME = "index-data.js"
FIRST_NAME = "index-first.js"
# How long the catalog waits for a run writing the manifest to let it keep the descriptions it
# read from sidecars; after that it keeps none and reads the rest as it goes.
WRITER_WAIT = 1.0
_FADVISE = getattr(os, "posix_fadvise", None)  # not on macOS


def new_build() -> tuple[str, str]:
    """The token and time of a new build: the page checks its data script is of the same."""
    return secrets.token_hex(8), datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_catalog(archive_dir: Path, *, locked: bool = False) -> Path:
    """Rebuild `index.html`, `index-data.js` and `index-first.js`; return the page's path.

    Reads the manifest in one query, so one snapshot of it, whatever a run writes meanwhile.
    `locked` says the caller holds the archive's lock: only then are the temporary files of a
    killed earlier write deleted (without it, they may be another process's writes under way).
    Raises `ManifestError` when the manifest is missing or unreadable and `ArchiveWriteError`
    when the files cannot be written.
    """
    path = archive_dir / MANIFEST
    if not path.is_file():
        raise ManifestError(f"cannot build the catalog: no manifest at {path}")
    build = new_build()
    # Opened for writing: an older manifest is brought to the current schema, and the items
    # it does not describe yet are described once.
    manifest = ManifestStore.open(path)
    try:
        manifest.wait_for_writers(WRITER_WAIT)
        root = open_root(archive_dir)
    except ArchiverError:
        manifest.close()
        raise
    base = os.fspath(archive_dir)  # plain strings: pathlib's parsing costs at 200,000 items
    try:
        if locked:
            remove_leftovers(root, (DATA_NAME, FIRST_NAME, INDEX_NAME))
        backfill = Backfill(manifest)
        for batch in backfill.batches():
            backfill.keep(batch, [_read_sidecar(base, item.folder) for item in batch])
        first = FirstScreen()
        with _atomic_text(root, DATA_NAME) as out:
            counts = write_data(
                manifest.catalog_items(),
                out,
                build,
                present=lambda relative: _is_file(root, relative),
                fallback=lambda item: _describe_from_folder(base, item),
                first=first,
            )
        with _atomic_text(root, FIRST_NAME) as out:
            write_first(first, out, build, counts)
        with _atomic_text(root, INDEX_NAME) as out:
            out.write(render_page(build, counts))
    finally:
        manifest.close()
        os.close(root.fd)
    return archive_dir / INDEX_NAME


def _is_file(root: Folder, relative: str) -> bool:
    """Whether a file is at `relative` in the archive (as `os.path.isfile` has it)."""
    # From the archive's open folder: no part of its own path looked up 400,000 times.
    try:
        return stat.S_ISREG(os.stat(relative, dir_fd=root.fd).st_mode)
    except (OSError, ValueError):
        return False


def _describe_from_folder(base: str, item: CatalogItem) -> Description | None:
    """The description of an item the manifest could not keep one for, from its sidecar."""
    data = _read_sidecar(base, item.folder)
    return describe_sidecar(item.kind, data) if data is not None else None


def _read_sidecar(base: str, folder: str) -> bytes | None:
    if href(folder) is None:  # a folder that could lead out of the archive is never read
        return None
    try:
        with open(f"{base}/{folder}/{SIDECAR_NAME}", "rb") as sidecar:
            return sidecar.read()
    except OSError:
        return None


def render_page(build: tuple[str, str], counts: dict[str, int]) -> str:
    """The page of a build whose data script showed `counts`."""
    token, built_at = build
    assets = resources.files("archiver.catalog.assets")
    script = assets.joinpath("catalog.js").read_text(encoding="utf-8")
    style = assets.joinpath("catalog.css").read_text(encoding="utf-8")
    if "</" in script or "</" in style:  # they are inlined: such text would end the element
        raise ArchiveWriteError("catalog assets must not contain '</'")
    summary = f"{counts['tasks']:,} videos · {counts['templates']:,} templates"
    values = {
        "nonce": secrets.token_urlsafe(18),
        "token": token,
        "built": built_at,
        "data": DATA_NAME,
        "first": FIRST_NAME,
        "summary": html.escape(summary),
        "style": style,
        "script": script,
    }
    page = assets.joinpath("catalog.html").read_text(encoding="utf-8")
    # One pass, so text inserted for one placeholder is never scanned for another.
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], page)


@contextmanager
def _atomic_text(folder: Folder, name: str) -> Iterator[TextIO]:
    """Text written to `folder/name` through the archive's one atomic writer, flushed."""
    with atomic_file(folder, name, durable=True) as raw:
        stream = io.BufferedWriter(_Writeback(raw), buffer_size=1 << 20)
        out = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        try:
            yield out
            out.flush()
        finally:
            # Both layers let go, so no bytes wait in a buffer the collector would flush into a
            # file already closed: the writer closes the file itself.
            out.detach()
            stream.detach()


class _Writeback(io.RawIOBase):
    """A file's bytes, the kernel told every few MiB to start writing them to disk.

    The data script is 188 MB at 200,000 tasks: flushed only at its end, the disk wrote it
    all while the build waited (0.4-0.9 s); started as it grows, the writing overlaps the
    building and the final flush finds little left.
    """

    EVERY = 8 << 20

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._since = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._raw.write(data)
        self._since += len(data)
        if self._since >= self.EVERY and _FADVISE is not None:
            self._since = 0
            self._raw.flush()
            _FADVISE(self._raw.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        return len(data)
