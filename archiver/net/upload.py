"""Fetching one media file straight into a bucket: `upload_file`.

The body streams from the media host into a `MediaUpload` as it arrives, hashed on the way;
nothing of it touches the local disk and at most one part of it is held in memory. The object
appears under its final key only once the body had exactly the length the host announced: an
answer cut short aborts the upload, and the attempt starts over (the retry policy's), never
splicing two answers together. The checks on the answer are the local download's: a final
status fails the file, a picture or video answered with a web page, JSON or XML fails it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from archiver.errors import (
    FileTooLarge,
    RetryableError,
    TransferError,
)
from archiver.net.answers import status_error, with_retries
from archiver.net.download import CONTENT_RANGE, FetchedFile, range_validator
from archiver.net.http import HttpClient, MediaResponse
from archiver.net.mediatype import (
    SNIFF_BYTES,
    bare_type,
    declared_document,
    needs_sniffing,
    sniffed_document,
)
from archiver.store.paths import extension_for
from archiver.store.uploads import Part, UploadRecord, UploadRecords

if TYPE_CHECKING:
    from archiver.store.multipart import MediaUpload
    from archiver.store.s3 import BucketStore


async def upload_file(
    http: HttpClient,
    store: BucketStore,
    role: str,
    url: str,
    folder: str,
    stem: str,
    *,
    max_bytes: int,
    progress: Callable[[int], None] = lambda n: None,
    expects: str | None = None,
    records: UploadRecords | None = None,
) -> FetchedFile:
    """Fetch `url` into the object `<folder>/<stem><ext>` of `store`.

    With `records`, a multipart upload is recorded part by part, and one an earlier attempt
    or run left is continued: the host is asked for the rest only (`Range` + `If-Range`).
    """
    fetch = _Upload(http, store, role, url, folder, stem, max_bytes, progress, expects, records)
    return await with_retries(http, url, fetch.attempt)


class _Upload:
    """One file's way into the bucket, across attempts (and runs, through `records`)."""

    def __init__(
        self,
        http: HttpClient,
        store: BucketStore,
        role: str,
        url: str,
        folder: str,
        stem: str,
        max_bytes: int,
        progress: Callable[[int], None],
        expects: str | None,
        records: UploadRecords | None,
    ) -> None:
        self.http = http
        self.store = store
        self.role = role
        self.url = url
        self.folder = folder
        self.stem = stem
        self.max_bytes = max_bytes
        self.progress = progress
        self.expects = expects
        self.records = records

    async def _resumable(self) -> UploadRecord | FetchedFile | None:
        """The upload an earlier attempt left, if the store still holds all its parts; or the
        file itself, if that upload was completed by a run killed before it recorded so."""
        if self.records is None:
            return None
        record = self.records.load(self.folder, self.stem)
        if record is None:
            return None
        if record.url == self.url and record.parts:
            held = await self.store.parts_of(record.relative, record.upload_id)
            if held is not None and all(held.get(p.number) == p.etag for p in record.parts):
                return record
            if held is None:
                adopted = await self._adopt(record)
                if adopted is not None:
                    return adopted
        await self._drop(record)
        return None

    async def _adopt(self, record: UploadRecord) -> FetchedFile | None:
        """The object a completed upload made, whole: hashed as the store has it."""
        found = await self.store.head(record.relative)
        if found is None or found.size != record.total:
            return None
        digest = found.sha256 or await self.store.sha256_of(record.relative, found.size)
        if found.sha256 is None:
            await self.store.upload(record.relative, record.content_type).stamp(digest)
        if self.records is not None:
            self.records.remove(self.folder, self.stem)
        name = record.relative.rsplit("/", 1)[-1]
        return FetchedFile(self.role, name, self.url, found.size, digest, record.content_type)

    async def _complete(self, record: UploadRecord) -> FetchedFile:
        """Complete an upload a killed run had sent every part of."""
        upload = self.store.upload(record.relative, record.content_type, resumed=record)
        try:
            digest = await upload.finish()
        except BaseException:
            await asyncio.shield(self._drop(record))
            raise
        if self.records is not None:
            self.records.remove(self.folder, self.stem)
        name = record.relative.rsplit("/", 1)[-1]
        return FetchedFile(self.role, name, self.url, upload.size, digest, record.content_type)

    async def _drop(self, record: UploadRecord) -> None:
        await self.store.abort_upload(record.relative, record.upload_id)
        if self.records is not None:
            self.records.remove(self.folder, self.stem)

    async def _what_comes(
        self, response: MediaResponse, record: UploadRecord | None
    ) -> tuple[str | None, int | None, int | None]:
        """The answer's type, the file's total and the body's length, once they pass."""
        if record is None:
            length = await _check(response)
            content_type = response.headers.get("Content-Type")
            total = length
        else:
            content_type, total = record.content_type, record.total
            length = total - record.uploaded
        refused = declared_document(self.role, content_type)
        if refused is not None:
            raise TransferError(
                f"the media host answered with {refused} ({bare_type(content_type)})"
            )
        if total is not None and total > self.max_bytes:
            raise FileTooLarge(f"{total} bytes is more than max_file_bytes ({self.max_bytes})")
        return content_type, total, length

    async def attempt(self) -> FetchedFile:
        record = await self._resumable()
        if isinstance(record, FetchedFile):
            return record
        if record is not None and record.uploaded == record.total:
            return await self._complete(record)  # every part is in: nothing to ask the host
        headers = {}
        if record is not None:
            headers = {"Range": f"bytes={record.uploaded}-", "If-Range": record.validator}
        async with self.http.media(self.url, headers, floor=self.http.speed_floor()) as response:
            if record is not None and not _continues(response, record):
                await self._drop(record)  # changed upstream, or the range refused: start over
                record = None
            content_type, total, length = await self._what_comes(response, record)
            name = self.stem + extension_for(self.url, content_type, self.role, self.expects)
            relative = f"{self.folder}/{name}"
            saver = self._saver(relative, response, content_type, total, record)
            upload = self.store.upload(relative, content_type, resumed=record, on_part=saver)
            part = self.store.settings.part_size
            try:
                async with self.store.budget.hold(min(length or part, part)):
                    await _stream(
                        response, upload, self.role, length, self.max_bytes, self.progress, record
                    )
                    digest = await upload.finish()
            except (RetryableError, asyncio.CancelledError):
                if saver is None:  # nothing to resume from: no part left behind
                    await asyncio.shield(upload.abort())
                raise
            except BaseException:
                # Shielded: a Ctrl-C must not leave the upload half-aborted on the store.
                await asyncio.shield(upload.abort())
                if self.records is not None:
                    self.records.remove(self.folder, self.stem)
                raise
        if self.records is not None:
            self.records.remove(self.folder, self.stem)
        return FetchedFile(self.role, name, self.url, upload.size, digest, content_type)

    def _saver(
        self,
        relative: str,
        response: MediaResponse,
        content_type: str | None,
        total: int | None,
        record: UploadRecord | None,
    ) -> Callable[[str, tuple[Part, ...]], None] | None:
        """What records the upload after each part; None when it could not be resumed."""
        records = self.records
        validator = record.validator if record is not None else range_validator(response)
        if records is None or validator is None or total is None:
            return None

        def save(upload_id: str, parts: tuple[Part, ...]) -> None:
            done = UploadRecord(
                relative, upload_id, self.url, validator, total, content_type, parts
            )
            records.save(self.folder, self.stem, done)

        return save


