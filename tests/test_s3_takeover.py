"""A lost state folder costs no download: the bucket's manifest copy takes the archive over."""

from __future__ import annotations

import shutil
from pathlib import Path

from archiver.standin import StandIn
from tests.bucket import Bucket, assert_bucket_exact
from tests.support import config_dict, run_cli, write_config


async def test_an_empty_state_folder_takes_over_the_bucket_and_fetches_nothing(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin, **bucket.s3_config()))
    first = await run_cli("run", "-c", config, "--no-progress")
    assert first.code == 0, first.output
    shutil.rmtree(tmp_path / "state")
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert "took over the archive" in again.output
    assert standin.stats.media_bytes_sent == 0
    assert (tmp_path / "state" / "manifest.sqlite3").is_file()
    assert_bucket_exact(bucket, "videos", standin)


async def test_without_a_manifest_copy_the_sidecars_take_the_archive_over(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin, **bucket.s3_config()))
    first = await run_cli("run", "-c", config, "--no-progress")
    assert first.code == 0, first.output
    # As if the run had been killed before its copy of the manifest was made.
    bucket.client.delete_object(Bucket=bucket.name, Key="videos/.archiver/manifest.sqlite3")
    shutil.rmtree(tmp_path / "state")
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert "items from their sidecars" in again.output
    assert standin.stats.media_bytes_sent == 0
    assert_bucket_exact(bucket, "videos", standin)
    verify = await run_cli("verify", "-c", config)
    assert verify.code == 0, verify.output
