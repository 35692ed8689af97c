"""`archiver status`, run reports and log options: what a person reads after a cron run."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archiver.standin import Fault, StandIn
from archiver.store.lock import ArchiveLock
from tests.support import config_dict, run_cli, write_config


async def test_status_matches_the_manifest(standin: StandIn, tmp_path: Path) -> None:
    standin.faults.add(Fault("http_status", path="/media/*.jpg", value=404, times=2))
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    assert (await run_cli("run", "-c", config)).code == 1
    result = await run_cli("status", "-c", config, "--json")
    assert result.code == 0
    status = json.loads(result.output)
    db = sqlite3.connect(tmp_path / "archive" / "manifest.sqlite3")
    archived = db.execute(
        "SELECT count(*) FROM items WHERE state = 'archived' AND kind = 'task'"
    ).fetchone()[0]
    failed = db.execute("SELECT count(*) FROM items WHERE state = 'failed'").fetchone()[0]
    files, size = db.execute("SELECT count(*), sum(bytes) FROM files").fetchone()
    chanjing = status["sources"]["chanjing"]
    assert chanjing["tasks_archived"] == archived > 0
    assert chanjing["failed"] == failed == 2
    assert chanjing["files"] == files and chanjing["bytes"] == size == status["bytes"]
    assert all("HTTP 404" in f["error"] for f in chanjing["failures"])
    run = status["runs"][0]
    assert run["exit_status"] == 1 and run["totals"]["failed"] == 2
    text = await run_cli("status", "-c", config)
    assert "2 failed" in text.output and "HTTP 404" in text.output
    assert "exit 1" in text.output


async def test_status_works_while_a_run_holds_the_archive(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    with ArchiveLock(tmp_path / "archive"):
        result = await run_cli("status", "-c", config)
    assert result.code == 0
    assert "faceswap:" in result.output and "chanjing:" in result.output


async def test_status_without_an_archive_says_so(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("status", "-c", config)
    assert result.code == 2
    assert "nothing has been archived yet" in result.output


async def test_every_run_writes_a_report_failed_ones_too(standin: StandIn, tmp_path: Path) -> None:
    standin.faults.add(Fault("http_status", path="/media/*.mp4", value=404, times=1))
    config = write_config(tmp_path, config_dict(standin))
    extra = tmp_path / "latest.json"
    assert (await run_cli("run", "-c", config, "--report", extra)).code == 1
    reports = sorted((tmp_path / "archive" / ".archiver" / "runs").glob("*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report == json.loads(extra.read_text())
    assert report["exit_status"] == 1
    assert report["totals"]["failed"] == 1
    failure = next(f for s in report["sources"].values() for f in s["failures"])
    assert "video: HTTP 404" in failure["reason"]
    for source in report["sources"].values():
        assert {
            "listed",
            "succeeded_upstream",
            "newly_archived",
            "already_archived",
            "failed",
            "bytes",
            "duration",
        } <= set(source)
    assert (await run_cli("run", "-c", config)).code == 0
    assert len(list(reports[0].parent.glob("*.json"))) == 2


async def test_old_reports_are_pruned(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin, keep_reports=2))
    for _ in range(4):
        assert (await run_cli("run", "-c", config)).code == 0
    assert len(list((tmp_path / "archive" / ".archiver" / "runs").glob("*.json"))) == 2


async def test_json_log_lines(standin: StandIn, tmp_path: Path) -> None:
    standin.faults.add(Fault("http_status", path="/media/*.jpg", value=404, times=1))
    config = write_config(tmp_path, config_dict(standin))
    log_file = tmp_path / "log.jsonl"
    result = await run_cli("run", "-c", config, "--log-format", "json", "--log-file", log_file)
    assert result.code == 1
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert entries
    assert all({"time", "level", "message"} <= set(e) for e in entries)
    assert any(e["level"] == "warning" and "HTTP 404" in e["message"] for e in entries)


async def test_status_names_the_source_that_could_not_be_listed_and_why(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin, vth={"token": "a-revoked-token"}))
    run = await run_cli("run", "-c", config)
    assert run.code == 3
    text = await run_cli("status", "-c", config)
    assert text.code == 0
    lines = text.output.splitlines()
    faceswap = lines.index(next(line for line in lines if line.startswith("faceswap:")))
    assert lines[faceswap + 1].startswith("  NOT LISTED by the last run: ")
    assert "credentials rejected" in lines[faceswap + 1]
    assert any(
        line.startswith("    faceswap: not listed: ") and "credentials rejected" in line
        for line in lines
    )
    assert "a-revoked-token" not in text.output
    status = json.loads((await run_cli("status", "-c", config, "--json")).output)
    assert "credentials rejected" in status["sources"]["faceswap"]["listing_error"]
    assert status["sources"]["chanjing"]["listing_error"] is None
    assert "credentials rejected" in status["runs"][0]["listing_errors"]["faceswap"]
    assert status["runs"][0]["exit_status"] == 3


async def test_templates_are_counted_only_for_a_source_that_has_them(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    lines = (await run_cli("status", "-c", config)).output.splitlines()
    chanjing = next(line for line in lines if line.startswith("chanjing:"))
    faceswap = next(line for line in lines if line.startswith("faceswap:"))
    assert "template" not in chanjing
    assert re.match(r"faceswap: \d+ tasks and 6 templates archived", faceswap)


async def test_json_log_times_are_utc_with_a_zone(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    log_file = tmp_path / "log.jsonl"
    before = datetime.now(UTC) - timedelta(seconds=1)
    result = await run_cli(
        "run", "-c", config, "-v", "--log-format", "json", "--log-file", log_file
    )
    assert result.code == 0
    after = datetime.now(UTC) + timedelta(seconds=1)
    times = [json.loads(line)["time"] for line in log_file.read_text().splitlines()]
    assert times
    for stamp in times:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
        assert before <= datetime.fromisoformat(stamp.replace("Z", "+00:00")) <= after
