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

    Compared every run rather than written only after news, so that a run killed between its
    last commit and this file leaves nothing stale for long. The lines are streamed to a
    temporary file and compared by digest: at 100,000 files the text is 10 MB, and holding it
    (twice, to compare) would be most of a run's memory.
    """
    path = inside(archive_dir, f"{safe_name(source)}/{FILE_NAME}")
    temp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = hashlib.sha256()
        with temp.open("w", encoding="utf-8") as out:
            for row in manifest.archived_files(source):
                line = f"{row['sha256']}  {row['path']}\n"
                fresh.update(line.encode("utf-8"))
                out.write(line)
            if _digest(path) == fresh.digest():
                out.close()
                temp.unlink()
                return path
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise ArchiveWriteError(f"cannot write {path}: {exc.strerror}") from None
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
