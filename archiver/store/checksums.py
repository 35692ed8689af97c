"""`SHA256SUMS` per source: the archive, checkable with `sha256sum -c` and no archiver.

Paths are relative to the archive root, so `cd <archive> && sha256sum -c <source>/SHA256SUMS`
checks every file the manifest has for that source. Written atomically from the manifest, into
the source's folder opened without following links (see `archivefs`).
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from stat import S_ISREG

from archiver.store.archivefs import (
    Folder,
    archive_folder,
    atomic_file,
    path_error,
    remove_leftovers,
)
from archiver.store.hashing import open_for_hashing, sha256_file
from archiver.store.manifest import ManifestStore
from archiver.store.paths import safe_name

FILE_NAME = "SHA256SUMS"


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
    source_folder = safe_name(source)
    path = f"{archive_dir}/{source_folder}/{FILE_NAME}"
    key = f"{FILE_NAME} {source}"
    # Read before the lines are: a change made meanwhile then shows as a moved mark next time.
    changes = manifest.changes()
    with archive_folder(archive_dir, source_folder) as folder:
        remove_leftovers(folder, (FILE_NAME,))
        on_disk = _digest(folder)
        noted = manifest.note(key) if on_disk is not None and changes is not None else None
        if on_disk is not None and noted == f"{changes} {on_disk.hex()}":
            return Path(path)
        fresh = hashlib.sha256()
        for text in manifest.checksum_lines(source):
            fresh.update(text.encode("utf-8"))
        if on_disk != fresh.digest():
            with atomic_file(folder, FILE_NAME, durable=True) as out:
                for text in manifest.checksum_lines(source):
                    out.write(text.encode("utf-8"))
    if changes is not None:
        manifest.set_note(key, f"{changes} {fresh.hexdigest()}")
    return Path(path)


def _digest(folder: Folder) -> bytes | None:
    """The sha256 of the folder's `SHA256SUMS`, or None if there is no such plain file.

    A link or a FIFO there is not opened (`O_NOFOLLOW`, `O_NONBLOCK`): the rename that follows
    replaces it, and a folder there makes that rename fail with an error naming it.
    """
    try:
        fd = open_for_hashing(FILE_NAME, dir_fd=folder.fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP):
            return None
        raise path_error(f"{folder.path}/{FILE_NAME}", exc) from exc
    try:
        if not S_ISREG(os.fstat(fd).st_mode):
            return None
        return sha256_file(fd).hasher.digest()
    except OSError as exc:
        raise path_error(f"{folder.path}/{FILE_NAME}", exc) from exc
    finally:
        os.close(fd)
