"""The one HTTP layer: every request archiver makes goes through `HttpClient`.

It owns the shared aiohttp session, timeouts, retries with backoff, `Retry-After`, rate limits
and the mapping of HTTP statuses and service codes to `archiver.errors`. Sources describe their
service with an `ApiProfile` and never retry or sleep themselves.

Credentials: API calls carry the headers a source passes (its credential) and never follow a
redirect, so the credential cannot be carried to another host. Media requests carry no
configured header at all, and may follow redirects, to http(s) URLs only.

Every body, media or API answer, is read against a speed floor (`http.low_speed_limit` bytes a
second over `http.low_speed_time` seconds, as curl's `--speed-limit`/`--speed-time`): a drip
or a stall is cut and retried instead of holding the run. An API answer is read up to
`http.max_response_bytes`, and no further.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from archiver.config.settings import HttpSettings
from archiver.errors import (
    ApiError,
    CredentialsRejected,
    MalformedResponse,
    RetryableError,
    TransferError,
)
from archiver.net.apiprofile import ApiProfile
from archiver.net.limits import BandwidthLimiter, SpeedFloor, too_slow
from archiver.net.retry import RetryPolicy, parse_retry_after
from archiver.sources.nesting import loads_bounded

T = TypeVar("T")

MEDIA_READ_BUFFER = 256 * 1024
THROTTLE_WAIT = 1.1  # seconds: one rate-limit window, and a little


def describe_network_error(exc: BaseException) -> str:
    """A short, credential-free description of a transport failure."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the connection broke during the body"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"network error ({exc.strerror or type(exc).__name__})"
    return type(exc).__name__


class MediaResponse:
    """An open answer from a media host; its body is read with `chunks()`."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        bandwidth: BandwidthLimiter,
        client: HttpClient,
        floor: SpeedFloor | None,
    ) -> None:
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self._response = response
        self._bandwidth = bandwidth
        self._client = client
        self._floor = floor

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in chunks of whatever size the socket gave.

        A break in the body (reset, cut short, stalled past the read timeout, slower than the
        speed floor) is raised here as `RetryableError`, so the caller can keep the bytes it
        already holds for a resume.
        """
        content = self._response.content
        floor = self._floor
        while True:
            try:
                chunk = await content.readany()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise RetryableError(self._client.describe(exc)) from exc
            if not chunk:
                return
            if floor is not None:
                floor.feed(len(chunk))
            if self._bandwidth.rate > 0:
                await self._throttle(len(chunk), floor)
            yield chunk

    async def _throttle(self, count: int, floor: SpeedFloor | None) -> None:
        """Hold the transfer to `bandwidth_limit`; the time held is not the server's slowness."""
        if floor is None:
            await self._bandwidth.consume(count)
            return
        start = time.monotonic()
        await self._bandwidth.consume(count)
        floor.held(time.monotonic() - start)

    async def head_of_body(self, limit: int = 4096) -> bytes:
        """Up to `limit` bytes of the body, for an error message (empty if it breaks)."""
        try:
            return await self._response.content.read(limit)
        except (TimeoutError, aiohttp.ClientError):
            return b""


