"""kill -9 during multipart uploads: the next run continues them, and leaves none behind.

A real `python -m archiver run` child archives large files (several parts each) into the
loopback bucket, slowed by `bandwidth_limit` so that it is killed with SIGKILL while uploads
are in progress with parts in the store. The next run must end with the bucket byte-exact,
no multipart upload left, and the media host asked for at most 1.3 times the archive's bytes
over both runs: the parts in the store are not fetched again.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from archiver.standin import DatasetSpec
from tests.bucket import Bucket, assert_bucket_exact
from tests.conftest import StandInFactory
from tests.support import config_dict, run_child, run_cli, spawn_cli, write_config

MiB = 1024**2
SPEC = DatasetSpec(
    vth_tasks=3,
    chanjing_tasks=3,
    templates=1,
    seed=5,
    media_min_bytes=12 * MiB,
    media_max_bytes=20 * MiB,
)


def _uploaded_parts(bucket: Bucket) -> int:
    """Parts in the store of the uploads in progress."""
    parts = 0
    for upload in bucket.uploads():
        try:
            answer = bucket.client.list_parts(
                Bucket=bucket.name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        except bucket.client.exceptions.NoSuchUpload:
            continue  # completed meanwhile
        parts += len(answer.get("Parts", ()))
    return parts


async def test_kill_9_mid_upload_then_a_run_resumes_with_no_orphan(
    make_standin: StandInFactory, bucket: Bucket, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    settings = config_dict(standin, **bucket.s3_config(part_size=5 * MiB), bandwidth_limit=40 * MiB)
    config = write_config(tmp_path, settings)
    child = await spawn_cli("run", "-c", config, output=tmp_path / "killed.txt")
    try:
        async with asyncio.timeout(60):
            while _uploaded_parts(bucket) < 3:
                assert child.returncode is None, (tmp_path / "killed.txt").read_text()
                await asyncio.sleep(0.05)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    records = list((tmp_path / "state" / ".archiver" / "uploads").glob("*.json"))
    assert records, "the killed run recorded its uploads"
    in_store = sum(p["size"] for r in records for p in json.loads(r.read_bytes())["parts"])
    assert in_store > 0
    assert bucket.uploads()
    served_before = standin.stats.media_bytes_sent

    final = await run_child("run", "-c", config, output=tmp_path / "final.txt", timeout=120)
    assert final.code == 0, final.output
    assert_bucket_exact(bucket, "videos", standin)  # no upload left in progress either
    assert not list((tmp_path / "state" / ".archiver" / "uploads").glob("*.json"))
    archived = sum(
        size
        for key, size in bucket.objects("videos/").items()
        if key.rsplit("/", 1)[-1].split(".")[0] in ("video", "cover", "thumb", "preview")
    )
    assert standin.stats.media_bytes_sent <= 1.3 * archived, (
        standin.stats.media_bytes_sent,
        archived,
    )
    # The parts in the store were not fetched again: the last run asked only for the rest.
    assert standin.stats.media_bytes_sent - served_before <= archived - in_store


async def test_status_counts_the_uploads_a_killed_run_left(
    make_standin: StandInFactory, bucket: Bucket, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    settings = config_dict(standin, **bucket.s3_config(part_size=5 * MiB), bandwidth_limit=20 * MiB)
    config = write_config(tmp_path, settings)
    child = await spawn_cli("run", "-c", config, output=tmp_path / "killed.txt")
    try:
        async with asyncio.timeout(60):
            while _uploaded_parts(bucket) < 1:
                assert child.returncode is None, (tmp_path / "killed.txt").read_text()
                await asyncio.sleep(0.05)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    left = len(bucket.uploads())
    status = await run_cli("status", "-c", config, "--json")
    assert status.code == 0, status.output
    assert json.loads(status.output)["uploads_in_progress"] == left > 0
