"""A run whose bucket lock is taken by another holder, or cannot be renewed, stops: exit 4.

The run goes on in this process (so the lock's renewal can be made as frequent as a test
needs) while media comes slowly from the stand-in; the lock object is then overwritten, or
deleted and made again, by another holder, or the store refuses every renewal. The run must
cancel its job, publish nothing, leave the other holder's lock alone and say so in one line.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import archiver.store.remote as remote
from archiver.standin import Fault, StandIn
from tests.bucket import Bucket
from tests.s3proxy import FaultyStore
from tests.support import config_dict, run_cli, write_config

LOCK = "videos/.archiver/lock"
OTHER = {"holder": "elsewhere pid 1", "state": "another"}


async def _started(standin: StandIn, bucket: Bucket) -> None:
    """Until the run holds the lock and is fetching media."""
    async with asyncio.timeout(30):
        while not (standin.stats.media_requests and LOCK in bucket.objects()):
            await asyncio.sleep(0.02)


def _other_holder(bucket: Bucket, delete_first: bool) -> None:
    if delete_first:
        bucket.client.delete_object(Bucket=bucket.name, Key=LOCK)
    document = {**OTHER, "expires": time.time() + 300}
    bucket.client.put_object(Bucket=bucket.name, Key=LOCK, Body=json.dumps(document).encode())


def _stopped_in_one_line(output: str, bucket: Bucket, *words: str) -> None:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert bucket.name in lines[0], output
    for word in words:
        assert word in lines[0], output


@pytest.mark.parametrize("delete_first", [False, True], ids=["overwritten", "recreated"])
async def test_a_lock_taken_by_another_holder_stops_the_run_with_exit_4(
    standin: StandIn,
    bucket: Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    delete_first: bool,
) -> None:
    monkeypatch.setattr(remote, "RENEW_EVERY", 0.2)
    standin.faults.add(Fault("slow", path="/media/*", times=-1, value=0.3))
    settings = config_dict(standin, **bucket.s3_config(), concurrency=1)
    config = write_config(tmp_path, settings)
    run = asyncio.create_task(run_cli("run", "-c", config, "--no-progress"))
    await _started(standin, bucket)
    _other_holder(bucket, delete_first)
    asked = len(standin.stats.media_requests)
    result = await run
    assert result.code == 4, result.output
    _stopped_in_one_line(result.output, bucket, "elsewhere pid 1")
    # The job stopped at once: far from every file asked for, and nothing published.
    assert len(standin.stats.media_requests) <= asked + 2
    objects = bucket.objects()
    assert "videos/.archiver/manifest.sqlite3" not in objects
    assert not [key for key in objects if key.endswith("/SHA256SUMS")]
    assert json.loads(bucket.get(LOCK))["holder"] == "elsewhere pid 1"
    # The run is recorded as stopped by the lost lock, not by a signal.
    report = json.loads(max((tmp_path / "state" / ".archiver" / "runs").glob("*.json")).read_text())
    assert "elsewhere pid 1" in json.dumps(report)
    assert report["exit_status"] == 4  # the report says what the process did


async def test_renewals_refused_for_the_lock_s_lifetime_stop_the_run_with_exit_4(
    standin: StandIn, bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "RENEW_EVERY", 0.2)
    monkeypatch.setattr(remote, "LOCK_LIFETIME", 1.5)
    standin.faults.add(Fault("slow", path="/media/*", times=-1, value=0.3))
    async with FaultyStore(bucket.endpoint, every=0) as store:
        settings = config_dict(standin, **bucket.s3_config(), concurrency=1)
        settings["s3"]["endpoint_url"] = store.url
        config = write_config(tmp_path, settings)
        run = asyncio.create_task(run_cli("run", "-c", config, "--no-progress"))
        await _started(standin, bucket)
        store.deny = f"/{bucket.name}/{LOCK}"  # every renewal refused from now on
        began = time.monotonic()
        result = await run
    assert result.code == 4, result.output
    # Stopped before the lock could expire and be taken by another run, not long after.
    assert time.monotonic() - began < 10
    lines = [
        line
        for line in result.output.strip().splitlines()
        if "could not renew the lock:" not in line
    ]
    _stopped_in_one_line("\n".join(lines), bucket, "could not renew its lock")
    assert "videos/.archiver/manifest.sqlite3" not in bucket.objects()
