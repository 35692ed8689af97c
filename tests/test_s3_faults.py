"""A store that fails mid-run (503 SlowDown, 500, connections cut) is retried with backoff."""

from __future__ import annotations

from pathlib import Path

from archiver.standin import StandIn
from tests.bucket import Bucket, assert_bucket_exact
from tests.s3proxy import FaultyStore
from tests.support import config_dict, run_cli, write_config


async def test_a_run_through_a_failing_store_completes_byte_exact(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    async with FaultyStore(bucket.endpoint, every=20) as store:
        settings = config_dict(standin, only="faceswap", **bucket.s3_config())
        settings["s3"]["endpoint_url"] = store.url
        config = write_config(tmp_path, settings)
        result = await run_cli("run", "-c", config, "--no-progress")
        assert result.code == 0, result.output
        assert store.faults >= 6, store.faults
    assert_bucket_exact(bucket, "videos", standin, ("faceswap",))
