"""`SHA256SUMS` per source: the archive, checkable with `sha256sum -c` and no archiver.

Paths are relative to the archive root, so `cd <archive> && sha256sum -c <source>/SHA256SUMS`
checks every file the manifest has for that source. Written atomically from the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from archiver.errors import ArchiveWriteError
from archiver.manifest import ManifestStore
from archiver.paths import inside, safe_name

FILE_NAME = "SHA256SUMS"
READ_BLOCK = 1 << 20


def write_checksums(manifest: ManifestStore, archive_dir: Path, source: str) -> Path:
    """Bring `<source>/SHA256SUMS` in line with the manifest, writing only if it differs.

    Checked every run rather than written only after news, so that a run killed between its
    last commit and this file leaves nothing stale for long. The manifest notes the digest of
    the file it last found or made in line, with its `changes` mark at the time: while neither
    the mark nor the file has moved since, the file is current, and a rerun is spared building
    the lines of every archived file. Otherwise the lines are hashed as they come from the
    manifest and compared by digest with the file, then, only if they differ, written in a
    second pass: at 100,000 files the text is 10 MB, and holding it (twice, to compare) would
    be most of a run's memory.
    """
    path = inside(archive_dir, f"{safe_name(source)}/{FILE_NAME}")
    key = f"{FILE_NAME} {source}"
    # Read before the lines are: a change made meanwhile then shows as a moved mark next time.
    changes = manifest.changes()
    temp = path.with_name(path.name + ".tmp")
    try:
        on_disk = _digest(path)
        noted = manifest.note(key) if on_disk is not None and changes is not None else None
        if on_disk is not None and noted == f"{changes} {on_disk.hex()}":
            return path
        fresh = hashlib.sha256()
        for text in manifest.checksum_lines(source):
            fresh.update(text.encode("utf-8"))
        if on_disk != fresh.digest():
            path.parent.mkdir(parents=True, exist_ok=True)
            with temp.open("w", encoding="utf-8") as out:
                for text in manifest.checksum_lines(source):
                    out.write(text)
                out.flush()
                os.fsync(out.fileno())
            temp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise ArchiveWriteError(f"cannot write {path}: {exc.strerror}") from None
    if changes is not None:
        manifest.set_note(key, f"{changes} {fresh.hexdigest()}")
    return path


def _digest(path: Path) -> bytes | None:
    """The sha256 of the file at `path`, or None if there is none."""
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as source:
            while block := source.read(READ_BLOCK):
                hasher.update(block)
    except FileNotFoundError:
        return None
    return hasher.digest()
