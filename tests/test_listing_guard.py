"""A listing that never ends is stopped: no task new to the run in ten pages, exit 3.

Pages that alternate A, B, A, B, a Chanjing list announcing a billion pages of the same tasks,
and one without `page_info` are each stopped with a warning naming the source and the page;
what was listed is archived, and the source counts as not listed to its end. A long rerun of
tasks that are all archived already goes on to its end: "new" means new to this run.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from archiver.pipeline.guard import PAGES_WITHOUT_NEW
from archiver.standin import DatasetSpec, StandIn
from tests.conftest import StandInFactory
from tests.pageapi import PageApi, chanjing_page, source_config, vth_page
from tests.support import config_dict, run_cli, task_ids, write_config

SPEC = DatasetSpec(vth_tasks=20, chanjing_tasks=20, templates=2)


def _config(tmp_path: Path, standin: StandIn, name: str, source: dict[str, Any]) -> Path:
    cfg = config_dict(standin, only="faceswap")
    cfg["sources"] = {name: source}
    return write_config(tmp_path, cfg)


def _report(tmp_path: Path) -> dict[str, Any]:
    runs = sorted((tmp_path / "archive" / ".archiver" / "runs").glob("*.json"))
    report: dict[str, Any] = json.loads(runs[-1].read_text())
    return report


def _source_state(tmp_path: Path, name: str) -> tuple[str | None, int]:
    db = sqlite3.connect(tmp_path / "archive" / "manifest.sqlite3")
    try:
        row = db.execute(
            "SELECT last_full_listing, last_run_clean FROM source_state WHERE source = ?", (name,)
        ).fetchone()
    finally:
        db.close()
    return row[0], row[1]


def _succeeded(records: list[Any], state_key: str, value: int) -> set[str]:
    return {str(r["id"]) for r in records if r.get(state_key) == value}


async def _assert_stopped(
    tmp_path: Path, config: Path, api: PageApi, name: str, expected: set[str]
) -> None:
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 3, result.output
    stop = 1 + PAGES_WITHOUT_NEW  # page 1 brought new tasks, the next ten none
    warning = f"WARNING {name}: listing stopped at page {stop}: no task new to this run"
    assert warning in result.output
    assert "LISTING FAILED" in result.output  # the summary says so too
    # A few pages may be asked for ahead of the one that stopped it, no more.
    assert stop <= max(api.pages) <= stop + 4
    assert task_ids(tmp_path / "archive", name) == expected
    source = _report(tmp_path)["sources"][name]
    assert "no task new to this run" in source["listing_error"]
    assert source["listed_to_end"] is False
    # Not clean, not listed to its end: the next run lists it all, not incrementally.
    assert _source_state(tmp_path, name) == (None, 0)


async def test_pages_that_alternate_are_stopped(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    records = standin.dataset.vth_tasks()
    first, second = records[:10], records[10:20]
    async with PageApi(lambda page, size: vth_page(first if page % 2 else second)) as api:
        config = _config(tmp_path, standin, "faceswap", source_config(api, "faceswap"))
        # Page 2 brings the B tasks: the stop comes one page later than for one repeated page.
        result_pages = PAGES_WITHOUT_NEW + 2
        result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 3, result.output
    assert f"faceswap: listing stopped at page {result_pages}: no task new" in result.output
    assert result_pages <= max(api.pages) <= result_pages + 1
    assert task_ids(tmp_path / "archive", "faceswap") == _succeeded(records[:20], "state", 30)
    assert _source_state(tmp_path, "faceswap") == (None, 0)


async def test_a_billion_pages_of_the_same_tasks_are_stopped(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    records = standin.dataset.chanjing_tasks()[:10]
    answer = chanjing_page(records, total_page=1_000_000_000)
    async with PageApi(lambda page, size: answer) as api:
        source = source_config(api, "chanjing", qps=1000)
        config = _config(tmp_path, standin, "chanjing", source)
        dry = await run_cli("run", "-c", config, "--no-progress", "--dry-run")
        assert dry.code == 3, dry.output  # without a manifest too
        assert f"chanjing: listing stopped at page {1 + PAGES_WITHOUT_NEW}" in dry.output
        api.pages.clear()
        await _assert_stopped(tmp_path, config, api, "chanjing", _succeeded(records, "status", 20))


async def test_the_same_tasks_without_page_info_are_stopped(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    records = standin.dataset.chanjing_tasks()[:10]
    async with PageApi(lambda page, size: chanjing_page(records)) as api:
        source = source_config(api, "chanjing", qps=1000)
        config = _config(tmp_path, standin, "chanjing", source)
        await _assert_stopped(tmp_path, config, api, "chanjing", _succeeded(records, "status", 20))


async def test_pages_of_unfinished_tasks_are_new_tasks_too(tmp_path: Path) -> None:
    # Forty pages of failed tasks, each a task never listed before, then the end.
    def answer(page: int, size: int) -> dict[str, Any]:
        if page > 40:
            return vth_page([])
        return vth_page([{"id": page * 100 + i, "state": 2} for i in range(size)])

    async with PageApi(answer) as api:
        cfg = {"archive_dir": "archive", "sources": {"faceswap": source_config(api, "faceswap")}}
        result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")
    assert result.code == 0, result.output
    assert max(api.pages) == 41
    assert _report(tmp_path)["sources"]["faceswap"]["listed"] == 400


async def test_a_long_rerun_of_archived_tasks_goes_to_its_end(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    # 120 pages, every task archived by the first run: all known, none new to the archive.
    standin = await make_standin(
        DatasetSpec(vth_tasks=120, chanjing_tasks=0, templates=2, media_max_bytes=2000)
    )
    config = write_config(tmp_path, config_dict(standin, only="faceswap", vth={"page_size": 1}))
    first = await run_cli("run", "-c", config, "--no-progress")
    assert first.code == 0, first.output
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert "listing stopped" not in again.output
    assert len(standin.stats.requests_to("/videoTaskHistory")) == 121  # to the empty page
    assert standin.stats.media_requests == []
    source = _report(tmp_path)["sources"]["faceswap"]
    assert source["listed_to_end"] is True
    assert source["already_archived"] == len(standin.dataset.succeeded_vth())


async def test_a_source_keeps_its_own_stop_conditions(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    # The same full page again and again: video_task_history's own check stops at page 2,
    # long before the guard would.
    standin = await make_standin(SPEC)
    records = standin.dataset.vth_tasks()[:10]
    async with PageApi(lambda page, size: vth_page(records)) as api:
        config = _config(tmp_path, standin, "faceswap", source_config(api, "faceswap"))
        result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 3, result.output
    assert "faceswap: cannot list: page 2 repeats page 1" in result.output
    assert max(api.pages) <= 3
    assert task_ids(tmp_path / "archive", "faceswap") == _succeeded(records, "state", 30)


async def test_a_list_without_page_info_is_read_page_by_page_to_a_short_page(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    records = standin.dataset.chanjing_tasks()[:20] + standin.dataset.chanjing_tasks()[:5]
    records = [{**r, "id": f"{r['id']}-{n}"} for n, r in enumerate(records)]

    def page(number: int, size: int) -> dict[str, Any]:
        return chanjing_page(records[(number - 1) * size : number * size])

    async with PageApi(page) as api:
        config = _config(tmp_path, standin, "chanjing", source_config(api, "chanjing", qps=1000))
        result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert api.pages == [1, 2, 3]  # one at a time, none after the short page
    assert task_ids(tmp_path / "archive", "chanjing") == _succeeded(records, "status", 20)
    assert _report(tmp_path)["sources"]["chanjing"]["listed_to_end"] is True
