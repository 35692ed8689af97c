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
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from archiver.config.settings import BucketSettings
from archiver.errors import ArchiverError, ConfigError, RetryableError, TransferError
from archiver.store.backend import Fetch
from archiver.store.checksums import FILE_NAME
from archiver.store.hashing import new_sha256
from archiver.store.manifest import FileRow, ManifestStore
from archiver.store.multipart import (
    MediaUpload,
    MultipartUploads,
    PartBudget,
    b64_sha256,
    error_code,
)
from archiver.store.paths import safe_name
from archiver.store.sidecar import SIDECAR
from archiver.store.uploads import Part, UploadRecord, UploadRecords

if TYPE_CHECKING:
    from archiver.net.download import FetchedFile

T = TypeVar("T")
READ_BLOCK = 1 << 20
# Parts held in memory by all uploads together (at least two parts): with the interpreter and
# botocore, a run stays under 150 MB at 16 MiB parts and concurrency 8.
PARTS_IN_MEMORY = 32 * 1024**2
# Store errors that mean the key is not there, not that the store failed.
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
# The store's answers to bytes that do not match the checksum sent with them: damaged on the
# way, so worth sending again (botocore does not retry a 400).
DAMAGED = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})
PUT_ATTEMPTS = 3  # a small object sent again after the store refused it as damaged


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a HEAD tells of an object: its size and the sha256 stored with it (if any)."""

    size: int
    sha256: str | None


_SESSIONS = threading.local()


def _session() -> AioSession:
    """This thread's botocore session: one for all the clients the thread makes.

    A new session loads and parses the S3 service model again, megabytes of objects for each
    short step of a run (lock, renewals, checksums) that the allocator keeps afterwards; a
    session is not shared between threads (botocore's advice), so the lock's renewals have
    their own.
    """
    session: AioSession | None = getattr(_SESSIONS, "session", None)
    if session is None:
        session = _SESSIONS.session = get_session()
    return session


def with_store(
    settings: BucketSettings, step: Callable[[BucketStore], Awaitable[T]], attempts: int = 8
) -> T:
    """Run `step` with the bucket open, on a short event loop of its own (outside the job's)."""

    async def main() -> T:
        async with BucketStore(settings, attempts=attempts) as store:
            return await step(store)

    return asyncio.run(main())


class BucketStore(MultipartUploads):
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
        session = _session()
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
        hasher = new_sha256()
        hasher.update(data)
        digest = hasher.digest()
        extra: dict[str, Any] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        if content_type:
            extra["ContentType"] = content_type
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                answer = await self._client.put_object(
                    Bucket=self.bucket,
                    Key=self.key(relative),
                    Body=data,
                    ChecksumSHA256=b64_sha256(digest),
                    Metadata={"sha256": digest.hex()},
                    **extra,
                )
                break
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) not in DAMAGED or attempt == PUT_ATTEMPTS:
                    raise self.failure(relative, exc) from exc
        return str(answer.get("ETag", ""))

    async def _ask(self, relative: str, request: Awaitable[Any]) -> Any | None:
        """The store's answer to a request about one object; None if there is no such object."""
        try:
            return await request
        except ClientError as exc:
            if error_code(exc) in MISSING:
                return None
            raise self.failure(relative, exc) from exc
        except BotoCoreError as exc:
            raise self.failure(relative, exc) from exc

    async def head(self, relative: str) -> StoredObject | None:
        """The object's size and stored sha256, or None if there is no such object."""
        key = self.key(relative)
        answer = await self._ask(relative, self._client.head_object(Bucket=self.bucket, Key=key))
        if answer is None:
            return None
        meta = answer.get("Metadata") or {}
        return StoredObject(int(answer["ContentLength"]), meta.get("sha256"))

    async def read_tagged(self, relative: str) -> tuple[bytes, str] | None:
        """A small object and its ETag, read at once; None if there is no such object."""
        key = self.key(relative)
        answer = await self._ask(relative, self._client.get_object(Bucket=self.bucket, Key=key))
        if answer is None:
            return None
        async with answer["Body"] as body:
            return bytes(await body.read()), str(answer.get("ETag", ""))

    async def read(self, relative: str) -> bytes | None:
        """The whole of a small object, or None if there is none."""
        chunks = [chunk async for chunk in self.stream(relative)]
        return None if chunks == [None] else b"".join(c for c in chunks if c is not None)

    async def stream(self, relative: str) -> AsyncIterator[bytes | None]:
        """The object's bytes, a block at a time; one None if there is no such object."""
        key = self.key(relative)
        answer = await self._ask(relative, self._client.get_object(Bucket=self.bucket, Key=key))
        if answer is None:
            yield None
            return
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
        """A store error as one line naming the object and the store's code.

        Bytes the store refused as damaged (their checksum differs) are a `RetryableError`: a
        media file is then fetched and sent again by the download's retry policy.
        """
        code = error_code(exc)
        if code in DAMAGED:
            return RetryableError(
                f"{self.where(relative)}: the store refused the bytes as damaged on the way "
                f"({code})"
            )
        return TransferError(f"{self.where(relative)}: the store answered {code}")

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

    async def sha256_of(self, relative: str, size: int) -> str:
        """The sha256 of an object as the store has it; its size must be `size`."""
        digest = new_sha256()
        seen = 0
        async for chunk in self.stream(relative):
            if chunk is None:
                raise TransferError(f"{self.where(relative)}: gone just after it was made")
            digest.update(chunk)
            seen += len(chunk)
        if seen != size:
            raise TransferError(f"{self.where(relative)}: {seen} bytes, not {size}")
        return digest.hexdigest()

    @property
    def client(self) -> Any:
        return self._client


class BucketItems:
    """The archive's items in a bucket, as the pipeline sees them (`backend.ArchiveStore`)."""

    def __init__(self, store: BucketStore, records: UploadRecords | None) -> None:
        self.store = store
        self.records = records

    def open_item(self, folder: str) -> BucketPlace:
        return BucketPlace(self, folder)

    def publish_checksums(self, manifest: ManifestStore, source: str) -> None:
        """Put `<source>/SHA256SUMS` in the bucket, unless the one there is the same."""
        relative = f"{safe_name(source)}/{FILE_NAME}"
        text = "".join(manifest.checksum_lines(source)).encode("utf-8")
        hasher = new_sha256()
        hasher.update(text)

        async def put(store: BucketStore) -> None:
            found = await store.head(relative)
            if found is None or found.sha256 != hasher.hexdigest():
                await store.put_bytes(relative, text, content_type="text/plain")

        with_store(self.store.settings, put)

    def publish_catalog(self, state_dir: Path, *, eventful: bool) -> None:
        from archiver.catalog.bucket import write_bucket_catalog

        # Whether the bucket has one is asked of the store only after a quiet run.
        settings = self.store.settings
        write_bucket_catalog(settings, state_dir, locked=True, if_missing=not eventful)

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
