"""The archive in S3-compatible object storage: `BucketStore`, over aiobotocore.

Every object appears under its final key only when complete: a small file is one PUT, a media
file is one PUT below `part_size` and a multipart upload above it, and both are atomic on the
store's side. Every upload carries its SHA-256 (`ChecksumSHA256`, per part for a multipart
upload), so the store refuses bytes that were damaged on the way, and the file's sha256 in hex
is kept with the object as its metadata `sha256`.

Credentials come from botocore's standard chain and go to the store only; botocore signs the
requests (SigV4) and retries what the store asks to be retried (500, 503 SlowDown, resets),
with backoff. A store error becomes an `ArchiverError` naming the bucket and the store's own
error code, here at the boundary: nothing above sees a botocore exception.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import hashlib
import io
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from archiver.config.settings import BucketSettings
from archiver.errors import ArchiverError, ConfigError, TransferError
from archiver.store.backend import Fetch
from archiver.store.manifest import FileRow
from archiver.store.sidecar import SIDECAR
from archiver.store.uploads import Part, UploadRecord, UploadRecords

if TYPE_CHECKING:
    from archiver.net.download import FetchedFile

READ_BLOCK = 1 << 20
# Parts held in memory by all uploads together (at least two parts): with the interpreter and
# botocore, a run stays under 150 MB at 16 MiB parts and concurrency 8.
PARTS_IN_MEMORY = 32 * 1024**2
STAMPED_UP_TO = 5 * 1024**3  # the largest object a CopyObject takes: larger ones go unstamped
# Store errors that mean the key is not there, not that the store failed.
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a HEAD tells of an object: its size and the sha256 stored with it (if any)."""

    size: int
    sha256: str | None


