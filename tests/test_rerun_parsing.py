"""A rerun parses a record only where the manifest does not hold it as last listed.

An unchanged, archived task is known by the digest of its record and never parsed; these
tests hold what that must not cost: a record changed into one that cannot be archived is
parsed and rejected, a changed one is archived anew, an unchanged one whose file is gone or
cut short is parsed when it is fetched again, on both services and for every file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archiver.sources.parse import parse_later, parse_task
from archiver.sources.records import ArchiveItem, Rejected, Unfinished, Unparsed
from archiver.sources.video_task_history import TASK_FIELDS
from archiver.standin import DatasetSpec
from tests.conftest import StandInFactory
from tests.support import config_dict, run_cli, sidecars, write_config

SPEC = DatasetSpec(vth_tasks=30, chanjing_tasks=30, succeeded_share=1.0, templates=2)


def _report(archive: Path) -> dict[str, Any]:
    reports = sorted((archive / ".archiver" / "runs").glob("*.json"))
    report: dict[str, Any] = json.loads(reports[-1].read_text())
    return report


def _parse(row: Any) -> ArchiveItem | Unfinished | Rejected:
    return parse_task(row, TASK_FIELDS)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"id": 7, "state": 30}, Unparsed),
        ({"id": 7, "state": 20}, Unfinished),
        ({"id": 7, "state": True}, Rejected),  # a bool is no state, even where 1 would be
        ({"id": 7, "state": "30"}, Rejected),
        ({"id": None, "state": 30}, Rejected),
        ([7, 30], Rejected),
    ],
    ids=["succeeded", "unfinished", "bool-state", "text-state", "no-id", "not-an-object"],
)
def test_only_a_succeeded_task_with_an_id_is_put_off(record: Any, expected: type[object]) -> None:
    listed = parse_later(record, TASK_FIELDS, _parse)
    assert type(listed) is expected
    if isinstance(listed, Unparsed):
        # What the listing gets when it parses it is what the source would have yielded.
        assert listed.parse(listed.record) == _parse(record)
    else:
        assert listed == _parse(record)


@pytest.mark.parametrize("source", ["faceswap", "chanjing"])
async def test_a_record_changed_into_a_bad_one_is_rejected_on_a_rerun(
    make_standin: StandInFactory, tmp_path: Path, source: str
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only=source))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    tasks = (
        standin.dataset.succeeded_vth()
        if source == "faceswap"
        else (standin.dataset.succeeded_chanjing())
    )
    broken, changed = tasks[3], tasks[17]
    url_key = "origin" if source == "faceswap" else "video_url"
    standin.dataset.update(broken["id"], **{url_key: "ftp://example.invalid/x.mp4"})
    standin.dataset.update(changed["id"], title="renamed upstream")
    standin.stats.reset()
    result = await run_cli("run", "-c", config, "--no-progress")
    report = _report(archive)["sources"][source]
    assert [r["id"] for r in report["rejections"]] == [str(broken["id"])], result.output
    assert report["updated"] == 1
    assert report["already_archived"] == len(tasks) - 2
    assert sidecars(archive)[(source, "task", str(changed["id"]))]["record"]["title"] == (
        "renamed upstream"
    )
    assert standin.stats.media_bytes_sent == 0


@pytest.mark.parametrize("damage", ["deleted", "cut-short", "sidecar-deleted"])
@pytest.mark.parametrize("source", ["faceswap", "chanjing"])
async def test_an_unchanged_record_whose_file_is_damaged_is_fetched_again(
    make_standin: StandInFactory, tmp_path: Path, source: str, damage: str
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, config_dict(standin, only=source))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    task = (
        standin.dataset.succeeded_vth()
        if source == "faceswap"
        else standin.dataset.succeeded_chanjing()
    )[11]
    folder = next(
        p.parent
        for p in (archive / source).rglob("metadata.json")
        if p.parent.name == str(task["id"])
    )
    name = "metadata.json" if damage == "sidecar-deleted" else "video.mp4"
    target = folder / name
    original = target.read_bytes()
    if damage == "cut-short":
        target.write_bytes(original[: len(original) // 2])
    else:
        target.unlink()
    standin.stats.reset()
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert target.read_bytes() == original or damage == "sidecar-deleted"
    assert target.is_file()
    fetched = {r.path for r in standin.stats.media_requests}
    assert len(fetched) <= 1  # the damaged file only: its siblings are whole
    assert _report(archive)["sources"][source]["already_archived"] == 29
