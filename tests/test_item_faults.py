"""Whatever goes wrong with one item or one source, the run ends with its report.

Real faults that root cannot bypass: a folder where a resumable `video.part` should be, a file
where an item's folder should be, and a source with a bug (a source type of the test's own,
plugged in as any new service is, that raises after its first page). Each run must fail only
what the fault touches, write its report, close its row in `runs`, and archive everything else.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import pytest

from archiver.sources import source_types
from archiver.sources.records import ArchiveItem, Page
from archiver.sources.video_task_history import VideoTaskHistory, parse_task
from archiver.standin import StandIn
from archiver.store.paths import item_folder
from tests.support import config_dict, manifest_problems, run_cli, task_ids, write_config


def folder_of(archive: Path, record: dict[str, Any]) -> Path:
    item = parse_task(record)
    assert isinstance(item, ArchiveItem)
    return archive / str(item_folder("faceswap", item, "{year}/{month}/{id}"))


def runs(archive: Path) -> list[tuple[int | None, str | None]]:
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        return db.execute("SELECT exit_status, finished_at FROM runs ORDER BY id").fetchall()
    finally:
        db.close()


def reports(archive: Path) -> list[dict[str, Any]]:
    folder = archive / ".archiver" / "runs"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def assert_ended_well(archive: Path, code: int, count: int) -> None:
    """`count` runs so far, each with its report and a closed row with its exit status."""
    assert [status for status, _ in runs(archive)][-1] == code
    assert all(finished is not None for _, finished in runs(archive))
    assert len(runs(archive)) == count
    assert [r["exit_status"] for r in reports(archive)][-1] == code
    assert len(reports(archive)) == count
    assert manifest_problems(archive) == []


@pytest.mark.parametrize(
    "fault", ["part-is-a-folder", "resumable-part-is-a-folder", "item-folder-is-a-file"]
)
async def test_a_path_fault_fails_its_item_and_every_run_still_reports(
    standin: StandIn, tmp_path: Path, fault: str
) -> None:
    config = write_config(tmp_path, config_dict(standin))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    broken, fine = standin.dataset.add_vth_task(), standin.dataset.add_vth_task()
    folder = folder_of(archive, broken)
    if fault.endswith("part-is-a-folder"):
        (folder / "video.part").mkdir(parents=True)
        (folder / "video.part" / "keep.txt").write_text("whatever is in here stays")
        said = f"{folder}/video.part: Is a directory"
        if fault.startswith("resumable"):  # with the resume state of a real download
            media = standin.dataset.media_file(standin.dataset.media_path(broken["origin"]))
            assert media is not None
            (folder / "video.part.json").write_text(json.dumps({"validator": media.etag}))
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.write_text("a file where the task's folder should be")
        said = f"{folder}: not a folder"

    for attempt in (2, 3):  # every later run, not only the first
        result = await run_cli("run", "-c", config)
        assert result.code == 1, result.output
        assert said in result.output
        assert "Traceback" not in result.output and "unexpected" not in result.output
        assert_ended_well(archive, 1, attempt)
        assert str(fine["id"]) in task_ids(archive, "faceswap")
        assert str(broken["id"]) not in task_ids(archive, "faceswap")
        failures = reports(archive)[-1]["sources"]["faceswap"]["failures"]
        assert [f["id"] for f in failures] == [str(broken["id"])]
    if fault.endswith("part-is-a-folder"):
        assert (folder / "video.part" / "keep.txt").is_file()
    else:
        assert folder.read_text() == "a file where the task's folder should be"


class _BuggySource(VideoTaskHistory):
    """The face-swap source with a bug: after its first page, an error nobody expected."""

    type_name = "video_task_history_with_a_bug"

    async def pages(self) -> AsyncGenerator[Page, None]:
        async for page in super().pages():
            yield page
            raise RuntimeError("a bug met after page 1")


@pytest.fixture
def buggy_source() -> Iterator[str]:
    """The buggy source type, known to the config for this test only."""
    source_types.cache_clear()
    yield _BuggySource.type_name
    source_types.cache_clear()


async def test_an_unexpected_error_in_a_source_still_ends_with_the_report(
    standin: StandIn, tmp_path: Path, buggy_source: str
) -> None:
    config = write_config(tmp_path, config_dict(standin, vth={"type": buggy_source}))
    archive = tmp_path / "archive"
    result = await run_cli("run", "-c", config)
    assert result.code == 3, result.output
    assert "Traceback" not in result.output
    assert_ended_well(archive, 3, 1)
    error = reports(archive)[-1]["sources"]["faceswap"]["listing_error"]
    assert error == "unexpected error: RuntimeError: a bug met after page 1"
    page_one = standin.dataset.page("vth", 1, 10)
    listed = {str(r["id"]) for r in page_one if r.get("state") == 30}
    assert task_ids(archive, "faceswap") == listed
    assert task_ids(archive, "chanjing") == {r["id"] for r in standin.dataset.succeeded_chanjing()}


async def test_the_temporary_files_of_a_killed_write_are_deleted_by_the_next_run(
    standin: StandIn, tmp_path: Path
) -> None:
    # What a run killed in the middle of `atomic_file` leaves: `.<name>.<12 hex>.tmp`. Files of
    # other names (the user's own) are strays for `verify` to name, never deleted.
    config = write_config(tmp_path, config_dict(standin) | {"catalog": True})
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    redone = standin.dataset.add_vth_task()
    folder = folder_of(archive, redone)
    folder.mkdir(parents=True)
    left = [
        folder / ".metadata.json.0123456789ab.tmp",
        archive / "faceswap" / ".SHA256SUMS.00000000ffff.tmp",
        archive / ".index-data.js.abcdefabcdef.tmp",
    ]
    kept = [folder / ".metadata.json.tmp", folder / "notes.0123456789ab.tmp"]
    for path in left + kept:
        path.write_text("half of something")
    second = await run_cli("run", "-c", config)
    assert second.code == 0, second.output
    assert (folder / "metadata.json").is_file()
    assert [p for p in left if p.exists()] == []
    assert [p for p in kept if p.exists()] == kept
