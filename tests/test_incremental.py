"""`stop_after_known`: a nightly run reads one page when nothing is new, and never leaves a gap."""

from __future__ import annotations

from pathlib import Path

from archiver.standin import DatasetSpec, Fault
from tests.conftest import StandInFactory
from tests.support import config_dict, run_cli, task_ids, write_config

SPEC = DatasetSpec(vth_tasks=60, chanjing_tasks=0, succeeded_share=1.0, templates=2)


def incremental_config(tmp_path: Path, standin: object, **vth: object) -> Path:
    settings = {"page_size": 10, "stop_after_known": 5, **vth}
    return write_config(tmp_path, config_dict(standin, only="faceswap", vth=settings))  # type: ignore[arg-type]


def pages_read(standin: object) -> list[int]:
    return [r.body["page"] for r in standin.stats.requests_to("/videoTaskHistory")]  # type: ignore[attr-defined]


async def test_nothing_new_reads_one_page(make_standin: StandInFactory, tmp_path: Path) -> None:
    standin = await make_standin(SPEC)
    config = incremental_config(tmp_path, standin)
    assert (await run_cli("run", "-c", config)).code == 0
    assert max(pages_read(standin)) >= 6  # the first run lists everything
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert max(pages_read(standin)) <= 2  # page 1, and at most the page fetched ahead
    assert standin.stats.media_bytes_sent == 0


async def test_new_tasks_are_read_until_enough_known_ones(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = incremental_config(tmp_path, standin)
    assert (await run_cli("run", "-c", config)).code == 0
    added = [standin.dataset.add_vth_task() for _ in range(12)]
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert {str(t["id"]) for t in added} <= task_ids(tmp_path / "archive", "faceswap")
    assert max(pages_read(standin)) <= 3


async def test_a_failed_run_then_incremental_runs_leave_no_gap(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = incremental_config(tmp_path, standin)
    # The first run loses page 4 to a dead API: that source is unclean.
    standin.faults.add(Fault("http_status", path="/videoTaskHistory", page=4, value=503, times=-1))
    assert (await run_cli("run", "-c", config)).code == 3
    standin.faults.clear()
    for _ in range(2):
        standin.dataset.add_vth_task()
        assert (await run_cli("run", "-c", config)).code == 0
    expected = {str(r["id"]) for r in standin.dataset.succeeded_vth()}
    assert task_ids(tmp_path / "archive", "faceswap") == expected


async def test_a_failed_download_deep_in_the_list_is_retried(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = incremental_config(tmp_path, standin)
    oldest = standin.dataset.succeeded_vth()[-1]
    standin.faults.add(
        Fault("http_status", path=standin.dataset.media_path(oldest["origin"]), value=404, times=1)
    )
    assert (await run_cli("run", "-c", config)).code == 1
    assert (await run_cli("run", "-c", config)).code == 0
    assert str(oldest["id"]) in task_ids(tmp_path / "archive", "faceswap")


async def test_full_forces_a_whole_listing_and_full_every_days_bounds_it(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = incremental_config(tmp_path, standin)
    assert (await run_cli("run", "-c", config)).code == 0
    standin.stats.reset()
    assert (await run_cli("run", "-c", config, "--full")).code == 0
    assert max(pages_read(standin)) >= 6
    always_full = incremental_config(tmp_path, standin, full_every_days=0)
    standin.stats.reset()
    assert (await run_cli("run", "-c", always_full)).code == 0
    assert max(pages_read(standin)) >= 6
