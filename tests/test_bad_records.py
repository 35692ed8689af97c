"""Bad records: each is skipped or archived safely, with a reason; none stops the run.

The services send them in the middle of good pages: records that are not objects, that have no
id or an id that is dangerous as a path, a creation time that is not a number, URLs that are
not http(s), succeeded tasks without media, files larger than `max_file_bytes`. Nothing is
ever written outside `archive_dir`, and no non-http URL is ever fetched.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from archiver.standin import ABSENT, DatasetSpec, StandIn
from tests.conftest import StandInFactory
from tests.support import config_dict, expected_items, run_cli, sidecars, write_config

NOT_OBJECTS: list[Any] = [42, "a task", None, [1, 2], True]
# The archive sits three folders below tmp_path: six `..` from a task folder land in tmp_path.
DANGEROUS_IDS = [
    "..",
    "../../../../../../escaped",
    "../../../../../../../etc",
    "/etc/cron.d/x",
    "a/b",
    "a\\b",
    "c:d",
    "nul\0id",
    ".",
]
NOT_A_TIME: list[Any] = ["yesterday", None, {"at": 1}, "²", "١٢٣", True, float("inf")]


def _files_outside(tmp_path: Path, archive: Path) -> list[Path]:
    """Files under `tmp_path` that the run made outside the archive."""
    allowed = {tmp_path / "config.yaml", tmp_path / "secret.txt"}
    return [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and p not in allowed and archive not in p.parents
    ]


async def test_bad_records_are_skipped_or_archived_safely(standin: StandIn, tmp_path: Path) -> None:
    dataset = standin.dataset
    good = {
        i for (_, kind, i) in expected_items(standin, ("faceswap", "chanjing")) if kind == "task"
    }
    local = tmp_path / "secret.txt"
    local.write_bytes(b"a local file that must never be read into the archive\n")
    template = dict(dataset.succeeded_vth()[0]["videoTemp"])
    for value in NOT_OBJECTS:
        dataset.add_raw("vth", value)
        dataset.add_raw("chanjing", value)
    dataset.add_vth_task(id=ABSENT)
    dataset.add_chanjing_task(id=None)
    dataset.add_vth_task(id="")
    dataset.add_vth_task(id="   ")
    dangerous = [dataset.add_vth_task(id=value) for value in DANGEROUS_IDS]
    dangerous += [dataset.add_chanjing_task(id=value + "-cj") for value in DANGEROUS_IDS]
    undated = [dataset.add_vth_task(createdAt=value) for value in NOT_A_TIME]
    undated += [dataset.add_chanjing_task(create_time=value) for value in NOT_A_TIME]
    dataset.add_vth_task(origin=local.as_uri())
    dataset.add_vth_task(origin="javascript:alert(1)")
    dataset.add_chanjing_task(video_url="file:///etc/passwd")
    dataset.add_vth_task(origin=ABSENT)
    dataset.add_chanjing_task(video_url="")
    bad_cover = dataset.add_vth_task(covering="javascript:alert(document.cookie)")
    bad_preview = dataset.add_chanjing_task(preview_url=local.as_uri())
    odd_template = dataset.add_vth_task(
        videoTemp={**template, "id": "../../../../../templates-escape"}
    )
    dataset.add_vth_task(state="thirty")  # a state that is not a number
    as_text = dataset.add_vth_task(state=" 30")  # a number as its text: that number

    cfg = config_dict(standin, vth={"page_size": 7}, archive_dir="deep/er/archive")
    config = write_config(tmp_path, cfg)
    result = await run_cli("run", "-c", config, "--no-progress")
    # Rejected records are the service's fault and not retriable: not a failure by themselves.
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    archive = tmp_path / "deep" / "er" / "archive"
    assert _files_outside(tmp_path, archive) == []
    for path in archive.rglob("*"):
        assert archive in path.resolve().parents
    docs = sidecars(archive)

    # Every good task, the dangerous ids included, is archived; in a folder of its own.
    kept = [bad_cover, bad_preview, odd_template, as_text]
    good |= {str(r["id"]) for r in dangerous + undated + kept}
    assert {i for (s, k, i) in docs if k == "task"} == good
    folders = [p.parent for p in archive.rglob("metadata.json")]
    assert len(folders) == len(set(folders)) == len(docs)
    for record in undated:
        doc = docs[("faceswap" if "createdAt" in record else "chanjing", "task", str(record["id"]))]
        assert doc["created_at"] is None
        assert doc["record"] == json.loads(json.dumps(record))  # verbatim, as received

    # What cannot be fetched is never fetched, and the sidecar says why it is missing.
    cover = docs[("faceswap", "task", str(bad_cover["id"]))]
    assert set(cover["files"]) == {"video"} and "not http(s)" in cover["missing"]["cover"]
    preview = docs[("chanjing", "task", bad_preview["id"])]
    assert set(preview["files"]) == {"video"} and "not http(s)" in preview["missing"]["preview"]
    leaked = hashlib.sha256(local.read_bytes()).hexdigest()
    assert all(
        hashlib.sha256(p.read_bytes()).hexdigest() != leaked
        for p in archive.rglob("*")
        if p.is_file()
    )
    assert ("faceswap", "template", "../../../../../templates-escape") in docs

    # Each rejection is named, with its reason, in the summary and the report.
    rejected = sum(s for s in _report(archive, "rejected"))
    assert rejected == 2 * len(NOT_OBJECTS) + 4 + 3 + 2 + 1
    summary = "\n".join(x for x in result.output.splitlines() if x.startswith(" "))
    for reason in (
        "record is a int, not an object",
        "record is a list, not an object",
        "record has no usable id",
        "without a usable video URL: origin: URL is not http(s) (file)",
        "without a usable video URL: video_url: URL is not http(s) (file)",
        "without a usable video URL: origin: URL is not http(s) (javascript)",
        "without a usable video URL: origin: no URL given",
        "state is not a number",
    ):
        assert "rejected record" in summary and reason in summary, reason
    db = sqlite3.connect(archive / "manifest.sqlite3")
    assert {s for (s,) in db.execute("SELECT DISTINCT state FROM items")} == {"archived"}
    db.close()

    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0
    assert standin.stats.media_requests == []  # the safe names are found again


def _report(archive: Path, key: str) -> list[int]:
    report = json.loads(sorted((archive / ".archiver" / "runs").glob("*.json"))[-1].read_text())
    return [s[key] for s in report["sources"].values()]


async def test_a_file_larger_than_max_file_bytes_fails_only_its_task(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(
        DatasetSpec(vth_tasks=0, chanjing_tasks=10, media_min_bytes=1000, media_max_bytes=9000)
    )
    limit = 5000
    cfg = config_dict(standin, only="chanjing", max_file_bytes=limit)
    config = write_config(tmp_path, cfg)
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 1, result.output
    assert "max_file_bytes" in result.output
    archive = tmp_path / "archive"
    sizes = {
        r["id"]: [len(standin.dataset.media_bytes(r[k])) for k in ("video_url", "preview_url")]
        for r in standin.dataset.succeeded_chanjing()
    }
    small = {i for i, s in sizes.items() if max(s) <= limit}
    large = set(sizes) - small
    assert small and large
    assert {i for (_, _, i) in sidecars(archive)} == small
    assert all(p.stat().st_size <= limit for p in archive.rglob("*.mp4"))
    assert not list(archive.rglob("*.part"))
    assert sum(_report(archive, "failed")) == len(large)


async def test_a_record_rejected_again_for_the_same_reason_is_no_news(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.dataset.add_vth_task(state="thirty")
    config = write_config(tmp_path, config_dict(standin))
    first = await run_cli("run", "-c", config)
    assert first.code == 0 and "state is not a number: 'thirty'" in first.output, first.output
    # The next night: the same record, rejected for the same reason; nothing else new.
    again = await run_cli("run", "-c", config)
    assert again.code == 0 and again.output == "", again.output
    archive = tmp_path / "archive"
    counts = (sorted(_report(archive, "rejected")), sorted(_report(archive, "rejected_again")))
    assert counts == ([0, 1], [0, 1])
    # A record newly rejected is news, and the summary tells the old one apart.
    standin.dataset.add_vth_task(state=None)
    third = await run_cli("run", "-c", config)
    assert third.code == 0 and "state is not a number: 'None'" in third.output, third.output
    assert "rejected 2 (1 as by the last run)" in third.output
