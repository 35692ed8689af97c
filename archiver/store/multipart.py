"""A media file streamed into the bucket: `MediaUpload`, its parts and their memory budget.

Bytes are gathered up to one part: a file that ends within it is one PUT, a larger one a
multipart upload whose parts go up as they fill, each with its SHA-256 (`ChecksumSHA256`), so
the store refuses a part damaged on the way. Every part held in memory by every upload of a run
counts against one `PartBudget`, so a run's memory is bounded whatever its concurrency.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import mmap
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from archiver.errors import ArchiverError
from archiver.store.hashing import Hasher, new_sha256
from archiver.store.uploads import Part, UploadRecord

if TYPE_CHECKING:
    from archiver.store.s3 import BucketStore

STAMPED_UP_TO = 5 * 1024**3  # the largest object a CopyObject takes: larger ones go unstamped


def error_code(exc: BaseException) -> str:
    """The store's own error code (`NoSuchBucket`, `AccessDenied`), or the client's error."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "error")
    return type(exc).__name__


def b64_sha256(digest: bytes) -> str:
    """A SHA-256 digest as S3's checksum headers carry it."""
    return base64.b64encode(digest).decode("ascii")


class PartBody(io.RawIOBase):
    """A part gathered, read as a file without a copy of it being made.

    botocore seeks and reads it (to sign it, to send it again on a retry); aiohttp streams it
    in blocks. `close` leaves it readable, since aiohttp closes a body it has sent and a retry
    sends it again.
    """

    def __init__(self, data: memoryview) -> None:
        super().__init__()
        self._data = data
        self._size = len(data)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, min(self._size, base + offset))
        return self._position

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._size - self._position)
        buffer[:count] = self._data[self._position : self._position + count]
        self._position += count
        return count

    def close(self) -> None:
        return  # see the class's docstring


