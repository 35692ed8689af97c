"""A store that misbehaves: an aiohttp proxy in front of the loopback S3 API.

On demand it answers some requests with 503 SlowDown or 500 and cuts others off without an
answer; denies writes; plays a store without conditional writes (answering them 501
NotImplemented, or ignoring their condition); or damages bodies on their way to the store.
For the last it also does what S3 does and moto does not (its `put_object` leaves the check
as a TODO): a PUT whose body differs from its `x-amz-checksum-sha256` is refused with 400
BadDigest and never reaches the store.

It forwards every other request as it came (the signature covers the Host header, which is
the proxy's: the client signed for it, and moto does not check signatures anyway).
"""

from __future__ import annotations

import base64
import hashlib
from fnmatch import fnmatchcase
from typing import Literal

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)

ACCESS_DENIED = SLOW_DOWN.replace(b"SlowDown", b"AccessDenied").replace(
    b"Please reduce your request rate.", b"Access Denied"
)
NOT_IMPLEMENTED = SLOW_DOWN.replace(b"SlowDown", b"NotImplemented").replace(
    b"Please reduce your request rate.",
    b"A header you provided implies functionality that is not implemented",
)
BAD_DIGEST = SLOW_DOWN.replace(b"SlowDown", b"BadDigest").replace(
    b"Please reduce your request rate.",
    b"The SHA256 you specified did not match the calculated checksum.",
)
CONDITIONS = ("if-none-match", "if-match")


class FaultyStore:
    """`every`-th request answered 503, the one after it 500, the one after that cut off;
    or, with `deny_writes`, a store that lets us read but not write; with `conditional`, one
    that refuses or ignores conditional writes (or refuses `If-Match` only); with `damage`,
    one whose network flips a byte of that many PUT bodies (-1: all) whose path matches
    `damage_path`.

    Only the faults asked for are played: `every=0` plays none of the first kind. `deny` may
    be set while a run goes on: a PUT whose path matches it is then answered 403.
    """

    def __init__(
        self,
        upstream: str,
        every: int = 6,
        *,
        deny_writes: bool = False,
        conditional: Literal["refuse", "ignore", "refuse-if-match"] | None = None,
        damage: int = 0,
        damage_path: str = "*",
    ) -> None:
        self.upstream = upstream
        self.every = every
        self.deny_writes = deny_writes  # every PUT answered 403 AccessDenied, nothing else
        self.deny: str | None = None
        self.conditional = conditional
        self.damage = damage
        self.damage_path = damage_path
        self.count = 0
        self.faults = 0
        self.conditional_puts = 0  # PUTs that came with a condition
        self.damaged = 0  # bodies a byte of which was flipped
        self.refused = 0  # PUTs refused as BadDigest
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> FaultyStore:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.count += 1
        try:
            body = await request.read()
        except ConnectionResetError:  # the client gave up on the request (a run cancelled)
            return web.Response(status=400)
        headers = None
        if request.method == "PUT":
            answer = self._put(request, body)
            if isinstance(answer, web.Response):
                return answer
            body, headers = answer
        if self.deny_writes or not self.every:
            return await self._forward(request, body, headers)
        return await self._fault(request, body, headers)

    def _put(
        self, request: web.Request, body: bytes
    ) -> web.Response | tuple[bytes, dict[str, str]]:
        """A PUT's refusal, or the body and the headers to send on."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if self.deny_writes or (self.deny is not None and fnmatchcase(request.path, self.deny)):
            return web.Response(status=403, body=ACCESS_DENIED, content_type="application/xml")
        if any(h in request.headers for h in CONDITIONS):
            self.conditional_puts += 1
            refused = self.conditional == "refuse" or (
                self.conditional == "refuse-if-match" and "if-match" in request.headers
            )
            if refused:
                return web.Response(
                    status=501, body=NOT_IMPLEMENTED, content_type="application/xml"
                )
            if self.conditional == "ignore":
                headers = {k: v for k, v in headers.items() if k.lower() not in CONDITIONS}
        copied = "x-amz-copy-source" in request.headers
        if self.damage and body and not copied and fnmatchcase(request.path, self.damage_path):
            self.damage -= 1 if self.damage > 0 else 0
            self.damaged += 1
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        sent = request.headers.get("x-amz-checksum-sha256")
        if sent is not None and sent != base64.b64encode(hashlib.sha256(body).digest()).decode():
            self.refused += 1
            return web.Response(status=400, body=BAD_DIGEST, content_type="application/xml")
        return body, headers

    async def _fault(
        self, request: web.Request, body: bytes, headers: dict[str, str] | None
    ) -> web.StreamResponse:
        turn = self.count % self.every
        if turn == 0:
            self.faults += 1
            return web.Response(status=503, body=SLOW_DOWN, content_type="application/xml")
        if turn == 1 and self.count > 1:
            self.faults += 1
            return web.Response(status=500, body=SLOW_DOWN.replace(b"SlowDown", b"InternalError"))
        if turn == 2 and self.count > 2 and request.transport is not None:
            self.faults += 1
            request.transport.abort()  # a reset: no answer at all
            return web.Response()
        return await self._forward(request, body, headers)

    async def _forward(
        self, request: web.Request, body: bytes, headers: dict[str, str] | None = None
    ) -> web.Response:
        assert self._session is not None
        if headers is None:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.request(
            request.method,
            f"{self.upstream}{request.rel_url}",
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as answer:
            data = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            if request.method == "HEAD":  # no body, but the length of the object's
                out["Content-Length"] = answer.headers.get("Content-Length", "0")
                return web.Response(status=answer.status, headers=out)
            return web.Response(status=answer.status, headers=out, body=data)
