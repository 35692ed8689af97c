"""A store without conditional writes: the run says so once, keeps to the local lock, completes.

Such stores either refuse a PUT that carries `If-None-Match` (501 NotImplemented) or take it
and ignore the condition; a proxy in front of the loopback S3 API plays each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import archiver.store.remote as remote
from archiver.standin import Fault, StandIn
from tests.bucket import Bucket, assert_bucket_exact
from tests.s3proxy import FaultyStore
from tests.support import config_dict, run_cli, write_config

WARNING = "does not support conditional writes"


@pytest.mark.parametrize("conditional", ["refuse", "ignore"])
async def test_a_store_without_conditional_writes_warns_once_and_the_run_completes(
    standin: StandIn, bucket: Bucket, tmp_path: Path, conditional: str
) -> None:
    async with FaultyStore(bucket.endpoint, every=0, conditional=conditional) as store:  # type: ignore[arg-type]
        settings = config_dict(standin, **bucket.s3_config())
        settings["s3"]["endpoint_url"] = store.url
        config = write_config(tmp_path, settings)
        result = await run_cli("run", "-c", config, "--no-progress")
        assert result.code == 0, result.output
        assert result.output.count(WARNING) == 1, result.output
        assert bucket.name in result.output
        assert store.conditional_puts >= 1
        # A lock object that keeps no one out is not left behind to mislead.
        assert "videos/.archiver/lock" not in bucket.objects()
        again = await run_cli("run", "-c", config, "--no-progress")
        assert again.code == 0, again.output
    assert_bucket_exact(bucket, "videos", standin)


async def test_a_store_without_if_match_still_has_its_lock_renewed(
    standin: StandIn, bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`If-None-Match` taken, `If-Match` refused (501): renewals read the lock, then write it."""
    monkeypatch.setattr(remote, "RENEW_EVERY", 0.1)
    standin.faults.add(Fault("slow", path="/media/*", times=-1, value=0.1))
    async with FaultyStore(bucket.endpoint, every=0, conditional="refuse-if-match") as store:
        settings = config_dict(standin, **bucket.s3_config(), concurrency=2)
        settings["s3"]["endpoint_url"] = store.url
        config = write_config(tmp_path, settings)
        result = await run_cli("run", "-c", config, "--no-progress")
        assert result.code == 0, result.output
        assert "WARNING" not in result.output and "ERROR" not in result.output, result.output
        renewals = store.conditional_puts - 2  # the create, and the check that it is refused
        assert renewals >= 3, store.conditional_puts
    assert_bucket_exact(bucket, "videos", standin)
    assert "videos/.archiver/lock" not in bucket.objects()  # released at the end
