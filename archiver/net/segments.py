"""An idle download slot takes the upper half of a slow download still in flight.

At the end of a run the last large files would each come at one connection's pace while the
other slots sit idle. A slot with no file left to take (`SplitBoard.help`) instead cuts the
download still coming that would end last, if it comes at a slow pace, as a CDN holds one
connection to (`Split`; a fast one gains nothing): its owner stops receiving at a
block-aligned `mid`, and the slot fetches [mid, limit) with `Range` and `If-Range` (the
owner's validator) into a segment file beside the `.part`. An owner may be cut again while
it still has enough to fetch, so its segments form a chain up to the file's end; segments are
not cut.

The owner, on reaching `mid`, appends each segment in order to its own `.part` through its
`PartWriter`, so the sha256, the length check and the rename are exactly those of a file that
came on one connection. A segment is trusted only as a 206 of exactly the range asked, of the
owner's total, with the owner's validator (when it sends one), and of exactly its length. Any
other answer fails the segment, never the file: the owner drops it and every later one and
fetches the rest itself from where its `.part` ends, with the resume it already has (a file
replaced upstream then starts over). Every exit of the owner cancels its segments and deletes
their files; a file left by a kill is named like `atomic_file`'s temporary files
(`.<stem>.part.<12 hex>.tmp`) so the next run's sweep of the folder removes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable

from archiver.net.http import HttpClient, MediaResponse
from archiver.net.mediatype import declared_document
from archiver.net.partfile import BLOCK, NOFOLLOW, PartWriter, remove
from archiver.net.ranges import Span, content_length, range_validator, read_range
from archiver.store.archivefs import NEW_FILE_FLAGS
from archiver.store.freespace import FreeSpace

log = logging.getLogger("archiver")

# Less than this left to fetch is not worth a second connection: its start-up costs more than
# it saves, and the owner would soon be done anyway.
MIN_SPLIT = 2 << 20
# A second connection adds speed only where one connection is held to a pace (a CDN gives one
# connection a few MB/s); a download faster than this is not cut.
SLOW = 32 << 20  # bytes a second
JUDGE_AFTER = 0.3  # seconds of a download's pace before it is judged
SEGMENT_BLOCK = 1 << 20  # bytes gathered before a write to a segment file, or a read back
_READ_FLAGS = os.O_RDONLY | NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class SegmentRefused(Exception):
    """A helper's answer that cannot be trusted as the range it asked for."""


class Segment:
    """[start, end) of an owner's file, fetched by a helper into a file of its own."""

    def __init__(self, start: int, end: int, path: str) -> None:
        self.start = start
        self.end = end
        self.path = path
        self.task: asyncio.Task[bool] | None = None


