"""Fetching one media file into the archive: `download_file`.

Bytes stream into `<stem>.part`; the sha256 is computed as they arrive; the length is checked
against what the server promised; only then is the file renamed to its final name. An existing
`.part` is resumed with `Range` plus `If-Range`, tied to the validator (ETag, else Last-Modified)
saved beside it in `<stem>.part.json`; a server that answers 200 instead, or a validator that
changed, means the file was replaced upstream, and the download starts over: two versions are
never spliced together. A run killed after a file's rename but before the manifest recorded
it leaves a final file: the next run keeps it once the host confirms its size and last byte.

Disk work happens in a worker thread, one hop per block of `BLOCK` bytes, so the event loop
never waits on the disk for a large file and never pays a thread hop per network chunk. A
body of at most `INLINE_BYTES` is written, hashed and renamed right on the event loop: those
few system calls cost less than the hop to a thread and back, which for thousands of small
files was most of a run's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archiver.errors import (
    ArchiveWriteError,
    FileTooLarge,
    HttpStatusError,
    RetryableError,
    TransferError,
    UnsafeUrl,
)
from archiver.http import HttpClient, MediaResponse
from archiver.paths import extension_for
from archiver.retry import parse_retry_after
from archiver.sources.fields import media_url

# Bytes per disk write: what a crash can lose of a transfer in memory, and few enough thread
# hops that they cost nothing next to the network.
BLOCK = 1 << 18
MAX_BLOCK = 1 << 22
INLINE_BYTES = 64 * 1024
_FADVISE = getattr(os, "posix_fadvise", None)  # not on macOS
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
S3_MESSAGE = re.compile(rb"<Message>([^<]{1,200})</Message>")
FINAL_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 451})


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A media file that is final in the archive."""

    role: str
    name: str
    url: str
    bytes: int
    sha256: str
    content_type: str | None


