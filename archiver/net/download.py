"""Fetching one media file into the archive: `download_file`.

Bytes stream into `<stem>.part`; the sha256 is computed as they arrive; the length is checked
against what the server promised; only then is the file renamed to its final name. An existing
`.part` is resumed with `Range` plus `If-Range`, tied to the validator (ETag, else Last-Modified)
saved beside it in `<stem>.part.json`; a server that answers 200 instead, or a validator that
changed, means the file was replaced upstream, and the download starts over: two versions are
never spliced together. A run killed after a file's rename but before the manifest recorded
it leaves a final file: the next run keeps it once the host confirms its size and last byte.

The file's size as first announced (Content-Length of a 200, the total of a Content-Range) is
saved in the `.part.json` too, and a file is complete only when it has exactly that many bytes.
A 206 must start where it was asked to and agree on that total; one that ends short of it (a
CDN that caps range sizes) is continued from where it ended, in the same attempt, since it made
progress. A 206 that cannot be trusted fails the file and drops its `.part`. A picture or video
role answered with a web page, JSON or XML fails too (`archiver.net.mediatype`).

The `.part` file itself, its disk work and its `.part.json`, is `archiver.net.partfile`'s; what
a range answer says and whether it can be trusted, `archiver.net.ranges`'. An idle download
slot may fetch the upper half of a file still coming, for its owner to append
(`archiver.net.segments`): the checks above hold for the assembled file all the same.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISLNK, S_ISREG

from archiver.errors import (
    FileTooLarge,
    RetryableError,
    TransferError,
)
from archiver.net.answers import status_error, with_retries
from archiver.net.http import HttpClient, MediaResponse
from archiver.net.mediatype import (
    SNIFF_BYTES,
    bare_type,
    declared_document,
    needs_sniffing,
    sniffed_document,
)
from archiver.net.partfile import (
    BLOCK,
    PartWriter,
    Resume,
    hash_file,
    link_error,
    not_a_file,
    remove,
    resume_state,
)

# The upload into a bucket imports these two from here too.
from archiver.net.ranges import CONTENT_RANGE as CONTENT_RANGE
from archiver.net.ranges import Span, content_length, range_headers, read_range, whole_file
from archiver.net.ranges import range_validator as range_validator
from archiver.net.segments import Split, SplitBoard, splittable
from archiver.store.freespace import FreeSpace
from archiver.store.paths import extension_for

MAX_BLOCK = 1 << 22  # the most gathered in memory before a write, for a large file


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A media file that is final in the archive."""

    role: str
    name: str
    url: str
    bytes: int
    sha256: str
    content_type: str | None


async def download_file(
    http: HttpClient,
    role: str,
    url: str,
    folder: str | Path,
    stem: str,
    *,
    max_bytes: int,
    progress: Callable[[int], None] = lambda n: None,
    new_folder: bool = False,
    space: FreeSpace | None = None,
    expects: str | None = None,
    splits: SplitBoard | None = None,
) -> FetchedFile:
    """Fetch `url` into `folder/<stem><ext>`, resuming a `.part` left by an earlier attempt.

    `new_folder` says the folder did not exist when its item began: nothing of an earlier
    run can be in it, so the first attempt skips looking for a `.part` or an orphan. `space`
    is checked before each attempt and each block written (`DiskSpaceLow` stops the run).
    `expects` (`picture`, `video`) narrows the file's extensions where the role does not.
    With `splits`, idle download slots may fetch the file's upper half (`archiver.net.segments`).
    """
    fetch = _Fetch(
        http, role, url, str(folder), stem, max_bytes, progress, new_folder, space, expects
    )
    fetch.splits = splits
    return await with_retries(http, url, fetch.attempt)


