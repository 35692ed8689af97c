"""A host on loopback that answers each request as a test scripts it, and `Origin`, a file
served the way CDNs serve files (Range and If-Range honoured) that misbehaves on demand.

Tests of the download state machine talk to it through a real `HttpClient`: every fault is a
server that misbehaves on the wire (a body cut short, a capped range, a wrong Content-Range,
a drip, a stall), never a patched function.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from archiver.config.settings import HttpSettings
from archiver.net.http import HttpClient

# A request, and how many came before it: the answer a test gives.
Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]

QUICK = HttpSettings(retries=3, backoff_base=0.01, backoff_max=0.02, read_timeout=5.0)
RANGE = re.compile(r"bytes=(\d+)-")


def settings(**overrides: Any) -> HttpSettings:
    """Fast retries and timeouts, for a test that must stay short."""
    return dataclasses.replace(QUICK, **overrides)


def client(**overrides: Any) -> HttpClient:
    """An `HttpClient` with `settings(**overrides)`; use it as `async with`."""
    return HttpClient(settings(**overrides))


@dataclass
class Seen:
    """One request the host answered."""

    method: str
    path: str
    range: str | None
    if_range: str | None


class Host:
    """An aiohttp server on 127.0.0.1 whose every answer `handler` gives."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/video.mp4") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def ranges(self) -> list[str | None]:
        """The Range header of each request, in order."""
        return [s.range for s in self.seen]

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        count = len(self.seen)
        headers = request.headers
        self.seen.append(
            Seen(request.method, request.path, headers.get("Range"), headers.get("If-Range"))
        )
        return await self.handler(request, count)


async def send(
    request: web.Request,
    status: int,
    headers: dict[str, str],
    body: bytes,
    *,
    promised: int | None = None,
    drip: tuple[int, float] | None = None,
    then: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Answer `status` with `body`, announcing `promised` bytes (default: the body's length).

    A body shorter than promised is followed by a closed connection, as a broken transfer is;
    `drip` sends it `(bytes, every seconds)`; `then` runs after the body, before the end (a
    stall, say).
    """
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body) if promised is None else promised
    await response.prepare(request)
    try:
        if drip is None:
            await response.write(body)
        else:
            size, pause = drip
            for start in range(0, len(body), size):
                await response.write(body[start : start + size])
                await asyncio.sleep(pause)
        if then is not None:
            await then()
    except ConnectionError:
        return response  # the client hung up: that is what the test wanted
    if promised is not None and promised != len(body) and request.transport is not None:
        # The client reads what was sent before it sees the connection close: aiohttp drops
        # bytes still unread when the close arrives, and a test wants to know what it kept.
        await asyncio.sleep(0.05)
        request.transport.close()
        return response
    await response.write_eof()
    return response


@dataclass
class Origin:
    """A file served like a CDN serves it, with the faults a test switches on.

    `cap`: the most bytes one range answer holds (the rest is for the next request).
    `cut`: bytes after which the first answer stops and closes its connection.
    `content_range`: what the first 206 says, whatever was asked (a wrong range, total).
    `plain_206`: a plain GET is answered with this Content-Range and its bytes.
    `honour_if_range`: False sends the range asked for even if the file changed since.
    `pause`: seconds each range answer waits before it begins.
    """

    body: bytes
    etag: str | None = '"v1"'
    content_type: str | None = "video/mp4"
    cap: int | None = None
    cut: int | None = None
    content_range: str | None = None
    plain_206: str | None = None
    honour_if_range: bool = True
    pause: float = 0.0
    answered: list[int] = field(default_factory=list)  # the status of each answer

    async def __call__(self, request: web.Request, count: int) -> web.StreamResponse:
        headers = {"Accept-Ranges": "bytes"}
        if self.etag is not None:
            headers["ETag"] = self.etag
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        size = len(self.body)
        asked = RANGE.fullmatch(request.headers.get("Range", ""))
        if_range = request.headers.get("If-Range")
        if self.honour_if_range and asked and if_range is not None and if_range != self.etag:
            asked = None  # the file changed since the client's part: all of it again
        if asked is None and self.plain_206 is not None:
            first, last = (int(n) for n in re.findall(r"\d+", self.plain_206)[:2])
            headers["Content-Range"] = self.plain_206
            return await self._answer(request, 206, headers, self.body[first : last + 1])
        if asked is None:
            return await self._answer(request, 200, headers, self.body)
        start = int(asked.group(1))
        if start >= size:
            headers["Content-Range"] = f"bytes */{size}"
            self.answered.append(416)
            return web.Response(status=416, headers=headers)
        await asyncio.sleep(self.pause)
        end = size if self.cap is None else min(size, start + self.cap)
        headers["Content-Range"] = self.content_range or f"bytes {start}-{end - 1}/{size}"
        self.content_range = None  # once
        return await self._answer(request, 206, headers, self.body[start:end])

    async def _answer(
        self,
        request: web.Request,
        status: int,
        headers: dict[str, str],
        part: bytes,
    ) -> web.StreamResponse:
        self.answered.append(status)
        if self.cut is not None:
            cut, self.cut = self.cut, None
            return await send(request, status, headers, part[:cut], promised=len(part))
        return await send(request, status, headers, part)
