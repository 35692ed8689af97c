"""The `.part` file of a download: writing it, hashing it, and what a later attempt resumes.

Bytes are appended to `<stem>.part` and hashed as they are written; `<stem>.part.json` beside
it keeps what ties the bytes to one version of the file (the validator: ETag, else
Last-Modified), its Content-Type and its size as the host announced it. Only then can a later
attempt, or a later run, ask for the rest with `Range` and `If-Range`.

Disk work happens in worker threads, one hop per block, so the event loop never waits on the
disk for a large file and never pays a thread hop per network chunk: a large body has a thread
that writes its blocks and one that hashes them, each in order, with up to `IN_FLIGHT` blocks
queued, so that receiving, writing and hashing overlap. A body of at most
`INLINE_BYTES` is written, hashed and renamed right on the event loop: those few system calls
cost less than the hop to a thread and back, which for thousands of small files was most of a
run's time.

Nothing here is opened through a symlink (`O_NOFOLLOW`): a link planted as `video.part` fails
that file, naming it, instead of having the run write where it points. `min_free_space` is
checked before each block written.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import Any

from archiver.errors import ArchivePathError, ArchiverError, ArchiveWriteError, RetryableError
from archiver.store.archivefs import path_error
from archiver.store.freespace import FreeSpace
from archiver.store.hashing import Hasher, open_for_hashing, sha256_file

# Bytes per disk write: what a crash can lose of a transfer in memory, and few enough thread
# hops that they cost nothing next to the network.
BLOCK = 1 << 18
IN_FLIGHT = 2  # blocks of one file handed to its threads and not yet written and hashed
INLINE_BYTES = 64 * 1024
_FADVISE = getattr(os, "posix_fadvise", None)  # not on macOS
# Never through a link: a planted `video.part` must not make the run write where it points.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True, slots=True)
class Resume:
    """What earlier attempts left of a file: how far its `.part` goes, and which version it is."""

    offset: int
    validator: str | None
    orphan: str | None  # a final file of this stem that the manifest does not know
    content_type: str | None = None  # what the host said the file is, when the part began
    total: int | None = None  # the file's size, as the host announced it when the part began


class PartWriter:
    """Appends blocks to a `.part` file and hashes them, in threads of its own."""

    def __init__(
        self,
        part: str,
        meta: str,
        offset: int,
        validator: str | None,
        content_type: str | None,
        total: int | None,
        space: FreeSpace | None,
    ) -> None:
        self.part = part
        self.meta = meta
        self.size = offset
        self.validator = validator
        self.content_type = content_type
        self.total = total
        self.space = space
        self.hasher = hashlib.sha256()
        self.discard_later = False
        # The `.part.json` is written with the first block of a new `.part` that can be
        # resumed: without a validator, a `.part` cannot be, and is dropped by the next run.
        self.meta_due = offset == 0 and validator is not None
        # Blocks handed to the threads, oldest first, each done once written and hashed.
        self._in_flight: deque[asyncio.Future[None]] = deque()
        self._lanes: _Lanes | None = None
        self._broken = False  # a block failed to write: those queued after it are not
        self._meta_on_disk = offset > 0  # a resumed .part has its .part.json

    async def rehash(self) -> None:
        """Hash the bytes already in the `.part` (a resumed download)."""
        await asyncio.to_thread(_hash_into, self.part, self.hasher, self.size)

    async def append(self, chunks: list[bytes]) -> None:
        """Start writing and hashing `chunks`; waits only while `IN_FLIGHT` blocks are queued.

        A write error of an earlier block (a full disk) is raised here or by `settle`.
        """
        if not chunks:
            return
        while len(self._in_flight) >= IN_FLIGHT:
            await self._oldest()
        first = self.size == 0
        self.size += sum(len(c) for c in chunks)
        lanes = self._lanes = self._lanes or _Lanes()
        loop = asyncio.get_running_loop()
        wrote = loop.run_in_executor(lanes.writer, self._append_sync, chunks, first)
        hashed = loop.run_in_executor(lanes.hasher, _hash_chunks, self.hasher, chunks)
        block = asyncio.ensure_future(_both(wrote, hashed))
        # A download cancelled while this block is in flight may never ask how it went; its
        # error (a full disk) then reaches the run another way, not as "exception never
        # retrieved" with a traceback on the terminal.
        block.add_done_callback(_retrieved)
        self._in_flight.append(block)

    async def _oldest(self) -> None:
        """Wait for the oldest block in flight; shielded, and forgotten only once done."""
        block = self._in_flight[0]
        try:
            await asyncio.shield(block)
        finally:
            if block.done():
                self._in_flight.popleft()

    async def settle(self) -> None:
        """Wait for every block in flight, then let the threads go.

        Shielded, and each block forgotten only once done: a download cancelled here (Ctrl-C,
        another worker's fatal error) must still wait for them before the `.part` is written
        by anything else, or two writers would append at once and interleave their bytes.
        """
        failure: BaseException | None = None
        while self._in_flight:
            try:
                await self._oldest()
            except Exception as exc:  # the first error is raised once every block is done
                failure = failure or exc
        if self._lanes is not None:
            self._lanes.close()
            self._lanes = None
        if failure is not None:
            raise failure
        if self.discard_later:
            await asyncio.to_thread(remove, self.part, self.meta)

    async def finish(self, last: list[bytes], final: str) -> str:
        """Write the last chunks, rename to `final` and return the sha256."""
        await self.settle()
        fresh = self.size == 0
        size = sum(len(c) for c in last)
        self.size += size
        if fresh and size <= INLINE_BYTES:
            # The check of min_free_space at the start of the download covers these bytes.
            return self._finish_sync(last, final, fresh)
        return await asyncio.to_thread(self._finish_sync, last, final, fresh, self.space)

    def _append_sync(self, chunks: list[bytes], first: bool) -> None:
        """Write one block (in the writer thread); none after one that failed."""
        if self._broken:
            return
        try:
            if self.space is not None:
                self.space.check()  # none goes on below min_free_space: one statvfs per block
            if self.meta_due:
                self._save_meta()
            try:
                _write_part(self.part, first, chunks, writeback=True)
            except OSError as exc:
                raise _write_error(self.part, exc) from exc
        except BaseException:
            self._broken = True
            raise

    def _save_meta(self) -> None:
        text = json.dumps(
            {"validator": self.validator, "content_type": self.content_type, "total": self.total}
        )
        try:
            _write_meta(self.meta, text)
        except OSError as exc:
            raise _write_error(self.meta, exc) from exc
        self._meta_on_disk = True
        self.meta_due = False

    def _finish_sync(
        self, last: list[bytes], final: str, fresh: bool, space: FreeSpace | None = None
    ) -> str:
        if space is not None and last:
            space.check()
        try:
            _write_part(self.part, fresh, last)
            for chunk in last:
                self.hasher.update(chunk)
            os.replace(self.part, final)
            if self._meta_on_disk:
                remove(self.meta)
        except OSError as exc:
            # The .part keeps what was written before the failure (a full disk): the next
            # run resumes after it, or drops it if it has no validator to resume with.
            raise _write_error(self.part if exc.errno == errno.ELOOP else final, exc) from exc
        return self.hasher.hexdigest()


class _Lanes:
    """The two threads of one large body: one writes its blocks, one hashes them.

    Each runs its blocks one after another, in order, beside the other and the event loop
    (hashlib and `os.write` let go of the GIL for buffers this large), so receiving, hashing
    and writing a large file overlap instead of taking turns.
    """

    def __init__(self) -> None:
        self.writer = ThreadPoolExecutor(1, "part-writer")
        self.hasher = ThreadPoolExecutor(1, "part-hasher")

    def close(self) -> None:
        self.writer.shutdown(wait=False)
        self.hasher.shutdown(wait=False)


def _hash_chunks(hasher: Hasher, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


async def _both(wrote: asyncio.Future[None], hashed: asyncio.Future[None]) -> None:
    """Done when the block is both written and hashed; the write's error first."""
    results = await asyncio.gather(wrote, hashed, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _write_part(part: str, fresh: bool, chunks: list[bytes], *, writeback: bool = False) -> None:
    """Write `chunks` to a new `.part` (`fresh`) or append them; the folder is made if missing.

    With `writeback`, the kernel is told to start writing the file to disk now, and to drop
    what it already wrote from the page cache: the flush that makes the file durable then
    finds little left to do, and a large download does not crowd the cache.
    """
    flags = os.O_WRONLY | os.O_CREAT | NOFOLLOW | (os.O_TRUNC if fresh else os.O_APPEND)
    try:
        fd = os.open(part, flags, 0o666)
    except FileNotFoundError:
        if not fresh:
            raise
        os.makedirs(os.path.dirname(part), exist_ok=True)  # the item's first file
        fd = os.open(part, flags, 0o666)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        if writeback and _FADVISE is not None:
            _FADVISE(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _write_meta(meta: str, text: str) -> None:
    try:
        _write_text(meta, text)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(meta), exist_ok=True)
        _write_text(meta, text)


def _write_text(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, 0o666)
    with open(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _read_meta(meta: str) -> dict[str, Any] | None:
    """What a `.part.json` saved; None if it is missing or unreadable."""
    try:
        fd = os.open(meta, os.O_RDONLY | NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise link_error(meta) from exc
        return None
    try:
        with open(fd, encoding="utf-8") as source:
            saved: Any = json.loads(source.read())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def resume_state(folder: str, stem: str, part: str, meta: str) -> Resume:
    """What earlier attempts left of `stem` in `folder`: a `.part` to resume, or an orphan.

    A `.part` whose version cannot be proven (no validator saved), or longer than the size
    saved for it, is dropped here: the download starts over.
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return Resume(0, None, None)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot read {folder}: {exc.strerror}") from exc
    final = re.compile(re.escape(stem) + r"\.[A-Za-z0-9]{1,10}")
    part_name, meta_name = os.path.basename(part), os.path.basename(meta)
    orphan = next((n for n in names if final.fullmatch(n) and n != part_name), None)
    if part_name not in names:
        if meta_name in names:
            # Left by a kill between the rename of a finished file and this file's removal.
            if S_ISLNK(os.lstat(meta).st_mode):
                raise link_error(meta)
            remove(meta)
        return Resume(0, None, orphan)
    info = os.lstat(part)
    if not S_ISREG(info.st_mode):
        raise link_error(part) if S_ISLNK(info.st_mode) else not_a_file(part, info.st_mode)
    saved = _read_meta(meta) or {}
    validator = saved.get("validator")
    content_type = saved.get("content_type")
    total = saved.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        total = None  # a .part.json of an older archiver: the next 206 tells the total
    if not isinstance(validator, str) or (total is not None and info.st_size > total):
        remove(part, meta)  # cannot prove what it holds: start over
        return Resume(0, None, orphan)
    if not isinstance(content_type, str):
        content_type = None
    return Resume(info.st_size, validator, None, content_type, total)


def remove(*paths: str) -> None:
    """Delete each of `paths` that exists."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def link_error(path: str) -> ArchiverError:
    """A link where the run would open a file: fails that file, naming the link."""
    return path_error(path, OSError(errno.ELOOP, os.strerror(errno.ELOOP), path))


def not_a_file(path: str, mode: int) -> ArchiverError:
    """Something else than a file (a folder, a FIFO) where the run would open one."""
    if S_ISDIR(mode):
        return path_error(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path))
    return ArchivePathError(f"cannot use {path}: not a regular file")


def _write_error(path: str, exc: OSError) -> ArchiverError:
    """A full disk stops the run; a link or a folder where a `.part` goes fails its file."""
    return path_error(path, exc)


def _hash_into(path: str, hasher: Hasher, size: int) -> None:
    if sha256_file(path, limit=size, hasher=hasher).size < size:
        raise RetryableError("the .part file shrank while resuming", retry_after=0)


def hash_file(path: str, last: bytes) -> str | None:
    """The file's sha256, or None unless its last byte is `last`."""
    fd = open_for_hashing(path)
    try:
        hashed = sha256_file(fd)
        tail = os.pread(fd, 1, hashed.size - 1) if hashed.size else b""
    finally:
        os.close(fd)
    return hashed.hexdigest() if tail == last else None
