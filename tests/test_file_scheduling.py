"""The download slots take files, not tasks: a task's cover does not wait behind its video.

A media host on loopback holds a task's video half-sent until its cover has been asked for.
With whole tasks per slot the cover would only be asked for once the video was done, so the
host records whether the two were in flight at once. An item is still recorded only when its
last file is done: a cover that fails while the video streams fails the item (no sidecar),
the video is kept whole, and the next run fetches only the cover.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from aiohttp import web

from archiver.standin import StandIn
from tests.pageapi import PageApi, source_config, vth_page
from tests.support import config_dict, run_cli, write_config

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4096  # about 1 MiB
COVER = b"\xff\xd8\xff\xe0" + b"cover" * 2000
HOLD = (
    20.0  # seconds the video waits for its cover to be asked for, at most (never, if all is well)
)


class MediaHost:
    """Serves `/<task>/video.mp4` and `/<task>/cover.jpg`; the video holds half-sent until asked."""

    def __init__(self) -> None:
        self.cover_asked: dict[str, asyncio.Event] = {}
        self.overlapped: set[str] = set()  # tasks whose cover was asked while the video was held
        self.cover_status = 200
        self.requests: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def asked(self, task: str) -> asyncio.Event:
        return self.cover_asked.setdefault(task, asyncio.Event())

    async def video(self, request: web.Request) -> web.StreamResponse:
        task = request.match_info["task"]
        self.requests.append(request.path)
        response = web.StreamResponse(headers={"Content-Type": "video/mp4", "ETag": '"v1"'})
        response.content_length = len(VIDEO)
        await response.prepare(request)
        half = len(VIDEO) // 2
        await response.write(VIDEO[:half])
        try:
            await asyncio.wait_for(self.asked(task).wait(), HOLD)
        except TimeoutError:
            pass  # the cover waits behind the video: the test fails on `overlapped`
        else:
            self.overlapped.add(task)
        await response.write(VIDEO[half:])
        await response.write_eof()
        return response

    async def cover(self, request: web.Request) -> web.Response:
        task = request.match_info["task"]
        self.requests.append(request.path)
        self.asked(task).set()
        if self.cover_status != 200:
            return web.Response(status=self.cover_status, text="gone")
        return web.Response(body=COVER, content_type="image/jpeg")

    async def __aenter__(self) -> MediaHost:
        app = web.Application()
        app.router.add_get("/{task}/video.mp4", self.video)
        app.router.add_get("/{task}/cover.jpg", self.cover)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def task_record(host: MediaHost, number: int) -> dict[str, Any]:
    return {
        "id": number,
        "taskId": str(number),
        "origin": f"{host.url}/{number}/video.mp4",
        "covering": f"{host.url}/{number}/cover.jpg",
        "state": 30,
        "reason": "",
        "createdAt": 1743166924 + number,
        "videoTemp": None,
    }


async def archive(standin: StandIn, folder: Path, host: MediaHost, tasks: int) -> tuple[int, Path]:
    records = [task_record(host, n) for n in range(1, tasks + 1)]
    async with PageApi(lambda page, size: vth_page(records if page == 1 else [])) as api:
        cfg = config_dict(standin, only="faceswap", concurrency=2)
        cfg["sources"] = {"faceswap": source_config(api, "faceswap", page_size=50)}
        result = await run_cli("run", "-c", write_config(folder, cfg), "--no-progress", "-q")
    return result.code, folder / "archive"


def items(archive: Path) -> dict[str, tuple[str, str | None]]:
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        rows = db.execute("SELECT item_id, state, last_error FROM items").fetchall()
    finally:
        db.close()
    return {str(item_id): (state, error) for item_id, state, error in rows}


async def test_a_tasks_cover_is_fetched_while_its_video_is_still_coming(
    standin: StandIn, tmp_path: Path
) -> None:
    async with MediaHost() as host:
        code, archive_dir = await archive(standin, tmp_path, host, tasks=3)
    assert code == 0
    assert host.overlapped == {"1", "2", "3"}
    sidecars = sorted(archive_dir.rglob("metadata.json"))
    assert len(sidecars) == 3
    for sidecar in sidecars:
        files = json.loads(sidecar.read_text())["files"]
        assert list(files) == ["video", "cover"]  # in the item's order, however they ended
        assert (sidecar.parent / files["video"]["name"]).read_bytes() == VIDEO
        assert (sidecar.parent / files["cover"]["name"]).read_bytes() == COVER
    assert {state for state, _ in items(archive_dir).values()} == {"archived"}


async def test_a_file_failing_while_another_streams_fails_its_item_and_keeps_the_other(
    standin: StandIn, tmp_path: Path
) -> None:
    async with MediaHost() as host:
        host.cover_status = 404
        code, archive_dir = await archive(standin, tmp_path, host, tasks=1)
        assert code == 1
        assert host.overlapped == {"1"}
        assert not list(archive_dir.rglob("metadata.json"))  # no sidecar for a failed item
        (video,) = archive_dir.rglob("video.mp4")
        assert video.read_bytes() == VIDEO  # whole, under its final name
        assert not list(archive_dir.rglob("*.part"))
        state, error = items(archive_dir)["1"]
        assert state == "failed"
        assert error is not None and error.startswith("cover: HTTP 404")

        host.cover_status = 200
        host.requests.clear()
        code, _ = await archive(standin, tmp_path, host, tasks=1)
    assert code == 0
    assert host.requests == ["/1/cover.jpg"]  # the video was kept, not fetched again
    (sidecar,) = archive_dir.rglob("metadata.json")
    assert list(json.loads(sidecar.read_text())["files"]) == ["video", "cover"]
    assert items(archive_dir)["1"][0] == "archived"
