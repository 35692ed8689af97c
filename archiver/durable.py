"""Making finished items durable in batches, then recording them in the manifest.

An item counts as archived only once its files and sidecar are on disk for good, so each
batch is flushed (fsync of the files and of the folders that name them) before its manifest
transaction. One flush and one transaction serve hundreds of items, which is what keeps
durability cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from archiver.errors import ArchiveWriteError
from archiver.manifest import ManifestStore, Outcome

MAX_BATCH = 500
MAX_DELAY = 0.5  # seconds an item may wait for its batch


class BatchCommitter:
    """Collects outcomes; flushes and records them together."""

    def __init__(self, manifest: ManifestStore, run_id: int, root: Path, *, fsync: bool) -> None:
        self.manifest = manifest
        self.run_id = run_id
        self.root = root
        self.fsync = fsync
        self._outcomes: list[Outcome] = []
        self._paths: list[Path] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closed = False

    async def add(self, outcome: Outcome, paths: Iterable[Path]) -> None:
        """Queue one finished item; its `paths` are flushed before it is recorded."""
        self._outcomes.append(outcome)
        self._paths.extend(paths)
        if len(self._outcomes) >= MAX_BATCH:
            await self.flush()

    async def run(self) -> None:
        """Flush at least every `MAX_DELAY` seconds until closed."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MAX_DELAY)
            await self.flush()

    async def close(self) -> None:
        """Flush what is left and stop the background loop."""
        self._closed = True
        self._wake.set()
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._outcomes:
                return
            outcomes, self._outcomes = self._outcomes, []
            paths, self._paths = self._paths, []
            if self.fsync:
                await asyncio.to_thread(flush_to_disk, paths, self.root)
            self.manifest.record(self.run_id, outcomes)


def flush_to_disk(paths: Iterable[Path], root: Path) -> None:
    """fsync every file, then every folder between them and `root`, each once."""
    folders: set[Path] = set()
    try:
        for path in paths:
            _fsync(path, os.O_RDONLY)
            parent = path.parent
            while parent not in folders and parent != root.parent:
                folders.add(parent)
                if parent == root:
                    break
                parent = parent.parent
        for folder in folders:
            _fsync(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise ArchiveWriteError(f"cannot flush the archive to disk: {exc}") from None


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
