"""What a media host's answer says when it is not the file, and the retries of a media fetch.

Shared by the download into a folder and the upload into a bucket.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from archiver.errors import ArchiverError, HttpStatusError, RetryableError, TransferError, UnsafeUrl
from archiver.net.http import HttpClient, MediaResponse
from archiver.net.retry import parse_retry_after
from archiver.sources.fields import media_url

if TYPE_CHECKING:
    from archiver.net.download import FetchedFile

S3_MESSAGE = re.compile(rb"<Message>([^<]{1,200})</Message>")


async def with_retries(
    http: HttpClient, url: str, attempt: Callable[[], Awaitable[FetchedFile]]
) -> FetchedFile:
    """`attempt` to fetch the media at `url`, retried by the HTTP layer's policy."""
    if media_url(url)[0] is None:
        raise UnsafeUrl(f"not an http(s) URL: {url[:80]!r}")

    def final(exc: RetryableError) -> Exception:
        return TransferError(f"gave up after {http.retry.attempts} attempts: {exc}")

    return await http.retry.run(attempt, f"GET {url[:120]}", final)


async def status_error(response: MediaResponse) -> ArchiverError:
    """What a status other than the file's own stands for: an error retried, or final."""
    status = response.status
    if status in (408, 425, 429) or status >= 500:
        return RetryableError(f"HTTP {status}", retry_after=_retry_after(response))
    # S3 says why in its error document (`Request has expired`, `Access Denied`): worth a
    # few bytes, since it is what tells an expired URL from a missing file.
    explained = S3_MESSAGE.search(await response.head_of_body())
    why = f": {explained.group(1).decode('utf-8', 'replace')}" if explained else ""
    return HttpStatusError(f"HTTP {status}{why}")


def _retry_after(response: MediaResponse) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))
