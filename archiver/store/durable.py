"""Making finished items durable in batches, then recording them in the manifest.

An item counts as archived only once its files and sidecar are on disk for good, so each
batch is flushed before its manifest transaction. One flush and one transaction serve hundreds
of items, which is what keeps durability cheap:

- On Linux the flush is one `syncfs(2)` of the archive's file system: one pass of writeback
  and one cache flush of the disk, where an `fsync` per file and per folder pays a cache flush
  each (thousands a minute for small files).
- Elsewhere, or if `syncfs` fails, every file is `fsync`ed, then every folder between them and
  the archive root, each once.

Flushing happens in the background: workers hand over finished items and go on downloading,
and wait only if the flush falls more than a few batches behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from archiver.errors import ArchiveWriteError
from archiver.store.manifest import ManifestStore, Outcome

MAX_BATCH = 500
MAX_PENDING = 4 * MAX_BATCH  # items waiting for a flush before a worker waits too
MAX_DELAY = 0.5  # seconds an item may wait for its batch


class BatchCommitter:
    """Collects outcomes; flushes and records them together."""

    def __init__(self, manifest: ManifestStore, run_id: int, root: Path, *, fsync: bool) -> None:
        self.manifest = manifest
        self.run_id = run_id
        self.root = root
        self.fsync = fsync
        self._outcomes: list[Outcome] = []
        self._paths: list[str | Path] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closed = False

    async def add(self, outcome: Outcome, paths: Iterable[str | Path]) -> None:
        """Queue one finished item; its `paths` are flushed before it is recorded."""
        self._outcomes.append(outcome)
        self._paths.extend(paths)
        if len(self._outcomes) >= MAX_PENDING:
            await self.flush()  # the disk is slower than the network: wait for it
        elif len(self._outcomes) >= MAX_BATCH:
            self._wake.set()

    async def run(self) -> None:
        """Flush whenever a batch is full, and at least every `MAX_DELAY` seconds, until closed."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MAX_DELAY)
            self._wake.clear()
            await self.flush()

    async def close(self) -> None:
        """Flush what is left and stop the background loop."""
        self._closed = True
        self._wake.set()
        await self.flush()

    async def flush(self) -> None:
        """Make the finished items durable on disk, then record them in one transaction."""
        async with self._lock:
            if not self._outcomes:
                return
            outcomes, self._outcomes = self._outcomes, []
            paths, self._paths = self._paths, []
            if self.fsync:
                await asyncio.to_thread(flush_to_disk, paths, self.root)
            self.manifest.record(self.run_id, outcomes)


def flush_to_disk(paths: Iterable[str | Path], root: Path) -> None:
    """Make `paths` (files under `root`) and the folders naming them durable."""
    try:
        if _syncfs(root):
            return
        _fsync_each(paths, root)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot flush the archive to disk: {exc}") from exc


def _fsync_each(paths: Iterable[str | Path], root: Path) -> None:
    """fsync every file, then every folder between them and `root`, each once."""
    folders: set[Path] = set()
    for name in paths:
        path = Path(name)
        _fsync(path, os.O_RDONLY)
        parent = path.parent
        while parent not in folders and parent != root.parent:
            folders.add(parent)
            if parent == root:
                break
            parent = parent.parent
    for folder in folders:
        _fsync(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols, libc's among them: `ctypes.util.find_library` would run
        # `ldconfig -p` in a child process at every start (and a Ctrl-C then killed the run
        # with a signal instead of exit 130).
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


_SYNCFS = _load_syncfs()


def _syncfs(root: Path) -> bool:
    """One syncfs(2) of the file system holding `root`; False where there is none.

    It reports writeback errors since Linux 5.8; an error raises `OSError`, like fsync's.
    """
    if _SYNCFS is None:
        return False
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if _SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            if code == errno.ENOSYS:  # a kernel or sandbox without it
                return False
            raise OSError(code, os.strerror(code))
    finally:
        os.close(fd)
    return True