class PartBudget:
    """Bytes of parts held in memory by all the uploads of a run together.

    Each upload holds up to a part of its file while it is gathered and sent; with eight
    transfers of 16 MiB parts that alone would be 128 MiB. An upload takes its share (its
    file's size, at most a part) before it reads the body, so the media host's connection
    waits in the kernel, not in our memory.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiting: list[asyncio.Future[None]] = []

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        size = min(size, self.limit)
        while self.used + size > self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                self._waiting.remove(waiter)
        self.used += size
        try:
            yield
        finally:
            self.used -= size  # on the event loop's thread: nothing to lock
            for waiter in self._waiting:
                if not waiter.done():
                    waiter.set_result(None)


class MediaUpload:
    """One media file streamed into the bucket as it arrives, final only at `finish`.

    Bytes are gathered up to one part: a file that ends within it is one PUT, a larger one a
    multipart upload whose parts go up as they fill, each with its SHA-256. At most one part
    of each file is held in memory. `abort` drops a multipart upload begun.
    """

    def __init__(
        self,
        store: BucketStore,
        relative: str,
        content_type: str | None,
        *,
        resumed: UploadRecord | None = None,
        on_part: Callable[[str, tuple[Part, ...]], None] | None = None,
    ) -> None:
        self.store = store
        self.relative = relative
        self.content_type = content_type
        self.part_size = store.settings.part_size
        self.size = 0
        # Unknown for an upload resumed: the whole file is hashed once complete (see `finish`).
        self._hash: Hasher | None = new_sha256()
        # One part at most, gathered in an anonymous map of memory of its own (see `_hold`).
        self._held: mmap.mmap | None = None
        self._held_size = 0
        self._part_hash = new_sha256()
        self._upload_id: str | None = None
        self._parts: list[Part] = []
        self._on_part = on_part
        if resumed is not None:
            self._upload_id = resumed.upload_id
            self._parts = list(resumed.parts)
            self.size = resumed.uploaded
            self._hash = None

    async def append(self, chunk: bytes) -> None:
        if self._hash is not None:
            self._hash.update(chunk)
        self.size += len(chunk)
        room = self.part_size - self._held_size
        if len(chunk) < room:
            self._hold(chunk)
            return
        self._hold(chunk[:room])
        await self._send_part()
        if len(chunk) > room:
            self._hold(chunk[room:])

    def _hold(self, chunk: bytes) -> None:
        # A part's bytes are copied into a map of its own and each chunk let go at once: held
        # as the hundreds of chunks they came in until the part is sent, they scattered the
        # heap, whose freed pages the allocator kept. A map is given back whole once its part
        # is sent, and only its pages written take memory (a small file, a few).
        if self._held is None:
            self._held = mmap.mmap(-1, self.part_size)
        self._part_hash.update(chunk)
        self._held[self._held_size : self._held_size + len(chunk)] = chunk
        self._held_size += len(chunk)

    async def finish(self) -> str:
        """Make the object final under its key; returns the file's sha256 in hex."""
        digest = self._hash.hexdigest() if self._hash is not None else ""
        client, bucket, key = self.store.client, self.store.bucket, self.store.key(self.relative)
        try:
            if self._upload_id is None:
                body, checksum = self._take()
                await client.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ChecksumSHA256=checksum,
                    Metadata={"sha256": digest},
                    **self._type(),
                )
                return digest
            if self._held_size:
                await self._send_part()
            await client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": [_listed(p) for p in self._parts]},
            )
            self._upload_id = None
        except (ClientError, BotoCoreError) as exc:
            raise self.store.failure(self.relative, exc) from exc
        if not digest:  # resumed: the bytes of earlier runs are hashed as the store has them
            digest = await self.store.sha256_of(self.relative, self.size)
        # The whole file's sha256 is known only now, after the object was made: it is put on
        # the object by a copy onto itself (done by the store, no byte goes over the network).
        await self.stamp(digest)
        return digest

    async def stamp(self, digest: str) -> None:
        """Store the file's sha256 with the object made already (a copy onto itself)."""
        client, bucket, key = self.store.client, self.store.bucket, self.store.key(self.relative)
        if self.size > STAMPED_UP_TO:  # the sidecar and the manifest have it
            return
        try:
            await client.copy_object(
                Bucket=bucket,
                Key=key,
                CopySource={"Bucket": bucket, "Key": key},
                Metadata={"sha256": digest},
                MetadataDirective="REPLACE",
                **self._type(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.store.failure(self.relative, exc) from exc

    async def _send_part(self) -> None:
        """Upload the buffer as the next part; the buffer is freed once it is in the store."""
        client, bucket, key = self.store.client, self.store.bucket, self.store.key(self.relative)
        body, checksum = self._take()
        size = body.seek(0, io.SEEK_END)
        body.seek(0)
        try:
            if self._upload_id is None:
                answer = await client.create_multipart_upload(
                    Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **self._type()
                )
                self._upload_id = str(answer["UploadId"])
                if self._on_part is not None:
                    self._on_part(self._upload_id, ())
            number = len(self._parts) + 1
            answer = await client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
                ChecksumSHA256=checksum,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.store.failure(self.relative, exc) from exc
        self._parts.append(Part(number, str(answer["ETag"]), checksum, size))
        if self._on_part is not None:
            self._on_part(self._upload_id, tuple(self._parts))

    def _take(self) -> tuple[PartBody, str]:
        """The part gathered, as a body to send, and its SHA-256 for the store to check."""
        held = memoryview(self._held or b"")[: self._held_size]
        body = PartBody(held)  # the map lives as long as the body: until the part is sent
        checksum = b64_sha256(self._part_hash.digest())
        self._held, self._held_size, self._part_hash = None, 0, new_sha256()
        return body, checksum

    async def abort(self) -> None:
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        with contextlib.suppress(ClientError, BotoCoreError):
            await self.store.client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.store.key(self.relative), UploadId=upload_id
            )

    def _type(self) -> dict[str, str]:
        return {"ContentType": self.content_type} if self.content_type else {}


def _listed(part: Part) -> dict[str, Any]:
    return {"PartNumber": part.number, "ETag": part.etag, "ChecksumSHA256": part.checksum}


class MultipartUploads:
    """What a bucket store does with the multipart uploads under its prefix (`BucketStore`)."""

    bucket: str
    _base: str
    _client: Any

    def key(self, relative: str) -> str:
        raise NotImplementedError

    def failure(self, relative: str, exc: BaseException) -> ArchiverError:
        raise NotImplementedError

    async def parts_of(self, relative: str, upload_id: str) -> dict[int, str] | None:
        """The parts (number -> ETag) the store holds of an upload; None if it is gone."""
        parts: dict[int, str] = {}
        paginator = self._client.get_paginator("list_parts")
        try:
            async for page in paginator.paginate(
                Bucket=self.bucket, Key=self.key(relative), UploadId=upload_id
            ):
                for part in page.get("Parts", ()):
                    parts[int(part["PartNumber"])] = str(part["ETag"])
        except ClientError as exc:
            if error_code(exc) in ("NoSuchUpload", "404"):
                return None
            raise self.failure(relative, exc) from exc
        except BotoCoreError as exc:
            raise self.failure(relative, exc) from exc
        return parts

    async def abort_upload(self, relative: str, upload_id: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key(relative), UploadId=upload_id
            )

    async def abort_uploads(self, keep: set[str] | frozenset[str] = frozenset()) -> int:
        """Abort every multipart upload under the prefix but those of `keep`; how many.

        Called with the lock held: an upload in progress then is one a killed run left, and
        one that no resume record names can never be completed.
        """
        count = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._base):
                for upload in page.get("Uploads", ()):
                    if upload["UploadId"] in keep:
                        continue
                    with contextlib.suppress(ClientError):
                        await self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        count += 1
        except (ClientError, BotoCoreError) as exc:
            raise self.failure("", exc) from exc
        return count

    async def count_uploads(self) -> int:
        """Multipart uploads in progress under the prefix (left by a killed run, or running)."""
        count = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._base):
                count += len(page.get("Uploads", ()))
        except (ClientError, BotoCoreError) as exc:
            raise self.failure("", exc) from exc
        return count
