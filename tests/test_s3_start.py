"""A bucket archive that cannot be used stops before anything is listed; one run per prefix."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from archiver.config.settings import BucketSettings
from archiver.errors import ArchiveBusy
from archiver.standin import StandIn
from archiver.store.remote import BucketLock
from tests.bucket import REGION, Bucket, assert_bucket_exact
from tests.s3proxy import FaultyStore
from tests.support import config_dict, run_cli, write_config

T = TypeVar("T")


async def test_a_missing_bucket_is_exit_2_in_one_line_before_any_listing(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    settings = config_dict(standin, **bucket.s3_config())
    settings["archive_dir"] = "s3://no-such-bucket-here/videos"
    result = await run_cli("run", "-c", write_config(tmp_path, settings), "--no-progress")
    assert result.code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "s3://no-such-bucket-here/videos" in lines[0]
    assert "NoSuchBucket" in lines[0] or "404" in lines[0]
    assert standin.stats.api_requests == []
    assert not (tmp_path / "state").exists()


async def test_a_wrong_endpoint_is_exit_2_in_one_line(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = config_dict(standin, **bucket.s3_config())
    settings["s3"]["endpoint_url"] = f"http://127.0.0.1:{port}"
    result = await run_cli("run", "-c", write_config(tmp_path, settings), "--no-progress")
    assert result.code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert bucket.name in result.output
    assert standin.stats.api_requests == []


async def test_a_denied_write_is_exit_2_in_one_line_before_any_listing(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    async with FaultyStore(bucket.endpoint, deny_writes=True) as store:
        settings = config_dict(standin, **bucket.s3_config())
        settings["s3"]["endpoint_url"] = store.url
        result = await run_cli("run", "-c", write_config(tmp_path, settings), "--no-progress")
    assert result.code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"s3://{bucket.name}/videos" in lines[0] and "AccessDenied" in lines[0]
    assert standin.stats.api_requests == []


async def test_a_live_lock_of_another_state_folder_is_exit_4(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    # Another machine's run holds the prefix: its lock object, alive for a while yet.
    other = {"holder": "elsewhere pid 1", "state": "another", "expires": time.time() + 300}
    bucket.client.put_object(
        Bucket=bucket.name, Key="videos/.archiver/lock", Body=json.dumps(other).encode()
    )
    config = write_config(tmp_path, config_dict(standin, **bucket.s3_config()))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 4, result.output
    assert "elsewhere pid 1" in result.output
    assert standin.stats.api_requests == []
    # Once expired, it is taken over.
    other["expires"] = time.time() - 1
    bucket.client.put_object(
        Bucket=bucket.name, Key="videos/.archiver/lock", Body=json.dumps(other).encode()
    )
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert_bucket_exact(bucket, "videos", standin)


def test_the_conditional_put_keeps_a_second_state_folder_out(
    bucket: Bucket, tmp_path: Path
) -> None:
    """Two runs on one prefix from two state folders: the lock object is created once only."""
    settings = BucketSettings(
        bucket=bucket.name, prefix="videos", endpoint_url=bucket.endpoint, region=REGION
    )
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    with (
        BucketLock(settings, first),
        pytest.raises(ArchiveBusy, match=bucket.name),
        BucketLock(settings, second),
    ):
        pass
    assert "videos/.archiver/lock" not in bucket.objects()


def test_the_lock_is_renewed_and_never_overwrites_another_runs(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archiver.store.remote as remote

    monkeypatch.setattr(remote, "RENEW_EVERY", 0.2)  # a run's two minutes, in a test's time
    settings = BucketSettings(
        bucket=bucket.name, prefix="videos", endpoint_url=bucket.endpoint, region=REGION
    )

    def lock() -> dict[str, object]:
        document: dict[str, object] = json.loads(bucket.get("videos/.archiver/lock"))
        return document

    with BucketLock(settings, tmp_path) as held:
        first = lock()
        renewed = _until(lambda: lock() if lock()["expires"] != first["expires"] else None)
        assert renewed["state"] == first["state"]
        assert float(renewed["expires"]) > float(first["expires"])  # type: ignore[arg-type]
        # Another run took it over (ours had expired): a renewal must not write over it.
        other = {"holder": "elsewhere pid 1", "state": "another", "expires": time.time() + 300}
        bucket.client.put_object(
            Bucket=bucket.name, Key="videos/.archiver/lock", Body=json.dumps(other).encode()
        )
        assert "elsewhere pid 1" in _until(lambda: held.lost)
        time.sleep(0.5)  # renewals would have come by now: there are none once it is lost
        assert lock()["holder"] == "elsewhere pid 1"
    assert lock()["holder"] == "elsewhere pid 1"  # nor delete it when this run ends


def _until(value: Callable[[], T | None], seconds: float = 20) -> T:
    """The first value that is not None, asked again until `seconds` have passed (a busy CPU
    may hold a renewal back well past its interval)."""
    deadline = time.monotonic() + seconds
    while (found := value()) is None:
        assert time.monotonic() < deadline, "never came"
        time.sleep(0.05)
    return found
