"""An idle download slot takes the upper half of the largest download still coming.

A media host on loopback serves one task: a large video sent slowly (a rate-limited body that
honours `Range` and `If-Range`, with an ETag and `Accept-Ranges`) and a small cover. With two
slots, the cover's slot is idle at once and splits the video. Whatever the host answers to the
second connection (a 200, another range, a body cut short, another ETag, a file replaced
upstream, a kill -9 of the run), the archive ends with the file byte for byte, or a clear
failure, and no segment or `.part` file left.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from archiver.standin import StandIn
from tests.pageapi import PageApi, source_config, vth_page
from tests.support import CliResult, config_dict, run_cli, spawn_cli, write_config

# 3 MiB at 1.5 MiB/s: the cover's slot finds more than 2 MiB of the video still to come.
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * (3 * 4096 - 1)
VIDEO_2 = b"\x00\x00\x00\x18ftypmp42" + bytes(reversed(range(256))) * (3 * 4096 - 1)
COVER = b"\xff\xd8\xff\xe0" + b"cover" * 2000
RATE = 3 << 19  # bytes a second, per connection
TICK = 0.02
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class SlowHost:
    """`/1/video.mp4`, slowly and with ranges, and `/1/cover.jpg`; faults for the second range.

    `fault`, for a range request with an end (the helper's): `whole` (a 200 with
    the whole file, as if If-Range failed), `shifted` (another Content-Range and its bytes),
    `short` (the body cut short), `etag` (another ETag on the right bytes).
    `replace_after`: once this many bytes of the first answer are sent, the file is replaced.
    """

    def __init__(
        self,
        fault: str | None = None,
        replace_after: int | None = None,
        *,
        body: bytes = VIDEO,
        rate: int = RATE,
    ) -> None:
        self.fault = fault
        self.rate = rate
        self.replace_after = replace_after
        self.body = body
        self.etag = '"v1"'
        self.requests: list[tuple[str, str | None, str | None]] = []
        self.helper_asked = asyncio.Event()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def video(self, request: web.Request) -> web.StreamResponse:
        wanted = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        self.requests.append((request.path, wanted, if_range))
        body, etag = self.body, self.etag
        headers = {"Content-Type": "video/mp4", "ETag": etag, "Accept-Ranges": "bytes"}
        asked = RANGE.fullmatch(wanted or "")
        if asked and if_range is not None and if_range != etag:
            asked = None
        helper = asked is not None and bool(asked.group(2))  # a bounded range: the helper's
        if helper:
            self.helper_asked.set()
        if asked is None or (helper and self.fault == "whole"):
            return await self._send(request, 200, headers, body, first=wanted is None)
        start = int(asked.group(1))
        end = int(asked.group(2)) + 1 if asked.group(2) else len(body)
        cut = None
        if helper and self.fault == "shifted":
            start += 1 << 18
        elif helper and self.fault == "etag":
            headers["ETag"] = '"v9"'
        elif helper and self.fault == "short":
            cut = (end - start) // 2
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
        return await self._send(request, 206, headers, body[start:end], cut=cut)

    async def _send(
        self,
        request: web.Request,
        status: int,
        headers: dict[str, str],
        part: bytes,
        *,
        first: bool = False,
        cut: int | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(part)
        await response.prepare(request)
        step = int(self.rate * TICK)
        sent = 0
        try:
            for at in range(0, len(part) if cut is None else cut, step):
                await response.write(part[at : at + step])
                sent += step
                if first and self.replace_after is not None and sent >= self.replace_after:
                    self.body, self.etag, self.replace_after = VIDEO_2, '"v2"', None
                await asyncio.sleep(TICK)
            if cut is not None:
                assert request.transport is not None
                request.transport.close()  # promised more than it sent
                return response
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client left: an owner that reached its segments drops its answer
        return response

    async def cover(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.headers.get("Range"), None))
        return web.Response(body=COVER, content_type="image/jpeg")

    @property
    def video_ranges(self) -> list[str | None]:
        return [wanted for path, wanted, _ in self.requests if path.endswith("video.mp4")]

    async def __aenter__(self) -> SlowHost:
        app = web.Application()
        app.router.add_get("/{task}/video.mp4", self.video)
        app.router.add_get("/{task}/cover.jpg", self.cover)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def task_record(host: SlowHost) -> dict[str, Any]:
    return {
        "id": 1,
        "taskId": "1",
        "origin": f"{host.url}/1/video.mp4",
        "covering": f"{host.url}/1/cover.jpg",
        "state": 30,
        "reason": "",
        "createdAt": 1743166924,
        "videoTemp": None,
    }


def write_run_config(standin: StandIn, folder: Path, api: PageApi, **top: Any) -> Path:
    cfg = config_dict(standin, only="faceswap", concurrency=2, **top)
    cfg["sources"] = {"faceswap": source_config(api, "faceswap", page_size=50)}
    return write_config(folder, cfg)


async def archive(standin: StandIn, folder: Path, host: SlowHost, **top: Any) -> tuple[int, Path]:
    records = [task_record(host)]
    async with PageApi(lambda page, size: vth_page(records if page == 1 else [])) as api:
        config = write_run_config(standin, folder, api, **top)
        result = await run_cli("run", "-c", config, "--no-progress", "-q")
    return result.code, folder / "archive"


def archived_video(archive_dir: Path) -> tuple[bytes, dict[str, Any]]:
    """The video's bytes and its entry in the sidecar."""
    (sidecar,) = archive_dir.rglob("metadata.json")
    entry = json.loads(sidecar.read_text())["files"]["video"]
    return (sidecar.parent / entry["name"]).read_bytes(), entry


