"""Every run ends: a drip, a stall, an endless answer or a redirect off the web never holds it.

A media body or an API answer slower than `http.low_speed_limit` over `http.low_speed_time` is
cut and retried (the bytes kept, for a resume), then the file fails and says how slow; a
connection that sends nothing is cut after `low_speed_time` too. An API answer larger than
`http.max_response_bytes` is an error at once, read no further. A media redirect to `file:`,
`data:` and the like fails its file at once. Hosts here are loopback servers that misbehave on
the wire; the timings are a tenth of a second, so the tests stay short.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from archiver.errors import ApiError, TransferError
from archiver.net.apiprofile import ApiProfile
from archiver.net.download import download_file
from archiver.standin import DatasetSpec, Fault, StandIn
from tests.conftest import StandInFactory
from tests.loopback import RANGE, Host, Origin, client, send
from tests.support import assert_archive_exact, config_dict, run_cli, write_config

BODY = random.Random(20).randbytes(8192)
FLOOR = {"low_speed_limit": 1024, "low_speed_time": 0.5}
PROFILE = ApiProfile(service="test", ok_codes=frozenset({0}), retry_codes=frozenset())
ANSWER = json.dumps({"code": 0, "data": {"list": [{"id": n} for n in range(40)]}}).encode()


class Dripping:
    """A file that comes in `piece`-byte pieces every `pause` seconds while `slow` is set."""

    def __init__(self, piece: int = 64, pause: float = 0.1, stall_after: int | None = None):
        self.piece = piece
        self.pause = pause
        self.stall_after = stall_after  # bytes sent before the host sends nothing more
        self.slow = True

    async def __call__(self, request: web.Request, count: int) -> web.StreamResponse:
        headers = {"ETag": '"d1"', "Content-Type": "video/mp4"}
        asked = RANGE.fullmatch(request.headers.get("Range", ""))
        start = int(asked.group(1)) if asked else 0
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        status = 206 if start else 200
        part = BODY[start:]
        if not self.slow:
            return await send(request, status, headers, part)
        if self.stall_after is not None:
            sent = part[: self.stall_after]
            return await send(
                request, status, headers, sent, promised=len(part), then=_hang
            )  # fmt: skip
        return await send(request, status, headers, part, drip=(self.piece, self.pause))


async def _hang() -> None:
    await asyncio.sleep(30)  # cancelled when the client hangs up, or when the host closes


async def _fetch(host: Host, folder: Path, retries: int, **http: Any) -> str:
    async with client(retries=retries, **http) as session:
        fetched = await download_file(
            session, "video", host.url(), folder, "video", max_bytes=1 << 20
        )
    return fetched.name


def _part(folder: Path) -> bytes:
    return (folder / "video.part").read_bytes()


async def test_a_dripping_body_is_cut_retried_then_failed_and_a_later_run_resumes(
    tmp_path: Path,
) -> None:
    drip = Dripping()  # 640 bytes a second, under a floor of 1,024
    async with Host(drip) as host:
        started = time.monotonic()
        with pytest.raises(TransferError) as failed:
            await _fetch(host, tmp_path, retries=2, **FLOOR)
        took = time.monotonic() - started
    assert str(failed.value).startswith("gave up after 2 attempts: too slow: ")
    assert str(failed.value).endswith(" B/s over 0.5 s")
    assert 1.0 <= took < 3.0  # two windows of half a second, not the 13 s of the drip
    kept = _part(tmp_path)
    assert 0 < len(kept) < len(BODY) and kept == BODY[: len(kept)]  # kept, for a resume
    assert host.ranges[0] is None and host.ranges[1] is not None

    drip.slow = False  # the next run, on a better day
    async with Host(drip) as host:
        assert await _fetch(host, tmp_path, retries=1, **FLOOR) == "video.mp4"
    assert host.ranges == [f"bytes={len(kept)}-"]
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]
    assert (tmp_path / "video.mp4").read_bytes() == BODY


async def test_a_body_that_stops_coming_is_cut_after_low_speed_time(tmp_path: Path) -> None:
    async with Host(Dripping(stall_after=1000)) as host:
        started = time.monotonic()
        with pytest.raises(TransferError, match=r"^gave up after 1 attempts: too slow: 0 B/s"):
            # The read timeout alone would wait 5 s.
            await _fetch(host, tmp_path, retries=1, read_timeout=5.0, **FLOOR)
        assert time.monotonic() - started < 2.0
    assert _part(tmp_path) == BODY[:1000]


async def test_small_ranges_slow_to_come_are_cut_like_one_drip(tmp_path: Path) -> None:
    # Each answer is quick once it begins, but 100 bytes every 0.1 s is 1,000 B/s: under the
    # floor, though no single answer lasts long enough to be judged on its own.
    origin = Origin(BODY, cut=100, cap=100, pause=0.1)
    async with Host(origin) as host:
        with pytest.raises(TransferError, match=r"^gave up after 2 attempts: too slow: \d+ B/s"):
            await _fetch(host, tmp_path, retries=2, low_speed_limit=2048, low_speed_time=0.5)
    kept = _part(tmp_path)
    assert 100 < len(kept) < 3000 and kept == BODY[: len(kept)]
    async with Host(Origin(BODY)) as host:  # a later run takes the rest
        assert await _fetch(host, tmp_path, retries=1) == "video.mp4"
    assert host.ranges == [f"bytes={len(kept)}-"]
    assert (tmp_path / "video.mp4").read_bytes() == BODY


@pytest.mark.parametrize("limit", [0, 1024])
async def test_low_speed_limit_zero_lets_a_slow_body_finish(tmp_path: Path, limit: int) -> None:
    drip = Dripping(piece=1024, pause=0.1)  # about 0.8 s for the whole file
    async with Host(drip) as host:
        if limit:
            with pytest.raises(TransferError, match="too slow"):
                await _fetch(host, tmp_path, 1, low_speed_limit=100_000, low_speed_time=0.3)
        else:
            assert await _fetch(host, tmp_path, 1, low_speed_limit=0, low_speed_time=0.3)
            assert (tmp_path / "video.mp4").read_bytes() == BODY


# -- API answers ------------------------------------------------------------------------------


def _api(**answer: Any) -> Host:
    async def respond(request: web.Request, count: int) -> web.StreamResponse:
        await request.read()
        return await send(request, 200, {"Content-Type": "application/json"}, ANSWER, **answer)

    return Host(respond)


async def _call(host: Host, **http: Any) -> dict[str, Any]:
    async with client(**http) as session:
        doc: dict[str, Any] = await session.call_api(
            PROFILE, host.url("/api"), parse=lambda d: d, headers={}
        )
    return doc


async def test_a_dripping_api_answer_is_cut_and_retried(tmp_path: Path) -> None:
    async with _api(drip=(16, 0.1)) as host:
        with pytest.raises(ApiError, match=r"giving up after 2 attempts: too slow: \d+ B/s"):
            await _call(host, retries=2, **FLOOR)
    assert len(host.seen) == 2
    async with _api() as host:  # at full speed the same answer is read
        assert (await _call(host, retries=1, **FLOOR))["data"]["list"][39] == {"id": 39}


async def test_an_api_answer_that_stops_coming_is_cut(tmp_path: Path) -> None:
    async with _api(promised=len(ANSWER) + 100, then=_hang) as host:
        started = time.monotonic()
        with pytest.raises(ApiError, match=r"too slow: 0 B/s over 0\.5 s"):
            await _call(host, retries=1, read_timeout=5.0, **FLOOR)
        assert time.monotonic() - started < 2.0


async def test_an_api_answer_larger_than_max_response_bytes_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    async with _api(promised=50_000_000, then=_hang) as host:
        with pytest.raises(ApiError) as failed:
            await _call(host, max_response_bytes=1000)
    assert str(failed.value) == "the API answer is larger than http.max_response_bytes (1000)"
    assert len(host.seen) == 1  # not retried: the same answer would come again


async def test_an_endless_api_answer_is_read_no_further_than_max_response_bytes(
    tmp_path: Path,
) -> None:
    sent = 0

    async def endless(request: web.Request, count: int) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        block = b"<p>" + b"x" * 65_533
        try:
            while sent < 1 << 30:
                await response.write(block)
                sent += len(block)
        except ConnectionError:
            pass
        return response

    cap = 1 << 20
    async with Host(endless) as host:
        with pytest.raises(ApiError, match=rf"larger than http.max_response_bytes \({cap}\)"):
            await _call(host, max_response_bytes=cap)
    assert len(host.seen) == 1
    assert sent < 64 * cap  # what the sockets' buffers took, not the gigabyte on offer


async def test_a_listing_answer_too_large_stops_that_source_with_one_line(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=20, chanjing_tasks=5))
    huge = standin.faults.add(
        Fault("bad_json", path="/videoTaskHistory", page=2, times=-1, value="x" * 300_000)
    )
    cfg = config_dict(standin)
    cfg["http"]["max_response_bytes"] = 200_000
    result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")
    assert result.code == 3, result.output
    assert huge.fired == 1
    said = "faceswap: cannot list: the API answer is larger than http.max_response_bytes (200000)"
    assert said in result.output


# -- redirects off the web --------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["file:///etc/passwd", "ftp://example.com/v.mp4", "data:text/html,hi", "javascript:alert(1)"],
)
async def test_a_redirect_to_a_non_http_url_fails_the_file_at_once(
    tmp_path: Path, target: str
) -> None:
    async def redirect(request: web.Request, count: int) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": target})

    async with Host(redirect) as host:
        started = time.monotonic()
        with pytest.raises(TransferError) as failed:
            await _fetch(host, tmp_path, retries=4)
        assert time.monotonic() - started < 1.0
    scheme = target.split(":")[0]
    assert str(failed.value) == f"redirected to a non-http URL ({scheme}:)"
    assert len(host.seen) == 1
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


async def test_a_run_fails_a_redirect_to_a_file_url_and_the_next_run_archives_it(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin: StandIn = await make_standin(
        DatasetSpec(vth_tasks=0, chanjing_tasks=3, succeeded_share=1.0)
    )
    video = "/media/lip-sync/*.mp4"
    moved = standin.faults.add(Fault("redirect", path=video, value="file:///etc/passwd", times=-1))
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    first = await run_cli("run", "-c", config, "--no-progress")
    assert first.code == 1, first.output
    assert moved.fired == 3  # once per video: none was tried again
    assert "video: redirected to a non-http URL (file:)" in first.output
    standin.faults.clear()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert_archive_exact(tmp_path / "archive", standin, ("chanjing",))


# -- the run's own limit ----------------------------------------------------------------------

FOUR_TASKS = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=4,
    succeeded_share=1.0,
    media_min_bytes=20_000,
    media_max_bytes=20_001,
    chanjing_videos=0,
    chanjing_avatars=0,
    ai_creations=0,
    templates=0,
)


async def test_a_transfer_held_back_by_bandwidth_limit_is_not_cut_as_too_slow(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    # Four downloads share 30 kB/s: each gets about 8 kB/s, under the 20 kB/s floor. That
    # pace is the run's own doing, not the host's; the host itself is fast.
    standin = await make_standin(FOUR_TASKS)
    http = {"retries": 1, "low_speed_limit": 20_000, "low_speed_time": 0.5}
    cfg = config_dict(standin, only="chanjing", bandwidth_limit=30_000)
    cfg["http"].update(http)
    result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")
    assert result.code == 0, result.output
    assert "too slow" not in result.output
    assert_archive_exact(tmp_path / "archive", standin, ("chanjing",))
