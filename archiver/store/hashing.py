"""The one way archiver hashes a file's content: `sha256_file`, or `new_sha256` for bytes
that stream past (an upload into a bucket).

Used by `verify`, the `SHA256SUMS` writer and the download's checks of a `.part` or a finished
file. Reads are large blocks on a raw descriptor (`os.read`, no buffered file object): sha256
runs at over 1 GB/s and hashlib lets go of the GIL for blocks this size, so a file hashed in a
worker thread runs beside the event loop. A file is never opened through a link (`O_NOFOLLOW`:
a link planted in the archive is damage, not a file to read) and never waited on (`O_NONBLOCK`,
in case a FIFO stands where a file should).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Protocol

READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
READ_BLOCK = 1 << 20  # bytes per read: few system calls, and hashing without the GIL


class Hasher(Protocol):
    """What a hashlib object does that we use (typeshed does not name its class publicly)."""

    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Hashed:
    """What `sha256_file` read: the hasher (digest of every byte read), and how many bytes."""

    hasher: Hasher
    size: int

    def hexdigest(self) -> str:
        return self.hasher.hexdigest()


def new_sha256() -> Hasher:
    """A new sha256 of the content to come, fed by `update`."""
    return hashlib.sha256()


def open_for_hashing(path: str, *, dir_fd: int | None = None) -> int:
    """A descriptor to read `path` with, never through a link; OSError as `os.open` raises it."""
    return os.open(path, READ_FLAGS, dir_fd=dir_fd)


def sha256_file(
    file: str | int, *, limit: int | None = None, hasher: Hasher | None = None
) -> Hashed:
    """Hash a file (a path, or an open descriptor read from where it stands) to its end.

    `limit`: read no more than this many bytes. `hasher`: go on with this one (the bytes of a
    resumed download already hashed), else a new sha256. A small file costs one read of its
    size and one that finds the end.
    """
    hasher = hasher if hasher is not None else new_sha256()
    block = READ_BLOCK  # read at each call, so a test can make it small
    fd = open_for_hashing(file) if isinstance(file, str) else file
    try:
        size = 0
        while limit is None or size < limit:
            data = os.read(fd, block if limit is None else min(block, limit - size))
            if not data:
                break
            hasher.update(data)
            size += len(data)
    finally:
        if isinstance(file, str):
            os.close(fd)
    return Hashed(hasher, size)
