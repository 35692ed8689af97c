"""A list API on loopback whose pages a test writes: pages that repeat, never end, or nest deep.

Both list endpoints (`/videoTaskHistory`, `/open/v1/video_lip_sync/list`) answer with whatever
`answer(page, size)` returns: a JSON-ready answer, or the raw bytes of one. Media URLs in the
records can point at a `StandIn`'s media host, so what is listed is really archived.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

Answer = Callable[[int, int], Any]

VTH = "/videoTaskHistory"
CHANJING = "/open/v1/video_lip_sync/list"


def vth_page(records: list[Any]) -> dict[str, Any]:
    """A video-task-history answer holding `records`."""
    return {"code": 200, "msg": "SUCCESS", "data": records}


def chanjing_page(records: list[Any], total_page: int | None = None) -> dict[str, Any]:
    """A Chanjing answer holding `records`; no `page_info` when `total_page` is None."""
    data: dict[str, Any] = {"list": records}
    if total_page is not None:
        data["page_info"] = {"page": 1, "size": len(records), "total_page": total_page}
    return {"code": 0, "msg": "success", "data": data}


class PageApi:
    """`async with PageApi(answer) as api:` serves `answer` at `api.url` until the block ends."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.pages: list[int] = []  # the page of every list request, in order of arrival
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _list(self, request: web.Request) -> web.Response:
        params = await request.json()
        size = params.get("pageSize", params.get("page_size"))
        self.pages.append(params["page"])
        body = self.answer(params["page"], size)
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        return web.Response(body=body, content_type="application/json")

    async def __aenter__(self) -> PageApi:
        app = web.Application()
        app.router.add_post(VTH, self._list)
        app.router.add_post(CHANJING, self._list)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def source_config(api: PageApi, service: str, **settings: Any) -> dict[str, Any]:
    """The settings of one source (`faceswap` or `chanjing`) listing from `api`."""
    if service == "faceswap":
        base = {"type": "video_task_history", "token": "t", "templates": False}
    else:
        base = {"type": "chanjing_lip_sync", "access_token": "t"}
    return {**base, "base_url": api.url, "page_size": 10, **settings}
