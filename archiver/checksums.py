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
    """Bring `<source>/SHA256SUMS` in line with the manifest, writing only if it differs.

    Compared every run rather than written only after news, so that a run killed between its
    last commit and this file leaves nothing stale for long.
    """
    text = "".join(f"{row['sha256']}  {row['path']}\n" for row in manifest.archived_files(source))
    path = inside(archive_dir, f"{safe_name(source)}/{FILE_NAME}")
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot write {path}: {exc.strerror}") from None
    return path