class HttpClient:
    """One aiohttp session and the policies every request obeys."""

    def __init__(self, settings: HttpSettings, *, bandwidth_limit: int = 0) -> None:
        self.settings = settings
        self.retry = RetryPolicy(
            attempts=settings.retries,
            base=settings.backoff_base,
            cap=settings.backoff_max,
            retry_after_cap=settings.retry_after_max,
        )
        self._bandwidth = BandwidthLimiter(bandwidth_limit)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.settings.connect_timeout,
            connect=self.settings.connect_timeout,
            sock_read=self._read_timeout(),
        )
        connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            timeout=timeout,
            connector=connector,
            headers={"User-Agent": self.settings.user_agent},
            # Cookies from one service must not ride along to another.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _read_timeout(self) -> float:
        """The longest wait for the next bytes.

        A read that waits longer than the speed floor's window is a transfer at 0 bytes a
        second, cut like any other that is too slow.
        """
        settings = self.settings
        if settings.low_speed_limit > 0:
            return min(settings.read_timeout, settings.low_speed_time)
        return settings.read_timeout

    def speed_floor(self) -> SpeedFloor | None:
        """A new speed floor for one download or API answer; None when `low_speed_limit` is 0."""
        settings = self.settings
        if settings.low_speed_limit <= 0:
            return None
        return SpeedFloor(settings.low_speed_limit, settings.low_speed_time)

    def describe(self, exc: BaseException) -> str:
        """`describe_network_error`, with a read that outwaited the speed floor told as such."""
        settings = self.settings
        stalled = isinstance(exc, aiohttp.SocketTimeoutError) and settings.low_speed_limit > 0
        if stalled and settings.low_speed_time <= settings.read_timeout:
            return too_slow(0, settings.low_speed_time)
        return describe_network_error(exc)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used outside `async with`")
        return self._session

    async def call_api(
        self,
        profile: ApiProfile,
        url: str,
        *,
        parse: Callable[[dict[str, Any]], T],
        headers: Mapping[str, str],
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> T:
        """POST to an API, check its answer and `parse` it, retrying what is worth retrying.

        `parse` receives the decoded JSON object whose code is a success code; it raises
        `MalformedResponse` when the shape is wrong, which is retried like a glitch.
        """

        async def attempt() -> T:
            doc = await self._post_once(profile, url, headers, json_body, form)
            code = doc.get("code")
            message = str(doc.get("msg", ""))[:200]
            trace_id = doc.get("trace_id") if isinstance(doc.get("trace_id"), str) else None
            if code in profile.ok_codes:
                return parse(doc)
            trace = f" (trace_id {trace_id})" if trace_id else ""
            if code in profile.retry_codes or code in profile.throttle_codes:
                wait = THROTTLE_WAIT if code in profile.throttle_codes else None
                raise RetryableError(f"code {code} {message}{trace}".strip(), retry_after=wait)
            if code in profile.auth_codes:
                raise CredentialsRejected(f"credentials rejected: code {code} {message}{trace}")
            raise ApiError(f"the API answered code {code} {message}{trace}")

        def final(exc: RetryableError) -> Exception:
            return ApiError(f"giving up after {self.retry.attempts} attempts: {exc}")

        return await self.retry.run(attempt, f"{profile.service} {url}", final)

    async def _post_once(
        self,
        profile: ApiProfile,
        url: str,
        headers: Mapping[str, str],
        json_body: Any,
        form: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        answered = await profile.limiter.acquire() if profile.limiter is not None else None
        try:
            async with self.session.post(
                url, json=json_body, data=form, headers=dict(headers), allow_redirects=False
            ) as response:
                status = response.status
                location = response.headers.get("Location", "")
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                # Only a success's body is used: the others are not read at all.
                body = await self._read_answer(response) if 200 <= status < 300 else b""
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryableError(self.describe(exc)) from exc
        finally:
            if answered is not None:
                answered()
        if status in (401, 403):
            raise CredentialsRejected(f"credentials rejected (HTTP {status})")
        if status == 429 or status >= 500 or status == 408:
            raise RetryableError(f"HTTP {status}", retry_after=retry_after)
        if 300 <= status < 400:
            raise ApiError(
                f"the API redirected (HTTP {status}) to "
                f"{location.split('?')[0]!r}; not followed, so the credential stays with "
                "the API host: check base_url"
            )
        if not 200 <= status < 300:
            raise ApiError(f"the API answered HTTP {status}")
        try:
            doc = loads_bounded(body)
        except ValueError as exc:
            raise MalformedResponse("the answer is not JSON") from exc
        if not isinstance(doc, dict) or "code" not in doc:
            raise MalformedResponse("the answer is not a JSON object with a code")
        return doc

    async def _read_answer(self, response: aiohttp.ClientResponse) -> bytearray:
        """The answer's body, read as it comes, up to `max_response_bytes`.

        A larger answer is an `ApiError` at once, whatever it is (asking again brings the same
        answer), and memory never holds more than the cap: a Content-Length over it is refused
        before a byte is read.
        """
        cap = self.settings.max_response_bytes
        if response.content_length is not None and response.content_length > cap:
            raise ApiError(f"the API answer is larger than http.max_response_bytes ({cap})")
        body = bytearray()
        floor = self.speed_floor()
        content = response.content
        while chunk := await content.readany():
            body += chunk
            if len(body) > cap:
                raise ApiError(f"the API answer is larger than http.max_response_bytes ({cap})")
            if floor is not None:
                floor.feed(len(chunk))
        return body

    @asynccontextmanager
    async def media(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        floor: SpeedFloor | None = None,
    ) -> AsyncIterator[MediaResponse]:
        """GET a media URL (one request). Transport failures become `RetryableError`.

        The body is held to `floor`, or to a speed floor of its own: a download that takes
        several requests passes one floor to them all, so that many small answers slow to
        come are cut like one slow answer.
        """
        if floor is None:
            floor = self.speed_floor()
        request_headers = {"Accept-Encoding": "identity", **(headers or {})}
        try:
            async with self.session.get(
                url,
                headers=request_headers,
                allow_redirects=True,
                max_redirects=5,
                auto_decompress=False,
                read_bufsize=MEDIA_READ_BUFFER,
            ) as response:
                yield MediaResponse(response, self._bandwidth, self, floor)
        except aiohttp.NonHttpUrlRedirectClientError as exc:
            # `file:`, `ftp:`, `data:`, `javascript:`: never fetched, and asking again will
            # not change where the host sends us. Only the scheme is told: the rest of the
            # URL may carry a signature.
            scheme = str(exc.args[0] if exc.args else "").split(":", 1)[0][:20]
            told = f" ({scheme}:)" if scheme.isascii() and scheme.isalnum() else ""
            # Not chained: the cause's text is the whole URL, signature and all.
            raise TransferError(f"redirected to a non-http URL{told}") from None
        except aiohttp.InvalidUrlRedirectClientError:
            raise TransferError("redirected to an invalid URL") from None  # as above
        except (aiohttp.InvalidURL, aiohttp.TooManyRedirects) as exc:
            raise TransferError(
                f"cannot follow the URL: {type(exc).__name__}"
            ) from None  # as above
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RetryableError(self.describe(exc)) from exc