def error_code(exc: BaseException) -> str:
    """The store's own error code (`NoSuchBucket`, `AccessDenied`), or the client's error."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "error")
    return type(exc).__name__


def b64_sha256(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class BucketStore:
    """One bucket and prefix, opened with `async with` inside the run's event loop."""

    def __init__(
        self, settings: BucketSettings, *, connections: int = 10, attempts: int = 8
    ) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.url = settings.url
        self._base = f"{settings.prefix}/" if settings.prefix else ""
        self._connections = connections
        self._attempts = attempts
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self.budget = PartBudget(max(2 * settings.part_size, PARTS_IN_MEMORY))

    async def __aenter__(self) -> BucketStore:
        config = AioConfig(
            retries={"max_attempts": self._attempts, "mode": "standard"},
            max_pool_connections=self._connections,
            connect_timeout=15,
            read_timeout=60,
            # The checksums we send are the ones we mean: none added for us.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = get_session()
        self._client = await self._stack.enter_async_context(
            session.create_client(
                "s3",
                endpoint_url=self.settings.endpoint_url,
                region_name=self.settings.region,
                config=config,
            )
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
        self._client = None

    def key(self, relative: str) -> str:
        """The object key of a path relative to the archive root."""
        return self._base + relative

    def where(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.key(relative)}"

    # Checks at start

    async def check_usable(self) -> None:
        """Raise `ConfigError` (exit 2) if the bucket is missing, unreachable or refuses us."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
            await self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._base, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise ConfigError(f"{self.url}: cannot use the bucket: {error_code(exc)}") from exc

    # Small files

    async def put_bytes(
        self,
        relative: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str = "",
    ) -> str:
        """Write a small object in one PUT with its checksum; returns its ETag.

        `if_none_match`: only if there is no such object; `if_match`: only if it is still the
        one of that ETag (the store answers `PreconditionFailed` otherwise).
        """
        digest = hashlib.sha256(data).digest()
        extra: dict[str, Any] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        if content_type:
            extra["ContentType"] = content_type
        try:
            answer = await self._client.put_object(
                Bucket=self.bucket,
                Key=self.key(relative),
                Body=data,
                ChecksumSHA256=b64_sha256(digest),
                Metadata={"sha256": digest.hex()},
                **extra,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.failure(relative, exc) from exc
        return str(answer.get("ETag", ""))

    async def head(self, relative: str) -> StoredObject | None:
        """The object's size and stored sha256, or None if there is no such object."""
        try:
            answer = await self._client.head_object(Bucket=self.bucket, Key=self.key(relative))
        except ClientError as exc:
            if error_code(exc) in MISSING:
                return None
            raise self.failure(relative, exc) from exc
        except BotoCoreError as exc:
            raise self.failure(relative, exc) from exc
        meta = answer.get("Metadata") or {}
        return StoredObject(int(answer["ContentLength"]), meta.get("sha256"))

    async def read(self, relative: str) -> bytes | None:
        """The whole of a small object, or None if there is none."""
        chunks = [chunk async for chunk in self.stream(relative)]
        return None if chunks == [None] else b"".join(c for c in chunks if c is not None)

    async def stream(self, relative: str) -> AsyncIterator[bytes | None]:
        """The object's bytes, a block at a time; one None if there is no such object."""
        try:
            answer = await self._client.get_object(Bucket=self.bucket, Key=self.key(relative))
        except ClientError as exc:
            if error_code(exc) in MISSING:
                yield None
                return
            raise self.failure(relative, exc) from exc
        except BotoCoreError as exc:
            raise self.failure(relative, exc) from exc
        async with answer["Body"] as body:
            while chunk := await body.read(READ_BLOCK):
                yield chunk

    async def keys(self, relative_prefix: str = "") -> AsyncIterator[tuple[str, int]]:
        """Every (path relative to the archive root, size) under `relative_prefix`."""
        paginator = self._client.get_paginator("list_objects_v2")
        start = len(self._base)
        try:
            async for page in paginator.paginate(
                Bucket=self.bucket, Prefix=self.key(relative_prefix)
            ):
                for entry in page.get("Contents", ()):
                    yield entry["Key"][start:], int(entry["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise self.failure(relative_prefix, exc) from exc

    async def copy(self, relative: str, to: str) -> None:
        """Copy an object within the bucket, done by the store (quarantine of damaged bytes)."""
        try:
            await self._client.copy_object(
                Bucket=self.bucket,
                Key=self.key(to),
                CopySource={"Bucket": self.bucket, "Key": self.key(relative)},
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.failure(relative, exc) from exc

    async def delete(self, relative: str) -> None:
        """Remove one object of the archive's own (the lock); never used on the payload."""
        with contextlib.suppress(ClientError):
            await self._client.delete_object(Bucket=self.bucket, Key=self.key(relative))

    def failure(self, relative: str, exc: BaseException) -> ArchiverError:
        """A store error as one line naming the object and the store's code."""
        return TransferError(f"{self.where(relative)}: the store answered {error_code(exc)}")

    # Media

    def upload(
        self,
        relative: str,
        content_type: str | None,
        *,
        resumed: UploadRecord | None = None,
        on_part: Callable[[str, tuple[Part, ...]], None] | None = None,
    ) -> MediaUpload:
        return MediaUpload(self, relative, content_type, resumed=resumed, on_part=on_part)

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

    async def sha256_of(self, relative: str, size: int) -> str:
        """The sha256 of an object as the store has it; its size must be `size`."""
        digest = hashlib.sha256()
        seen = 0
        async for chunk in self.stream(relative):
            if chunk is None:
                raise TransferError(f"{self.where(relative)}: gone just after it was made")
            digest.update(chunk)
            seen += len(chunk)
        if seen != size:
            raise TransferError(f"{self.where(relative)}: {seen} bytes, not {size}")
        return digest.hexdigest()

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

    @property
    def client(self) -> Any:
        return self._client


class PartBody(io.RawIOBase):
    """A part's chunks read as one file, never joined: one copy of the part in memory.

    botocore seeks and reads it (to sign it, to send it again on a retry); aiohttp streams it
    in blocks. `close` leaves it readable, since aiohttp closes a body it has sent and a retry
    sends it again.
    """

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._starts = list(itertools.accumulate((len(c) for c in chunks), initial=0))
        self._size = self._starts[-1]
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
        if self._position >= self._size:
            return 0
        index = bisect.bisect_right(self._starts, self._position) - 1
        chunk = self._chunks[index]
        offset = self._position - self._starts[index]
        count = min(len(buffer), len(chunk) - offset)
        buffer[:count] = memoryview(chunk)[offset : offset + count]
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
        self._hash: Any = hashlib.sha256()
        # One part at most, as the chunks came; joined once, into the bytes that are sent.
        self._held: list[bytes] = []
        self._held_size = 0
        self._part_hash = hashlib.sha256()
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
        self._part_hash.update(chunk)
        self._held.append(chunk)
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
        body = PartBody(self._held)
        checksum = b64_sha256(self._part_hash.digest())
        self._held, self._held_size, self._part_hash = [], 0, hashlib.sha256()
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


class BucketItems:
    """The archive's items in a bucket, as the pipeline sees them (`backend.ArchiveStore`)."""

    def __init__(self, store: BucketStore, records: UploadRecords | None) -> None:
        self.store = store
        self.records = records

    def open_item(self, folder: str) -> BucketPlace:
        return BucketPlace(self, folder)

    def close(self) -> None:
        return


class BucketPlace:
    """An item's folder in the bucket: a key prefix, nothing to open or close."""

    def __init__(self, items: BucketItems, folder: str) -> None:
        self.items = items
        self.folder = folder

    @property
    def path(self) -> str:
        return self.items.store.where(self.folder)

    async def whole(self, row: FileRow) -> bool:
        found = await self.items.store.head(row.path)
        return found is not None and found.size == row.bytes

    async def fetch(self, job: Fetch) -> tuple[FetchedFile, str | None]:
        from archiver.net.upload import upload_file

        fetched = await upload_file(
            job.http,
            self.items.store,
            job.ref.role,
            job.ref.url,
            self.folder,
            job.stem,
            max_bytes=job.max_bytes,
            progress=job.progress,
            expects=job.ref.expects,
            records=self.items.records,
        )
        return fetched, None  # durable once its upload returned

    async def put_sidecar(self, data: bytes) -> str | None:
        relative = f"{self.folder}/{SIDECAR}"
        await self.items.store.put_bytes(relative, data, content_type="application/json")
        return None

    def close(self) -> None:
        return