def leftovers(archive_dir: Path) -> list[Path]:
    """Segment files, `.part` files and their `.part.json`: none may stay."""
    return [p for p in archive_dir.rglob("*") if p.name.endswith((".tmp", ".part", ".part.json"))]


def assert_video_whole(archive_dir: Path, expected: bytes = VIDEO) -> None:
    data, entry = archived_video(archive_dir)
    assert data == expected
    assert entry["sha256"] == hashlib.sha256(expected).hexdigest()
    assert entry["bytes"] == len(expected)
    assert leftovers(archive_dir) == []


def helper_ranges(host: SlowHost) -> list[str]:
    """The bounded ranges asked for the video: the helper's."""
    return [r for r in host.video_ranges if r is not None and not r.endswith("-")]


async def test_an_idle_slot_fetches_the_upper_half_of_a_slow_file(
    standin: StandIn, tmp_path: Path
) -> None:
    async with SlowHost() as host:
        code, archive_dir = await archive(standin, tmp_path, host)
    assert code == 0
    (asked,) = helper_ranges(host)
    first = RANGE.fullmatch(asked)
    assert first is not None and int(first.group(1)) > 0
    assert int(first.group(1)) % (1 << 18) == 0  # block-aligned
    assert int(first.group(2)) == len(VIDEO) - 1
    assert_video_whole(archive_dir)


async def test_a_wrong_answer_to_the_helper_costs_only_its_segment(
    standin: StandIn, tmp_path: Path
) -> None:
    for fault in ("whole", "shifted", "short", "etag"):
        folder = tmp_path / fault
        folder.mkdir()
        async with SlowHost(fault) as host:
            code, archive_dir = await archive(standin, folder, host)
        assert code == 0, fault
        assert helper_ranges(host), fault
        # The owner fetched the rest itself, from where its own bytes ended.
        assert any(r is not None and r.endswith("-") for r in host.video_ranges), fault
        assert_video_whole(archive_dir)