def _continues(response: MediaResponse, record: UploadRecord) -> bool:
    """Whether a resume answer is the rest of the same file, from where the upload stopped."""
    if response.status != 206:
        return False
    match = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None:
        return False
    first, last, total = match.group(1, 2, 3)
    return (
        int(first) == record.uploaded
        and total == str(record.total)
        and int(last) == record.total - 1
    )


async def _stream(
    response: MediaResponse,
    upload: MediaUpload,
    role: str,
    length: int | None,
    max_bytes: int,
    progress: Callable[[int], None],
    resumed: UploadRecord | None,
) -> None:
    # The first bytes were looked at when the upload began.
    sniffing = resumed is None and needs_sniffing(upload.content_type)
    head = b""
    async for chunk in response.chunks():
        progress(len(chunk))
        if upload.size + len(chunk) > max_bytes:
            raise FileTooLarge(f"more than max_file_bytes ({max_bytes}) bytes")
        if sniffing:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES:
                sniffing = False
                _sniff(role, head)
        await upload.append(chunk)
    if sniffing:
        _sniff(role, head)
    if length is not None and upload.size != length + (resumed.uploaded if resumed else 0):
        raise RetryableError(f"the body ended after {upload.size} bytes, short of its end")


def _sniff(role: str, head: bytes) -> None:
    refused = sniffed_document(role, head)
    if refused is not None:
        raise TransferError(f"the media host answered with {refused}")


async def _check(response: MediaResponse) -> int | None:
    """The body's announced length, after checking the status is a whole file's."""
    if response.status != 200:
        raise await status_error(response)
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isascii() and length.isdigit() else None
