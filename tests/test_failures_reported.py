"""Failures that are reported, not survived: the run goes on and the rest is archived.

Media that stays 404 or 403 (S3's expired URL included) fails its task with the reason, exit 1,
and the next run tries it again with the URL the listing gives then. A rejected credential
stops its source with one clear line naming it and the code, exit 3, and the other source is
archived all the same.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from archiver.standin import Fault, StandIn
from tests.support import (
    assert_archive_exact,
    config_dict,
    expected_items,
    run_cli,
    sidecars,
    write_config,
)

VTH = "/videoTaskHistory"
LIST = "/open/v1/video_lip_sync/list"
TRACE_ID = re.compile(r"trace_id [0-9a-f]{32}")


def _last_report(archive: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        sorted((archive / ".archiver" / "runs").glob("*.json"))[-1].read_text()
    )
    return report


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(Fault("http_status", value=404, times=-1), "HTTP 404", id="404"),
        pytest.param(Fault("http_status", value=403, times=-1), "HTTP 403", id="403"),
        pytest.param(Fault("expired", times=-1), "HTTP 403: Request has expired", id="expired-url"),
    ],
)
async def test_a_file_that_stays_refused_fails_its_task_and_the_next_run_retries_it(
    standin: StandIn, tmp_path: Path, fault: Fault, reason: str
) -> None:
    task = standin.dataset.succeeded_chanjing()[3]
    # A pre-signed URL, as S3 hands them out: its signature is what expires.
    path = standin.dataset.media_path(task["video_url"])
    stale = f"{task['video_url']}?X-Amz-Date=20250101T000000Z&X-Amz-Signature=old"
    standin.dataset.update(task["id"], video_url=stale)
    fault.path = path
    standin.faults.add(fault)
    archive = tmp_path / "archive"
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    # Named in the summary with its reason; everything else is archived.
    line = next(x for x in result.output.splitlines() if f"failed task {task['id']}" in x)
    assert reason in line and "video" in line
    failed = ("chanjing", "task", task["id"])
    assert set(sidecars(archive)) == expected_items(standin, ("faceswap", "chanjing")) - {failed}
    report = _last_report(archive)["sources"]["chanjing"]
    assert report["failed"] == 1 and reason in report["failures"][0]["reason"]
    db = sqlite3.connect(archive / "manifest.sqlite3")
    state, error = db.execute(
        "SELECT state, last_error FROM items WHERE item_id = ?", (task["id"],)
    ).fetchone()
    db.close()
    assert state == "failed" and reason in error

    # The listing now gives a freshly signed URL: the next run fetches that one, never the
    # stale URL it saw before.
    standin.faults.clear()
    fresh = f"{task['video_url']}?X-Amz-Date=20250102T000000Z&X-Amz-Signature=new"
    standin.dataset.update(task["id"], video_url=fresh)
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    asked = [r for r in standin.stats.media_requests if r.path == path]
    assert [r.query for r in asked] == ["X-Amz-Date=20250102T000000Z&X-Amz-Signature=new"]
    assert_archive_exact(archive, standin)


async def test_a_bad_cover_keeps_the_video_and_fails_the_task(
    standin: StandIn, tmp_path: Path
) -> None:
    task = standin.dataset.succeeded_vth()[0]
    standin.faults.add(
        Fault("http_status", path=standin.dataset.media_path(task["covering"]), value=404, times=-1)
    )
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 1
    videos = list((tmp_path / "archive").rglob(f"{task['id']}/video.mp4"))
    assert len(videos) == 1  # kept for the next run, which fetches only the cover
    standin.faults.clear()
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert [r.path for r in standin.stats.media_requests] == [
        standin.dataset.media_path(task["covering"])
    ]
    assert_archive_exact(tmp_path / "archive", standin, ("faceswap",))


def _error_lines(output: str, source: str) -> list[str]:
    return [x for x in output.splitlines() if " ERROR " in x and source in x]


async def _run_rejected(
    standin: StandIn, tmp_path: Path, cfg: dict[str, Any], rejected: str
) -> str:
    config = write_config(tmp_path, cfg)
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 3, result.output
    assert "Traceback" not in result.output
    other = "chanjing" if rejected == "faceswap" else "faceswap"
    assert_archive_exact(tmp_path / "archive", standin, (other,))
    lines = _error_lines(result.output, rejected)
    assert len(lines) == 1, result.output
    assert "credentials rejected" in lines[0]
    return lines[0]


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_faceswap_token_stops_that_source_only(
    standin: StandIn, tmp_path: Path, status: int
) -> None:
    cfg = config_dict(standin)
    if status == 401:
        cfg["sources"]["faceswap"]["token"] = "not-the-token"  # the stand-in answers 401
    else:
        standin.faults.add(Fault("http_status", path=VTH, value=403, times=-1))
    line = await _run_rejected(standin, tmp_path, cfg, "faceswap")
    assert f"HTTP {status}" in line
    assert len(standin.stats.requests_to(VTH)) == 1  # a rejected credential is not retried


async def test_chanjing_10400_after_one_fresh_token_stops_that_source_only(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.faults.add(Fault("api_code", path=LIST, value=10400, times=-1))
    line = await _run_rejected(standin, tmp_path, config_dict(standin), "chanjing")
    assert "10400" in line and TRACE_ID.search(line)
    assert sum(standin.stats.mints.values()) == 2  # the first token, and one fresh one


async def test_a_rejected_ready_chanjing_token_is_not_retried(
    standin: StandIn, tmp_path: Path
) -> None:
    cfg = config_dict(
        standin, chanjing={"app_id": None, "secret_key": None, "access_token": "expired-token"}
    )
    line = await _run_rejected(standin, tmp_path, cfg, "chanjing")
    assert "10400" in line and TRACE_ID.search(line)
    assert sum(standin.stats.mints.values()) == 0
    assert len(standin.stats.requests_to(LIST)) == 1


async def test_a_wrong_chanjing_secret_key_stops_that_source_only(
    standin: StandIn, tmp_path: Path
) -> None:
    cfg = config_dict(standin, chanjing={"secret_key": "not-the-secret"})
    line = await _run_rejected(standin, tmp_path, cfg, "chanjing")
    assert "10400" in line and TRACE_ID.search(line)