@dataclass(frozen=True, slots=True)
class _Resume:
    offset: int
    validator: str | None
    orphan: str | None  # a final file of this stem that the manifest does not know
    content_type: str | None = None  # what the host said the file is, when the part began


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
) -> FetchedFile:
    """Fetch `url` into `folder/<stem><ext>`, resuming a `.part` left by an earlier attempt.

    `new_folder` says the folder did not exist when its item began: nothing of an earlier
    run can be in it, so the first attempt skips looking for a `.part` or an orphan.
    """
    if media_url(url)[0] is None:
        raise UnsafeUrl(f"not an http(s) URL: {url[:80]!r}")
    fetch = _Fetch(http, role, url, str(folder), stem, max_bytes, progress, new_folder)

    def final(exc: RetryableError) -> Exception:
        return TransferError(f"gave up after {http.retry.attempts} attempts: {exc}")

    return await http.retry.run(fetch.attempt, f"GET {url[:120]}", final)


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

    async def attempt(self) -> FetchedFile:
        if self.unscanned:
            self.unscanned = False  # a failed attempt may leave a .part for the next one
            resume = _Resume(0, None, None)
        else:
            # A few stat calls on the event loop cost less than a thread hop to make them.
            resume = _resume_state(self.folder, self.stem, self.part, self.meta)
        if resume.orphan is not None:
            adopted = await self._adopt(resume.orphan)
            if adopted is not None:
                return adopted
        headers = {}
        if resume.offset and resume.validator:
            headers = {"Range": f"bytes={resume.offset}-", "If-Range": resume.validator}
        async with self.http.media(self.url, headers) as response:
            if response.status == 416 and _whole(response, resume.offset):
                return await self._finish_whole(resume)
            offset = await self._check_status(response, resume)
            return await self._receive(response, offset)

    async def _finish_whole(self, resume: _Resume) -> FetchedFile:
        """Finish a `.part` that already holds the whole file (killed just before its rename).

        The host refused the range because it starts at the end of the file: every byte is
        here, all of one version (each resume was tied to its validator).
        """
        content_type = resume.content_type
        name = self.stem + extension_for(self.url, content_type)
        writer = _PartWriter(self.part, self.meta, resume.offset, resume.validator, content_type)
        await writer.rehash()
        digest = await writer.finish([], f"{self.folder}/{name}")
        return FetchedFile(self.role, name, self.url, resume.offset, digest, content_type)

    async def _check_status(self, response: MediaResponse, resume: _Resume) -> int:
        """The offset the body starts at, after checking the answer fits what we asked."""
        status = response.status
        if status == 206 and resume.offset:
            match = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            validator = _validator(response)
            if match is None or int(match.group(1)) != resume.offset:
                self._discard()
                raise RetryableError("the server resumed at the wrong offset", retry_after=0)
            if validator is not None and validator != resume.validator:
                self._discard()
                raise RetryableError("the file changed upstream; starting over", retry_after=0)
            return resume.offset
        if status in (200, 206):
            if resume.offset:
                self._discard()  # Range ignored or the file was replaced: start over
            return 0
        if status == 416:
            self._discard()
            raise RetryableError("the server refused the resume range", retry_after=0)
        if status in (408, 425, 429) or status >= 500:
            retry_after = _retry_after(response)
            raise RetryableError(f"HTTP {status}", retry_after=retry_after)
        # S3 says why in its error document (`Request has expired`, `Access Denied`): worth
        # a few bytes, since it is what tells an expired URL from a missing file.
        explained = S3_MESSAGE.search(await response.head_of_body())
        why = f": {explained.group(1).decode('utf-8', 'replace')}" if explained else ""
        raise HttpStatusError(f"HTTP {status}{why}", status=status)

    async def _receive(self, response: MediaResponse, offset: int) -> FetchedFile:
        length = response.headers.get("Content-Length")
        expected = offset + int(length) if length and length.isdigit() else None
        if expected is not None and expected > self.max_bytes:
            raise FileTooLarge(f"{expected} bytes is more than max_file_bytes ({self.max_bytes})")
        content_type = response.headers.get("Content-Type")
        name = self.stem + extension_for(self.url, content_type)
        writer = _PartWriter(self.part, self.meta, offset, _validator(response), content_type)
        if offset:
            await writer.rehash()
        # Chunks are kept as the socket gave them and handed to the writer as a list: the body
        # is never copied in memory, which for a large file costs as much as hashing it.
        held: list[bytes] = []
        held_size = 0
        try:
            async for chunk in response.chunks():
                held.append(chunk)
                held_size += len(chunk)
                self.progress(len(chunk))
                if writer.size + held_size > self.max_bytes:
                    writer.discard_later = True
                    raise FileTooLarge(f"more than max_file_bytes ({self.max_bytes}) bytes")
                if held_size >= _block_size(writer.size):
                    await writer.append(held)
                    held, held_size = [], 0
        except (RetryableError, asyncio.CancelledError):
            # Keep what arrived, so the next attempt (or the next run, after Ctrl-C or
            # SIGTERM) resumes after it.
            await writer.append(held)
            raise
        finally:
            await writer.settle()
        total = writer.size + held_size
        if expected is not None and total != expected:
            await writer.append(held)
            await writer.settle()
            raise RetryableError(f"the body ended after {total} of {expected} bytes")
        digest = await writer.finish(held, f"{self.folder}/{name}")
        return FetchedFile(self.role, name, self.url, total, digest, content_type)

    async def _adopt(self, orphan: str) -> FetchedFile | None:
        """Keep a final file a killed run left unrecorded, if the server confirms it.

        Its last byte is asked for: the 206 tells the size the host has now (Content-Range)
        and the type it gives the file, for a sidecar like any other, and the byte must be
        the one on disk. One byte, where fetching the file again would cost all of them.
        """
        path = f"{self.folder}/{orphan}"
        size = os.stat(path).st_size
        if size == 0:
            return None
        async with self.http.media(self.url, {"Range": f"bytes={size - 1}-"}) as response:
            span = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            asked = (str(size - 1), str(size))  # the last byte, of a file of this size
            if response.status != 206 or span is None or span.group(1, 3) != asked:
                return None
            content_type = response.headers.get("Content-Type")
            last = await response.head_of_body(2)
        if orphan != self.stem + extension_for(self.url, content_type):
            return None
        digest = await asyncio.to_thread(_hash_file, path, last)
        if digest is None:
            return None
        return FetchedFile(self.role, orphan, self.url, size, digest, content_type)

    def _discard(self) -> None:
        _remove(self.part, self.meta)


