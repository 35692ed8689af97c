"""`archiver verify` of a bucket archive finds a deleted and an overwritten object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archiver.standin import StandIn
from tests.bucket import Bucket, assert_bucket_exact
from tests.support import config_dict, run_cli, write_config


@pytest.mark.parametrize("quick", [False, True])
async def test_verify_names_a_deleted_and_an_overwritten_object_and_the_run_mends_them(
    standin: StandIn, bucket: Bucket, tmp_path: Path, quick: bool
) -> None:
    config = write_config(tmp_path, config_dict(standin, **bucket.s3_config()))
    assert (await run_cli("run", "-c", config, "--no-progress")).code == 0
    clean = await run_cli("verify", "-c", config, *(["--quick"] if quick else []))
    assert clean.code == 0, clean.output
    videos = sorted(k for k in bucket.objects("videos/") if k.endswith("/video.mp4"))
    deleted, overwritten = videos[0], videos[1]
    bucket.client.delete_object(Bucket=bucket.name, Key=deleted)
    damaged = bytearray(bucket.get(overwritten))
    damaged[100] ^= 0xFF
    bucket.client.put_object(Bucket=bucket.name, Key=overwritten, Body=bytes(damaged))
    bucket.client.put_object(Bucket=bucket.name, Key="videos/notes.txt", Body=b"mine")

    result = await run_cli("verify", "-c", config, *(["--quick"] if quick else []))
    assert result.code == 1, result.output
    assert "video.mp4: missing" in result.output
    assert "video.mp4: content changed" in result.output
    assert "notes.txt: not in the manifest" in result.output
    quarantined = [k for k in bucket.objects("videos/.archiver/quarantine/")]
    assert len(quarantined) == 1 and quarantined[0].endswith(overwritten.removeprefix("videos/"))
    assert bucket.get(quarantined[0]) == bytes(damaged)

    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    bucket.client.delete_object(Bucket=bucket.name, Key="videos/notes.txt")
    assert_bucket_exact(bucket, "videos", standin)
    assert json.loads(bucket.get(deleted.rsplit("/", 1)[0] + "/metadata.json"))["files"]
