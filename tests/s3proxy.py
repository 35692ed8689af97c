"""A store that fails mid-run: an aiohttp proxy in front of the loopback S3 API that answers
some requests with 503 SlowDown or 500, and cuts others off without an answer, on demand.

It forwards every other request as it came (the signature covers the Host header, which is
the proxy's: the client signed for it, and moto does not check signatures anyway).
"""

from __future__ import annotations

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


class FaultyStore:
    """`every`-th request answered 503, the one after it 500, the one after that cut off;
    or, with `deny_writes`, a store that lets us read but not write."""

    def __init__(self, upstream: str, every: int = 6, *, deny_writes: bool = False) -> None:
        self.upstream = upstream
        self.every = every
        self.deny_writes = deny_writes  # every PUT answered 403 AccessDenied, nothing else
        self.count = 0
        self.faults = 0
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
        body = await request.read()
        if self.deny_writes:
            if request.method == "PUT":
                return web.Response(status=403, body=ACCESS_DENIED, content_type="application/xml")
            return await self._forward(request, body)
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
        return await self._forward(request, body)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
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
            return web.Response(status=answer.status, headers=out, body=data)
