"""`SHA256SUMS` per source: the archive, checkable with `sha256sum -c` and no archiver.

Paths are relative to the archive root, so `cd <archive> && sha256sum -c <source>/SHA256SUMS`
checks every file the manifest has for that source. Written atomically from the manifest.
"""

from __future__ import annotations

from pathlib import Path

from archiver.errors import ArchiveWriteError
from archiver.manifest import ManifestStore
from archiver.paths import inside, safe_name
from archiver.report import write_atomically

FILE_NAME = "SHA256SUMS"


def write_checksums(manifest: ManifestStore, archive_dir: Path, source: str) -> Path:
    """Rewrite `<source>/SHA256SUMS` from the manifest."""
    lines = [f"{row['sha256']}  {row['path']}\n" for row in manifest.archived_files(source)]
    path = inside(archive_dir, f"{safe_name(source)}/{FILE_NAME}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, "".join(lines))
    except OSError as exc:
        raise ArchiveWriteError(f"cannot write {path}: {exc.strerror}") from None
    return path
