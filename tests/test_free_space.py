"""`min_free_space`: no download starts or goes on below it, and the run says so in one line.

The tests do not fill a disk: they read the free space of the temporary folder's file system
and set `min_free_space` a margin away from it, then move the free space across that line with
a ballast file (allocated, not written: instant). The margins are hundreds of MiB, so the other
processes writing to the same disk do not move the line by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from pathlib import Path

import pytest
from aiohttp import web

from archiver.errors import DiskSpaceLow
from archiver.net.download import download_file
from archiver.standin import DatasetSpec, Fault
from archiver.store.freespace import FreeSpace
from tests.conftest import StandInFactory
from tests.loopback import RANGE, Host, client, send
from tests.support import (
    assert_archive_exact,
    config_dict,
    manifest_problems,
    run_cli,
    write_config,
)

MiB = 1 << 20
SMALL = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=6,
    succeeded_share=1.0,
    media_min_bytes=2_000,
    media_max_bytes=20_000,
)


def _free(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def _allocate(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        os.posix_fallocate(out.fileno(), 0, size)


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if " ERROR " in line]


async def test_a_disk_short_at_the_start_stops_the_run_before_any_download(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SMALL)
    archive = tmp_path / "archive"
    archive.mkdir()
    minimum = _free(tmp_path) + (1 << 40)  # a TiB more than there is
    config = write_config(tmp_path, config_dict(standin, only="chanjing", min_free_space=minimum))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 1, result.output
    [error] = _errors(result.output)
    assert error.endswith(
        f" free on {archive} (min_free_space is {minimum / 1024**3:.1f} GiB); stopped"
    )
    assert " ERROR only " in error
    assert standin.stats.media_requests == []
    assert manifest_problems(archive) == []
    # With room again, nothing is missing.
    config = write_config(tmp_path, config_dict(standin, only="chanjing", min_free_space=0))
    assert (await run_cli("run", "-c", config, "--no-progress")).code == 0
    assert_archive_exact(archive, standin, ("chanjing",))


async def test_a_short_disk_first_loses_the_runs_own_part_files_largest_first(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SMALL)
    archive = tmp_path / "archive"
    big = archive / "chanjing/2024/01/old-1/video.part"
    small = archive / "chanjing/2024/01/old-2/video.part"
    _allocate(big, 512 * MiB)
    big.with_name("video.part.json").write_text('{"validator": "\\"x\\""}')
    _allocate(small, 16 * MiB)
    small.with_name("video.part.json").write_text('{"validator": "\\"y\\""}')
    # Not the run's own partial downloads: never deleted, whatever their name.
    others = [archive / ".archiver/keep.part", archive / "notes.part", tmp_path / "outside.part"]
    for other in others:
        _allocate(other, 32 * MiB)
    link = archive / "chanjing/linked.part"
    link.symlink_to(tmp_path / "outside.part")
    minimum = _free(tmp_path) + 256 * MiB  # deleting the 512 MiB part is enough
    config = write_config(tmp_path, config_dict(standin, only="chanjing", min_free_space=minimum))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert f"deleted the partial download {big} (512.0 MiB)" in result.output
    assert not big.exists() and not big.with_name("video.part.json").exists()
    assert small.stat().st_size == 16 * MiB and small.with_name("video.part.json").exists()
    assert all(other.stat().st_size == 32 * MiB for other in others)
    assert link.is_symlink()
    for leftover in (small, small.with_name("video.part.json"), link, *others[:2]):
        leftover.unlink()
    assert_archive_exact(archive, standin, ("chanjing",))


def test_room_is_never_made_outside_the_archive(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    _allocate(outside / "2024/01/x/video.part", 4 * MiB)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "chanjing").symlink_to(outside, target_is_directory=True)
    (archive / "faceswap").mkdir()
    (archive / "faceswap/video.part").symlink_to(outside / "2024/01/x/video.part")
    space = FreeSpace(str(archive), _free(tmp_path) + (1 << 40))
    with pytest.raises(DiskSpaceLow, match=rf"free on {archive} \(min_free_space is "):
        space.make_room(["chanjing", "faceswap"])
    assert (outside / "2024/01/x/video.part").stat().st_size == 4 * MiB
    assert (archive / "faceswap/video.part").is_symlink()


async def test_a_disk_that_fills_during_a_run_stops_it_and_the_next_run_finishes(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SMALL)
    # Each file takes a moment, so the test can fill the disk while the run goes on.
    standin.faults.add(Fault("slow", path="/media/*", times=-1, value=0.15))
    archive = tmp_path / "archive"
    minimum = _free(tmp_path) - 256 * MiB
    cfg = config_dict(standin, only="chanjing", min_free_space=minimum, concurrency=1)
    config = write_config(tmp_path, cfg)
    ballast = tmp_path / "ballast"
    run = asyncio.create_task(run_cli("run", "-c", config, "--no-progress"))
    while len(standin.stats.media_requests) < 5:
        await asyncio.sleep(0.01)
    _allocate(ballast, 512 * MiB)  # the disk fills up while the fifth file is on its way
    result = await run
    assert result.code == 1, result.output
    [error] = _errors(result.output)
    assert error.endswith(
        f" free on {archive} (min_free_space is {minimum / 1024**3:.1f} GiB); stopped"
    )
    assert len(standin.stats.media_requests) <= 6  # the file in flight, no other started
    assert manifest_problems(archive) == []
    archived = list(archive.rglob("metadata.json"))
    assert 2 <= len(archived) < 6  # what finished before the stop is recorded

    ballast.unlink()
    standin.faults.clear()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert_archive_exact(archive, standin, ("chanjing",))


async def test_a_download_stops_mid_file_when_the_disk_fills_and_resumes_later(
    tmp_path: Path,
) -> None:
    body = random.Random(30).randbytes(4 * MiB)
    ballast = tmp_path / "ballast"
    folder = tmp_path / "archive/item"

    async def serve(request: web.Request, count: int) -> web.StreamResponse:
        headers = {"ETag": '"f1"', "Content-Type": "video/mp4"}
        asked = RANGE.fullmatch(request.headers.get("Range", ""))
        if asked:
            start = int(asked.group(1))
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            return await send(request, 206, headers, body[start:])
        response = web.StreamResponse(headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: 2 * MiB])
        await asyncio.sleep(0.3)  # the client writes what it has
        _allocate(ballast, 512 * MiB)
        with contextlib.suppress(ConnectionError):
            await response.write(body[2 * MiB :])
        return response

    folder.mkdir(parents=True)
    space = FreeSpace(str(tmp_path / "archive"), _free(tmp_path) - 256 * MiB)
    async with Host(serve) as host, client() as http:
        with pytest.raises(DiskSpaceLow, match=r"^only .* free on .*archive \(min_free_space"):
            await download_file(
                http, "video", host.url(), folder, "video", max_bytes=1 << 30, space=space
            )
        kept = (folder / "video.part").read_bytes()
        assert 0 < len(kept) <= 3 * MiB and kept == body[: len(kept)]
        assert (folder / "video.part.json").exists()
        assert not (folder / "video.mp4").exists()

        ballast.unlink()
        fetched = await download_file(
            http, "video", host.url(), folder, "video", max_bytes=1 << 30, space=space
        )
    assert host.ranges == [None, f"bytes={len(kept)}-"]
    assert fetched.bytes == len(body)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"video.mp4": body}
