"""The media host: the stand-in's S3 bucket, on its own port so it is a different host:port.

`GET` and `HEAD /media/...` answer like S3: `Content-Length`, a quoted `ETag`, `Last-Modified`,
`Content-Type`, `Accept-Ranges: bytes`; one `Range` (`N-`, `N-M`, `-N`) gets a 206 with
`Content-Range`, a range past the end a 416; `If-Range` honours the Range only while the
validator is still current (RFC 9110 13.1.5); `If-None-Match` gets a 304. Bodies are streamed
in small writes, so the bytes counted as sent are the bytes that left, and faults can cut them.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Literal

from aiohttp import web

from archiver.standin import wire
from archiver.standin.content import MediaFile
from archiver.standin.dataset import Dataset
from archiver.standin.faults import Fault, Faults
from archiver.standin.stats import RecordedRequest, Stats

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
Unsatisfiable = Literal["unsatisfiable"]


def parse_range(header: str, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """The byte span `[start, end)` a Range header asks for, or None to send the whole file.

    A header this server does not understand (another unit, several ranges, bad syntax) is
    ignored, as RFC 9110 allows; only a well-formed range past the end is unsatisfiable.
    """
    match = _RANGE.fullmatch(header.strip())
    if match is None or match[1] == match[2] == "":
        return None
    first, last = match[1], match[2]
    if not first:  # a suffix: the last N bytes
        length = int(last)
        return (max(size - length, 0), size) if length > 0 else "unsatisfiable"
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    end = min(int(last) + 1, size) if last else size
    return start, end


def if_range_holds(value: str, file: MediaFile) -> bool:
    """Whether an If-Range validator still names the current file (strong comparison)."""
    value = value.strip()
    if value.startswith('"'):
        return value == file.etag
    return value == file.last_modified


class MediaSite:
    """The aiohttp application of the media host."""

    def __init__(
        self, dataset: Dataset, faults: Faults, stats: Stats, closing: asyncio.Event
    ) -> None:
        self.dataset = dataset
        self.faults = faults
        self.stats = stats
        self.closing = closing

    def app(self) -> web.Application:
        """A new application serving the dataset's media."""
        app = web.Application()
        app.router.add_route("GET", "/media/{tail:.*}", self.handle)
        app.router.add_route("HEAD", "/media/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one media request, misbehaving if a fault says so."""
        path = request.path
        self.stats.record(
            RecordedRequest(
                site="media",
                method=request.method,
                path=path,
                query=request.query_string,
                headers=tuple(request.headers.items()),
                body=None,
                encoding=None,
                at=time.monotonic(),
            )
        )
        fault = self.faults.take(path)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.number(1.0))
            elif fault.kind == "replace":
                self.dataset.replace_media(path)
            elif fault.kind == "api_code":
                return wire.json_response({"code": fault.value, "msg": "error"})
            elif (answer := wire.fault_response(fault)) is not None:
                return answer
        file = self.dataset.media_file(path)
        if file is None:
            return wire.s3_error(404, "NoSuchKey", "The specified key does not exist.", Key=path)
        return await self._serve(request, file, fault)

    async def _serve(
        self, request: web.Request, file: MediaFile, fault: Fault | None
    ) -> web.StreamResponse:
        headers = {
            "ETag": file.etag,
            "Last-Modified": file.last_modified,
            "Accept-Ranges": "bytes",
            "Content-Type": file.content_type,
        }
        if request.headers.get("If-None-Match", "").strip() == file.etag:
            return web.Response(status=304, headers=headers)
        span = self._span(request, file, ignore=fault is not None and fault.kind == "ignore_range")
        if span == "unsatisfiable":
            answer = wire.s3_error(416, "InvalidRange", "The requested range is not satisfiable")
            answer.headers["Content-Range"] = f"bytes */{file.size}"
            return answer
        response = web.StreamResponse(status=200 if span is None else 206, headers=headers)
        start, end = (0, file.size) if span is None else span
        if span is not None:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
        response.content_length = end - start
        if request.method == "HEAD":
            await response.prepare(request)
            return response
        return await wire.send_body(
            request,
            response,
            file.read(start, end),
            fault=fault,
            on_sent=self._count,
            closing=self.closing,
        )

    def _span(
        self, request: web.Request, file: MediaFile, *, ignore: bool
    ) -> tuple[int, int] | Unsatisfiable | None:
        header = request.headers.get("Range")
        if header is None or ignore:
            return None
        validator = request.headers.get("If-Range")
        if validator is not None and not if_range_holds(validator, file):
            return None  # the file changed since the client's part: send it all again
        return parse_range(header, file.size)

    def _count(self, sent: int) -> None:
        self.stats.media_bytes_sent += sent