class _PartWriter:
    """Appends blocks to a `.part` file and hashes them, in a worker thread."""

    def __init__(
        self,
        part: str,
        meta: str,
        offset: int,
        validator: str | None,
        content_type: str | None,
    ) -> None:
        self.part = part
        self.meta = meta
        self.size = offset
        self.validator = validator
        self.content_type = content_type
        self.hasher = hashlib.sha256()
        self.discard_later = False
        self._pending: asyncio.Future[None] | None = None
        self._meta_on_disk = offset > 0  # a resumed .part has its .part.json

    async def rehash(self) -> None:
        """Hash the bytes already in the `.part` (a resumed download)."""
        await asyncio.to_thread(_hash_into, self.part, self.hasher, self.size)

    async def append(self, chunks: list[bytes]) -> None:
        """Start writing `chunks`; the previous block's write is awaited first."""
        if not chunks:
            return
        await self.settle()
        first = self.size == 0
        self.size += sum(len(c) for c in chunks)
        self._pending = asyncio.ensure_future(asyncio.to_thread(self._append_sync, chunks, first))

    async def settle(self) -> None:
        """Wait for the write in flight, if any.

        Shielded, and forgotten only once done: a download cancelled here (Ctrl-C, another
        worker's fatal error) must still wait for it before writing another block, or two
        threads would append at once and interleave their bytes.
        """
        if self._pending is not None:
            await asyncio.shield(self._pending)
            self._pending = None
        if self.discard_later:
            await asyncio.to_thread(_remove, self.part, self.meta)

    async def finish(self, last: list[bytes], final: str) -> str:
        """Write the last chunks, rename to `final` and return the sha256."""
        await self.settle()
        fresh = self.size == 0
        size = sum(len(c) for c in last)
        self.size += size
        if fresh and size <= INLINE_BYTES:
            return self._finish_sync(last, final, fresh)
        return await asyncio.to_thread(self._finish_sync, last, final, fresh)

    def _append_sync(self, chunks: list[bytes], first: bool) -> None:
        try:
            if first and self.validator:
                saved = {"validator": self.validator, "content_type": self.content_type}
                _write_meta(self.meta, json.dumps(saved))
                self._meta_on_disk = True
            _write_part(self.part, first, chunks, writeback=True)
        except OSError as exc:
            raise ArchiveWriteError(f"cannot write {self.part}: {exc.strerror}") from None
        for chunk in chunks:
            self.hasher.update(chunk)

    def _finish_sync(self, last: list[bytes], final: str, fresh: bool) -> str:
        try:
            _write_part(self.part, fresh, last)
            for chunk in last:
                self.hasher.update(chunk)
            os.replace(self.part, final)
            if self._meta_on_disk:
                _remove(self.meta)
        except OSError as exc:
            # The .part keeps what was written before the failure (a full disk): the next
            # run resumes after it, or drops it if it has no validator to resume with.
            raise ArchiveWriteError(f"cannot write {final}: {exc.strerror}") from None
        return self.hasher.hexdigest()


def _block_size(written: int) -> int:
    """How much to gather before a hop to the writer thread: more as the file proves large."""
    return min(MAX_BLOCK, max(BLOCK, written // 8))


def _write_part(part: str, fresh: bool, chunks: list[bytes], *, writeback: bool = False) -> None:
    """Write `chunks` to a new `.part` (`fresh`) or append them; the folder is made if missing.

    With `writeback`, the kernel is told to start writing the file to disk now, and to drop
    what it already wrote from the page cache: the flush that makes the file durable then
    finds little left to do, and a large download does not crowd the cache.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh else os.O_APPEND)
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
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def _resume_state(folder: str, stem: str, part: str, meta: str) -> _Resume:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return _Resume(0, None, None)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot read {folder}: {exc.strerror}") from None
    final = re.compile(re.escape(stem) + r"\.[A-Za-z0-9]{1,10}")
    part_name, meta_name = os.path.basename(part), os.path.basename(meta)
    orphan = next((n for n in names if final.fullmatch(n) and n != part_name), None)
    if part_name not in names:
        if meta_name in names:
            # Left by a kill between the rename of a finished file and this file's removal.
            _remove(meta)
        return _Resume(0, None, orphan)
    validator = content_type = None
    try:
        with open(meta, encoding="utf-8") as source:
            saved: Any = json.loads(source.read())
        if isinstance(saved, dict) and isinstance(saved.get("validator"), str):
            validator = saved["validator"]
            content_type = saved.get("content_type")
    except (OSError, ValueError):
        validator = None
    if validator is None:
        _remove(part, meta)  # cannot prove what it holds: start over
        return _Resume(0, None, orphan)
    if not isinstance(content_type, str):
        content_type = None
    return _Resume(os.stat(part).st_size, validator, None, content_type)


def _whole(response: MediaResponse, offset: int) -> bool:
    """Whether a 416 says the file is exactly `offset` bytes long (`bytes */<offset>`)."""
    match = UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    return offset > 0 and match is not None and int(match.group(1)) == offset


def _validator(response: MediaResponse) -> str | None:
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):  # a weak ETag cannot guard a byte range
        return etag
    return response.headers.get("Last-Modified") or None


def _retry_after(response: MediaResponse) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def _remove(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _hash_into(path: str, hasher: Any, size: int) -> None:
    with open(path, "rb") as source:
        remaining = size
        while remaining > 0:
            block = source.read(min(BLOCK, remaining))
            if not block:
                raise RetryableError("the .part file shrank while resuming", retry_after=0)
            hasher.update(block)
            remaining -= len(block)


def _hash_file(path: str, last: bytes) -> str | None:
    """The file's sha256, or None unless its last byte is `last`."""
    hasher = hashlib.sha256()
    tail = b""
    with open(path, "rb") as source:
        while block := source.read(BLOCK):
            hasher.update(block)
            tail = block[-1:]
    return hasher.hexdigest() if tail == last else None