class _Fetch:
    """The state of one file's download across attempts."""

    def __init__(
        self,
        http: HttpClient,
        role: str,
        url: str,
        folder: str,
        stem: str,
        max_bytes: int,
        progress: Callable[[int], None],
        new_folder: bool,
        space: FreeSpace | None,
        expects: str | None,
    ) -> None:
        # Paths are plain strings: for thousands of small files, pathlib's parsing cost more
        # than the system calls it wraps.
        self.http = http
        self.role = role
        self.url = url
        self.folder = folder
        self.stem = stem
        self.part = f"{folder}/{stem}.part"
        self.meta = f"{folder}/{stem}.part.json"
        self.max_bytes = max_bytes
        self.progress = progress
        self.unscanned = new_folder
        self.space = space
        self.expects = expects
        self.splits: SplitBoard | None = None  # None once a segment failed: no more splitting
        self.split: Split | None = None  # what the idle slots may cut, while the body comes

    async def attempt(self) -> FetchedFile:
        if self.space is not None:
            self.space.check()  # no download starts on a disk short of min_free_space
        if self.unscanned:
            self.unscanned = False  # a failed attempt may leave a .part for the next one
            resume = Resume(0, None, None)
        else:
            # A few stat calls on the event loop cost less than a thread hop to make them.
            resume = resume_state(self.folder, self.stem, self.part, self.meta)
        if resume.orphan is not None:
            adopted = await self._adopt(resume.orphan)
            if adopted is not None:
                return adopted
        writer: PartWriter | None = None
        # One speed floor for every request of the attempt: ranges that each come quickly
        # enough, but with long waits between them, are as slow as one drip.
        floor = self.http.speed_floor()
        try:
            while True:
                headers = range_headers(resume)
                async with self.http.media(self.url, headers, floor=floor) as response:
                    if response.status == 416 and whole_file(response, resume):
                        return await self._finish_whole(resume, writer)
                    span = await self._check_status(response, resume)
                    if writer is None or span.start != writer.size:
                        writer = await self._start(response, span, resume)
                    fetched = await self._receive(response, span, writer)
                # Leaving the answer unread drops its connection: the segments bring the rest.
                if fetched is None and self.split is not None and self.split.reached:
                    fetched = await self._join(writer)
                if fetched is not None:
                    return fetched
                # The answer ended where its range did, short of the file's end (a CDN that
                # caps the size of a range), or a segment failed: ask for the rest. It made
                # progress, so it costs no retry.
                resume = Resume(
                    writer.size, writer.validator, None, writer.content_type, writer.total
                )
        finally:
            if self.split is not None:
                self.split.close()
                self.split = None

    async def _join(self, writer: PartWriter) -> FetchedFile | None:
        """The file, from the owner's bytes and its segments'; None if a segment failed."""
        assert self.split is not None
        split, self.split = self.split, None
        if not await split.assemble(writer):
            self.splits = None  # the host answers ranges wrongly, or the file changed
            return None
        return await self._complete(Span(0, split.total, split.total), writer, [], writer.size)

    async def _finish_whole(self, resume: Resume, writer: PartWriter | None) -> FetchedFile:
        """Finish a `.part` that already holds the whole file (killed just before its rename).

        The host refused the range because it starts at the end of the file: every byte is
        here, all of one version (each resume was tied to its validator).
        """
        if writer is None:
            writer = PartWriter(
                self.part,
                self.meta,
                resume.offset,
                resume.validator,
                resume.content_type,
                resume.total,
                self.space,
            )
            await writer.rehash()
        name = self.stem + self._extension(writer.content_type)
        digest = await writer.finish([], f"{self.folder}/{name}")
        return FetchedFile(self.role, name, self.url, writer.size, digest, writer.content_type)

    async def _check_status(self, response: MediaResponse, resume: Resume) -> Span:
        """Where the body lies in the file, after checking the answer fits what we asked."""
        status = response.status
        if status == 206:
            return self._check_range(response, resume)
        if status == 200:
            if resume.offset:
                self._discard()  # Range ignored or the file was replaced: start over
            length = content_length(response)
            return Span(0, length, length)
        if status == 416:
            self._discard()
            raise RetryableError("the server refused the resume range", retry_after=0)
        raise await status_error(response)

    def _check_range(self, response: MediaResponse, resume: Resume) -> Span:
        """The span of a 206, if it is the range asked for and fits the file as announced.

        One that does not fails the file and drops its `.part`: a host that sends other
        bytes than asked cannot be trusted with the rest of them either.
        """
        validator = range_validator(response)
        if resume.offset and validator is not None and validator != resume.validator:
            self._discard()
            raise RetryableError("the file changed upstream; starting over", retry_after=0)
        header = response.headers.get("Content-Range", "")
        span = read_range(header, resume.offset, resume.total, content_length(response))
        guard = resume.validator if resume.offset else validator
        if isinstance(span, Span) and span.end != span.total and guard is None:
            span = f"{header} is part of the file, with no validator to ask for the rest"
        if isinstance(span, str):
            self._discard()
            raise TransferError(f"the host's range answer cannot be trusted: {span}")
        return span

    async def _start(self, response: MediaResponse, span: Span, resume: Resume) -> PartWriter:
        """A writer for a body that starts at `span.start`: a new file, or the `.part` resumed."""
        content_type = response.headers.get("Content-Type")
        if span.start:
            content_type = content_type or resume.content_type
        refused = declared_document(self.role, content_type)
        if refused is not None:
            self._discard()
            raise TransferError(
                f"the media host answered with {refused} ({bare_type(content_type)})"
            )
        size = span.total if span.total is not None else span.end
        if size is not None and size > self.max_bytes:
            self._discard()
            raise FileTooLarge(f"{size} bytes is more than max_file_bytes ({self.max_bytes})")
        validator = resume.validator if span.start else range_validator(response)
        writer = PartWriter(
            self.part, self.meta, span.start, validator, content_type, span.total, self.space
        )
        if span.start:
            await writer.rehash()
            # A `.part.json` of an older archiver has no total: save the one learned now.
            writer.meta_due = resume.total is None and span.total is not None
        return writer

    async def _receive(
        self, response: MediaResponse, span: Span, writer: PartWriter
    ) -> FetchedFile | None:
        """Take the body into `writer`; the file once complete, None if the rest is to ask for."""
        # Chunks are kept as the socket gave them and handed to the writer as a list: the body
        # is never copied in memory, which for a large file costs as much as hashing it.
        held: list[bytes] = []
        held_size = 0
        # Only a type that says nothing has the first bytes looked at; once per file.
        sniffing = span.start == 0 and needs_sniffing(writer.content_type)
        offer = self.splits is not None and splittable(response, span, writer.validator)
        split: Split | None = None
        try:
            async for chunk in response.chunks():
                if split is not None:
                    chunk = split.take(chunk)
                held.append(chunk)
                held_size += len(chunk)
                self.progress(len(chunk))
                if writer.size + held_size > self.max_bytes:
                    writer.discard_later = True
                    raise FileTooLarge(f"more than max_file_bytes ({self.max_bytes}) bytes")
                if sniffing and held_size >= SNIFF_BYTES:
                    sniffing = False
                    self._sniff(held, writer)
                if offer and not sniffing and split is None:
                    split = self.split = self._offer(span, writer, writer.size + held_size)
                if held_size >= _block_size(writer.size):
                    await writer.append(held)
                    held, held_size = [], 0
                if split is not None and split.reached:
                    break
            if sniffing:
                self._sniff(held, writer)
            if split is not None and split.reached:
                await writer.append(held)
                return None
        except (RetryableError, asyncio.CancelledError):
            # Keep what arrived, so the next attempt (or the next run, after Ctrl-C or
            # SIGTERM) resumes after it.
            await writer.append(held)
            raise
        finally:
            await writer.settle()
        return await self._complete(span, writer, held, writer.size + held_size)

    async def _complete(
        self, span: Span, writer: PartWriter, held: list[bytes], size: int
    ) -> FetchedFile | None:
        """The file, if the body that ended at `size` completes it; None if more is to come."""
        if span.end is not None and size < span.end:
            await writer.append(held)
            await writer.settle()
            raise RetryableError(f"the body ended after {size} of {span.end} bytes")
        if span.end is not None and size > span.end:
            writer.discard_later = True
            await writer.settle()
            raise TransferError(
                f"the host's range answer cannot be trusted: {size - span.start} bytes "
                f"where its range had {span.end - span.start}"
            )
        if span.total is not None and size < span.total:
            await writer.append(held)
            await writer.settle()
            return None
        name = self.stem + self._extension(writer.content_type)
        digest = await writer.finish(held, f"{self.folder}/{name}")
        return FetchedFile(self.role, name, self.url, size, digest, writer.content_type)

    def _offer(self, span: Span, writer: PartWriter, pos: int) -> Split:
        """Open the download to idle slots: its type is accepted, its rest can be ranged."""
        assert self.splits is not None and writer.validator is not None
        assert span.total is not None  # `splittable` says so
        return Split(
            self.splits, self.http, self.url, self.role, self.part, writer.validator,
            span.total, pos, self.progress, self.space,
        )  # fmt: skip

    def _sniff(self, held: list[bytes], writer: PartWriter) -> None:
        """Fail the file if its first bytes are a web page, JSON or XML the role refuses."""
        head = held[0] if held and len(held[0]) >= SNIFF_BYTES else b"".join(held)
        refused = sniffed_document(self.role, head[:SNIFF_BYTES])
        if refused is not None:
            writer.discard_later = True
            raise TransferError(f"the media host answered with {refused}")

    async def _adopt(self, orphan: str) -> FetchedFile | None:
        """Keep a final file a killed run left unrecorded, if the server confirms it.

        Its last byte is asked for: the 206 tells the size the host has now (Content-Range)
        and the type it gives the file, for a sidecar like any other, and the byte must be
        the one on disk. One byte, where fetching the file again would cost all of them.
        """
        path = f"{self.folder}/{orphan}"
        info = os.lstat(path)
        if not S_ISREG(info.st_mode):
            raise link_error(path) if S_ISLNK(info.st_mode) else not_a_file(path, info.st_mode)
        size = info.st_size
        if size == 0:
            return None
        async with self.http.media(self.url, {"Range": f"bytes={size - 1}-"}) as response:
            span = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            asked = (str(size - 1), str(size))  # the last byte, of a file of this size
            if response.status != 206 or span is None or span.group(1, 3) != asked:
                return None
            content_type = response.headers.get("Content-Type")
            last = await response.head_of_body(2)
        if orphan != self.stem + self._extension(content_type):
            return None
        digest = await asyncio.to_thread(hash_file, path, last)
        if digest is None:
            return None
        return FetchedFile(self.role, orphan, self.url, size, digest, content_type)

    def _extension(self, content_type: str | None) -> str:
        return extension_for(self.url, content_type, self.role, self.expects)

    def _discard(self) -> None:
        remove(self.part, self.meta)


def _block_size(written: int) -> int:
    """How much to gather before a hop to the writer thread: more as the file proves large."""
    return min(MAX_BLOCK, max(BLOCK, written // 8))
