"""Bytes damaged on their way to the store are refused by it, and never land under a final key.

A proxy in front of the loopback S3 API flips a byte of PUT and UploadPart bodies, keeping
their `x-amz-checksum-sha256`, and refuses a body that does not match it (400 BadDigest), as
S3 does. A file whose upload was refused is sent again; one refused every time fails with one
line saying why, nothing of it is in the bucket, and the next run archives it.
"""

from __future__ import annotations

from pathlib import Path

from archiver.standin import DatasetSpec
from tests.bucket import Bucket, assert_bucket_exact
from tests.conftest import StandInFactory
from tests.s3proxy import FaultyStore
from tests.support import config_dict, run_cli, write_config

MiB = 1024**2
# Files of two parts at the smallest part size, beside small covers and sidecars: damage hits
# single PUTs and parts of multipart uploads alike.
SPEC = DatasetSpec(
    vth_tasks=2, chanjing_tasks=2, templates=1, seed=7, media_min_bytes=6 * MiB,
    media_max_bytes=8 * MiB,
)  # fmt: skip


async def test_damaged_uploads_are_refused_and_sent_again_byte_exact(
    make_standin: StandInFactory, bucket: Bucket, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    async with FaultyStore(bucket.endpoint, every=0, damage=6, damage_path="*/20*") as store:
        settings = config_dict(standin, **bucket.s3_config(part_size=5 * MiB))
        settings["s3"]["endpoint_url"] = store.url
        config = write_config(tmp_path, settings)
        result = await run_cli("run", "-c", config, "--no-progress")
        assert result.code == 0, result.output
        assert store.damaged == 6
        assert store.refused == 6  # every damaged body came with its checksum
    assert_bucket_exact(bucket, "videos", standin)


async def test_a_file_damaged_every_time_fails_in_one_line_and_is_not_in_the_bucket(
    make_standin: StandInFactory, bucket: Bucket, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    async with FaultyStore(bucket.endpoint, every=0, damage=-1, damage_path="*.mp4") as store:
        settings = config_dict(standin, **bucket.s3_config(part_size=5 * MiB))
        settings["s3"]["endpoint_url"] = store.url
        config = write_config(tmp_path, settings)
        result = await run_cli("run", "-c", config, "--no-progress")
        assert result.code == 1, result.output
        assert store.refused == store.damaged > 0
        failures = [line for line in result.output.splitlines() if "BadDigest" in line]
        assert failures, result.output
        for line in failures:
            assert "damaged on the way" in line and ".mp4" in line, line
        objects = bucket.objects()
        assert not [key for key in objects if key.endswith(".mp4")], objects
        # Once the way is clean again, the next run archives them, and leaves no upload begun.
        store.damage = 0
        again = await run_cli("run", "-c", config, "--no-progress")
        assert again.code == 0, again.output
    assert_bucket_exact(bucket, "videos", standin)