class Split:
    """One download open to splitting: how far its owner has come, where it stops, its segments."""

    def __init__(
        self,
        board: SplitBoard,
        http: HttpClient,
        url: str,
        role: str,
        part: str,
        validator: str,
        total: int,
        pos: int,
        progress: Callable[[int], None],
        space: FreeSpace | None,
    ) -> None:
        self.board = board
        self.http = http
        self.url = url
        self.role = role
        self.part = part
        self.validator = validator
        self.total = total
        self.pos = pos  # bytes the owner has taken, held or written
        self.started, self.first = time.monotonic(), pos  # for the owner's pace
        self.limit = total  # where the owner stops; the segments go on from here
        self.progress = progress
        self.space = space
        self.segments: list[Segment] = []  # in order, contiguous from `limit` to `total`
        self.open = True  # may be cut (the owner is still receiving)
        board.splits.add(self)

    def rate(self, now: float) -> float:
        """The owner's pace since it was offered, in bytes a second."""
        return (self.pos - self.first) / max(now - self.started, 1e-3)

    @property
    def left(self) -> int:
        """What the owner itself still has to fetch, if it may be cut; else 0."""
        return self.limit - self.pos if self.open else 0

    def cut(self) -> Segment:
        """Give the upper half of what the owner has left to a new segment."""
        middle = self.pos + (self.limit - self.pos) // 2
        mid = -(-middle // BLOCK) * BLOCK  # block-aligned, up: the owner keeps the lower half
        head, tail = os.path.split(self.part)
        segment = Segment(mid, self.limit, f"{head}/.{tail}.{secrets.token_hex(6)}.tmp")
        self.limit = mid
        self.segments.insert(0, segment)
        return segment

    def take(self, chunk: bytes) -> bytes:
        """What the owner keeps of `chunk`, arriving after `pos` bytes; counts it taken."""
        room = self.limit - self.pos
        # Only a cut trims: a body longer than its file is the owner's checks' to refuse.
        if self.segments and len(chunk) > room:
            chunk = chunk[:room]
        self.pos += len(chunk)
        return chunk

    @property
    def reached(self) -> bool:
        """Whether the owner has all it fetches itself, the segments bringing the rest."""
        return bool(self.segments) and self.pos >= self.limit

    async def assemble(self, writer: PartWriter) -> bool:
        """Append each segment in order to the owner's `.part`; False if one failed.

        On False, what the segments before the failed one brought is in the `.part`: the owner
        fetches the rest itself.
        """
        self.open = False
        self.board.splits.discard(self)
        try:
            for segment in self.segments:
                task = segment.task
                assert task is not None  # a segment's task is made with it
                await asyncio.wait({task})
                if task.cancelled() or not task.result():
                    return False
                if not await _append_file(segment, writer):
                    return False
                remove(segment.path)
            self.segments.clear()
            return True
        finally:
            # Nothing of the segments may still be on its way to the `.part` when the owner
            # goes on: it may drop the `.part` and start over.
            await writer.settle()
            self.close()

    def close(self) -> None:
        """Cancel the segments' work and delete their files: the owner is done with them."""
        self.open = False
        self.board.splits.discard(self)
        for segment in self.segments:
            if segment.task is not None:
                segment.task.cancel()
            # A write still in its thread opens the file without O_CREAT: none comes back.
            remove(segment.path)
        self.segments.clear()

    async def fetch(self, segment: Segment) -> bool:
        """Fetch `segment` into its file; False (logged) if the answer cannot be trusted."""
        try:
            await self._fetch(segment)
        except Exception as exc:  # the segment's failure, never the file's
            log.debug("%s: bytes %d-%d by a second connection: %s", self.url[:120],
                      segment.start, segment.end - 1, exc)  # fmt: skip
            return False
        return True

    async def _fetch(self, segment: Segment) -> None:
        headers = {"Range": f"bytes={segment.start}-{segment.end - 1}", "If-Range": self.validator}
        async with self.http.media(self.url, headers, floor=self.http.speed_floor()) as response:
            self._check(response, segment)
            fd = os.open(segment.path, NEW_FILE_FLAGS, 0o666)
            os.close(fd)
            held: list[bytes] = []
            held_size = 0
            size = segment.end - segment.start
            got = 0
            async for chunk in response.chunks():
                got += len(chunk)
                if got > size:
                    raise SegmentRefused(f"more than the {size} bytes of its range")
                self.progress(len(chunk))
                held.append(chunk)
                held_size += len(chunk)
                if held_size >= SEGMENT_BLOCK:
                    await asyncio.to_thread(_write, segment.path, held, self.space)
                    held, held_size = [], 0
            if got < size:
                raise SegmentRefused(f"the body ended after {got} of {size} bytes")
            await asyncio.to_thread(_write, segment.path, held, self.space)

    def _check(self, response: MediaResponse, segment: Segment) -> None:
        """Refuse an answer that is not exactly the range asked, of this version of the file."""
        if response.status != 206:
            raise SegmentRefused(f"HTTP {response.status}")
        header = response.headers.get("Content-Range", "")
        length = content_length(response)
        span = read_range(header, segment.start, self.total, length)
        if isinstance(span, str):
            raise SegmentRefused(span)
        if span != Span(segment.start, segment.end, self.total) or length is None:
            raise SegmentRefused(f"{header} (Content-Length {length}) is not the range asked")
        validator = range_validator(response)
        if validator is not None and validator != self.validator:
            raise SegmentRefused("the file changed upstream")
        refused = declared_document(self.role, response.headers.get("Content-Type"))
        if refused is not None:
            raise SegmentRefused(f"the media host answered with {refused}")


class SplitBoard:
    """The downloads of a run open to splitting, for its idle slots to help with."""

    def __init__(self) -> None:
        self.splits: set[Split] = set()

    async def help(self) -> None:
        """Fetch the upper half of the download that would end last, while one is worth it.

        Only a download held to a slow pace is cut: one coming faster than `SLOW` is bound by
        the link or by this machine, where a second connection adds nothing and its bytes cost
        a copy into the `.part` (a 1 GiB file from a fast host took half as long again).
        """
        while True:
            now = time.monotonic()
            open_ = [s for s in self.splits if s.left >= MIN_SPLIT]
            judged = [s for s in open_ if now - s.started >= JUDGE_AFTER]
            slow = [s for s in judged if s.rate(now) < SLOW]
            if not slow:
                if len(judged) == len(open_):  # none left, or every one comes fast
                    return
                await asyncio.sleep(JUDGE_AFTER / 3)  # a download too new to judge its pace
                continue
            owner = max(slow, key=lambda s: s.left / max(s.rate(now), 1.0))
            segment = owner.cut()
            task = segment.task = asyncio.create_task(owner.fetch(segment))
            try:
                # The owner cancels the task when it stops: that is no error of this slot.
                await asyncio.wait({task})
            finally:
                task.cancel()


def splittable(response: MediaResponse, span: Span, validator: str | None) -> bool:
    """Whether the answer's rest may be asked for by a second connection, as a range."""
    # Most files are too small ever to be cut: they are not offered at all.
    if span.total is None or span.total - span.start < MIN_SPLIT:
        return False
    ranges = response.headers.get("Accept-Ranges", "")
    return (
        response.status in (200, 206)
        and validator is not None
        and span.end == span.total
        and "bytes" in (r.strip().lower() for r in ranges.split(","))
    )


def _write(path: str, chunks: list[bytes], space: FreeSpace | None) -> None:
    """Append `chunks` to a segment file (in a thread); it must still be there."""
    if space is not None:
        space.check()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | NOFOLLOW)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


async def _append_file(segment: Segment, writer: PartWriter) -> bool:
    """Append a segment file's bytes to the owner's `.part`, block by block; False if short."""
    offset, size = 0, segment.end - segment.start
    while offset < size:
        count = min(SEGMENT_BLOCK, size - offset)
        try:
            block = await asyncio.to_thread(_read, segment.path, offset, count)
        except OSError as exc:
            log.debug("%s: %s", segment.path, exc)
            return False
        if not block:
            return False
        await writer.append([block])
        offset += len(block)
    return True


def _read(path: str, offset: int, count: int) -> bytes:
    # Opened in the thread that reads it: an owner cancelled meanwhile closes nothing under it.
    fd = os.open(path, _READ_FLAGS)
    try:
        return os.pread(fd, count, offset)
    finally:
        os.close(fd)
