"""The other Chanjing lists over several runs: incremental listing, resume after a kill, verify.

Synthesized videos stand for the lists read like the lip-sync one; the AI creations, two lists
read side by side, must never leave a gap when a run stops early.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

from archiver.standin import DatasetSpec, StandIn
from tests.conftest import StandInFactory
from tests.support import (
    assert_archive_exact,
    config_dict,
    manifest_problems,
    run_cli,
    sidecars,
    spawn_cli,
    write_config,
)

VIDEOS = DatasetSpec(vth_tasks=0, chanjing_tasks=0, chanjing_videos=40, succeeded_share=1.0)
VIDEO_LIST = "/open/v1/video_list"
AI_LIST = "/open/v1/ai_creation/task/page"


def _config(tmp_path: Path, standin: StandIn, name: str, **top: Any) -> Path:
    """A config of the one Chanjing list `name` (`cjvideo`, `cjavatar`, `cjai`)."""
    settings = top.pop("settings", {})
    cfg = config_dict(standin, only=name, **top)
    cfg["sources"] = {name: {**cfg["sources"][name], **settings}}
    return write_config(tmp_path, cfg)


def _pages(standin: StandIn, path: str) -> list[tuple[int, int | None]]:
    """(page, type) of every request to the list at `path`."""
    return [(r.body["page"], r.body.get("type")) for r in standin.stats.requests_to(path)]


async def test_video_list_incremental_reads_one_page_and_finds_what_is_new(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(VIDEOS)
    incremental = {"page_size": 5, "stop_after_known": 3, "pages_in_flight": 1}
    config = _config(tmp_path, standin, "cjvideo", settings=incremental)
    assert (await run_cli("run", "-c", config)).code == 0
    assert len(_pages(standin, VIDEO_LIST)) == 8  # the first run lists everything

    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    # Page 1 alone (asked again if the last run's requests still fill the rate window).
    assert set(_pages(standin, VIDEO_LIST)) == {(1, None)}
    assert standin.stats.media_bytes_sent == 0

    added = [standin.dataset.add_task("cj_video") for _ in range(7)]
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    # Five new on page 1; two new, then three known on page 2: the listing ends there.
    assert sorted({page for page, _ in _pages(standin, VIDEO_LIST)}) == [1, 2]
    archived = {i for (_, _, i) in sidecars(tmp_path / "archive")}
    assert {video["id"] for video in added} <= archived
    assert_archive_exact(tmp_path / "archive", standin, ("cjvideo",))


async def test_ai_creations_stop_early_only_after_known_work_of_both_kinds(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    spec = DatasetSpec(vth_tasks=0, chanjing_tasks=0, ai_creations=40, succeeded_share=1.0)
    standin = await make_standin(spec)
    incremental = {"page_size": 4, "stop_after_known": 4, "pages_in_flight": 1}
    config = _config(tmp_path, standin, "cjai", settings=incremental)
    assert (await run_cli("run", "-c", config)).code == 0
    # More new videos than a page holds, and no new image: the images' first page is all
    # known, which alone must not end the listing.
    added = [standin.dataset.add_task("cj_ai", type=4) for _ in range(6)]
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    archived = {i for (_, _, i) in sidecars(tmp_path / "archive")}
    assert {creation["unique_id"] for creation in added} <= archived
    read = _pages(standin, AI_LIST)
    # Page 2 of the videos shows known ones after the last new one: the listing stops there,
    # though each list has pages left.
    assert sorted(read) == [(1, 3), (1, 4), (2, 3), (2, 4)]


async def _downloading(archive: Path) -> None:
    """Wait until a video is being received, some of it on disk already."""
    while not any(_size(part) > 200_000 for part in archive.rglob("video.part")):
        await asyncio.sleep(0.02)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # completed and renamed since it was listed
        return 0


async def test_a_killed_run_is_resumed_and_the_archive_verifies(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    spec = DatasetSpec(
        vth_tasks=0,
        chanjing_tasks=0,
        chanjing_videos=4,
        succeeded_share=1.0,
        media_min_bytes=1_500_000,
        media_max_bytes=3_000_000,
    )
    standin = await make_standin(spec)
    archive = tmp_path / "archive"
    slow = _config(tmp_path, standin, "cjvideo", bandwidth_limit=4_000_000)
    child = await spawn_cli("run", "-c", slow, "--no-progress", output=tmp_path / "first.txt")
    await asyncio.wait_for(_downloading(archive), 30)
    os.kill(child.pid, signal.SIGKILL)
    await asyncio.wait_for(child.wait(), 10)
    parts = {p: p.stat().st_size for p in archive.rglob("*.part") if p.stat().st_size}
    assert parts
    assert manifest_problems(archive) == []

    standin.stats.reset()
    config = _config(tmp_path, standin, "cjvideo")
    assert (await run_cli("run", "-c", config)).code == 0
    ranges = {r.header("Range") for r in standin.stats.media_requests}
    for part, size in parts.items():
        assert f"bytes={size}-" in ranges, part
    assert_archive_exact(archive, standin, ("cjvideo",))

    verified = await run_cli("verify", "-c", config)
    assert verified.code == 0, verified.output
    cover = next(archive.rglob("cover.png"))
    cover.write_bytes(cover.read_bytes()[:-1] + b"\x00")
    damaged = await run_cli("verify", "-c", config)
    assert damaged.code == 1
    assert f"cjvideo task {cover.parent.name}: cover.png: content changed" in damaged.output
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert [r.path.rsplit("/", 1)[-1] for r in standin.stats.media_requests] == [
        f"{cover.parent.name}.png"
    ]
    assert (await run_cli("verify", "-c", config)).code == 0
    sums = (archive / "cjvideo" / "SHA256SUMS").read_text()
    assert sums.count("\n") == 2 * len(standin.dataset.succeeded("cj_video")) + _subtitles(archive)


def _subtitles(archive: Path) -> int:
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        (count,) = db.execute("SELECT count(*) FROM files WHERE role = 'subtitles'").fetchone()
    finally:
        db.close()
    return int(count)