async def test_a_file_replaced_upstream_during_a_split_is_never_spliced(
    standin: StandIn, tmp_path: Path
) -> None:
    # Replaced once the owner's answer has begun: the helper asks after that.
    async with SlowHost(replace_after=1) as host:
        code, archive_dir = await archive(standin, tmp_path, host)
        if_range = next(r[2] for r in host.requests if r[1] and not r[1].endswith("-"))
        assert if_range == '"v1"'  # the helper's range, tied to the owner's version
    assert leftovers(archive_dir) == []
    if code == 0:
        data, entry = archived_video(archive_dir)
        assert data in (VIDEO, VIDEO_2)  # one version, whole
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    else:
        assert not list(archive_dir.rglob("video.mp4"))


async def test_a_download_coming_fast_is_not_cut(standin: StandIn, tmp_path: Path) -> None:
    # 48 MiB at 64 MiB/s: a pace no CDN holds one connection to, so a second connection would
    # add nothing but a copy of its bytes into the `.part`.
    body = VIDEO[:12] + bytes(range(256)) * (48 * 4096)
    async with SlowHost(body=body, rate=64 << 20) as host:
        code, archive_dir = await archive(standin, tmp_path, host)
    assert code == 0
    assert host.video_ranges == [None]
    assert_video_whole(archive_dir, body)


async def test_split_files_false_makes_no_range_request(standin: StandIn, tmp_path: Path) -> None:
    async with SlowHost() as host:
        code, archive_dir = await archive(standin, tmp_path, host, split_files=False)
    assert code == 0
    assert host.video_ranges == [None]
    assert_video_whole(archive_dir)


@dataclass
class Stopped:
    """A run stopped by a signal while a segment was coming, then the run after it."""

    code: int  # the stopped run's exit status
    temporaries: list[Path]  # what it left in the archive, before the next run
    parts: list[Path]
    output: str
    again: CliResult  # the next run
    host: SlowHost


async def stop_during_a_split(standin: StandIn, tmp_path: Path, signum: int) -> Stopped:
    async with SlowHost() as host:
        records = [task_record(host)]
        async with PageApi(lambda page, size: vth_page(records if page == 1 else [])) as api:
            config = write_run_config(standin, tmp_path, api)
            child = await spawn_cli("run", "-c", config, output=tmp_path / "stopped.txt")
            try:
                await asyncio.wait_for(host.helper_asked.wait(), 30)
                await asyncio.sleep(0.3)  # the segment file is being written
                child.send_signal(signum)
                code = await asyncio.wait_for(child.wait(), 30)
            finally:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
            archive_dir = tmp_path / "archive"
            temporaries = list(archive_dir.rglob("*.tmp"))
            parts = list(archive_dir.rglob("video.part"))
            again = await run_cli("run", "-c", config, "--no-progress", "-q")
    output = (tmp_path / "stopped.txt").read_text()
    return Stopped(code, temporaries, parts, output, again, host)


async def test_a_run_killed_during_a_split_then_run_again_ends_whole(
    standin: StandIn, tmp_path: Path
) -> None:
    stopped = await stop_during_a_split(standin, tmp_path, signal.SIGKILL)
    assert stopped.temporaries, "the kill fell during a split"
    assert stopped.again.code == 0, stopped.again.output
    assert_video_whole(tmp_path / "archive")


async def test_ctrl_c_during_a_split_leaves_no_segment_and_the_next_run_ends_whole(
    standin: StandIn, tmp_path: Path
) -> None:
    stopped = await stop_during_a_split(standin, tmp_path, signal.SIGINT)
    assert stopped.code == 130, stopped.output
    # The owner's exit cancelled its segment and deleted its file; what it had itself is kept
    # in its `.part`, for the next run to resume after.
    assert stopped.temporaries == []
    assert stopped.parts
    assert stopped.again.code == 0, stopped.again.output
    assert_video_whole(tmp_path / "archive")
    ranges = stopped.host.video_ranges[2:]
    resumed = [r for r in ranges if r is not None and r.endswith("-")]
    assert resumed and int(resumed[0][len("bytes=") : -1]) > 0  # resumed, not fetched anew
