"""Archiving into a bucket: the same archive as in a folder, object by object."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from archiver.standin import StandIn
from tests.bucket import Bucket, assert_bucket_exact
from tests.support import config_dict, run_cli, write_config


async def test_a_run_into_a_bucket_archives_both_services_byte_exact(
    standin: StandIn, bucket: Bucket, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin, **bucket.s3_config()))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert_bucket_exact(bucket, "videos", standin)
    keys = bucket.objects("videos/")
    assert "videos/faceswap/SHA256SUMS" in keys
    assert "videos/chanjing/SHA256SUMS" in keys
    # The bucket holds a consistent copy of the manifest; the lock is gone.
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(bucket.get("videos/.archiver/manifest.sqlite3"))
    db = sqlite3.connect(copy)
    try:
        (archived,) = db.execute("SELECT count(*) FROM items WHERE state = 'archived'").fetchone()
    finally:
        db.close()
    assert archived == len([k for k in keys if k.endswith("/metadata.json")])
    assert "videos/.archiver/lock" not in keys
    # Nothing of the payload on the local disk: the state folder holds the manifest and reports.
    state = tmp_path / "state"
    assert (state / "manifest.sqlite3").is_file()
    assert not list(state.rglob("*.mp4"))
    # The store's credentials are nowhere: not in the state folder, not in the bucket.
    secrets = (
        os.environ["AWS_SECRET_ACCESS_KEY"].encode(),
        os.environ["AWS_ACCESS_KEY_ID"].encode(),
    )
    for path in state.rglob("*"):
        if path.is_file():
            assert not any(s in path.read_bytes() for s in secrets), path
    for key in keys:
        assert not any(s in bucket.get(key) for s in secrets), key
    assert not any(s.decode() in result.output for s in secrets)
    # `index` writes the catalog into the bucket (see test_catalog_bucket.py).
    index = await run_cli("index", "-c", config)
    assert index.code == 0, index.output
    keys = bucket.objects("videos/")
    status = await run_cli("status", "-c", config, "--json")
    assert status.code == 0 and '"uploads_in_progress": 0' in status.output, status.output
    # A second run fetches nothing.
    again = await run_cli("run", "-c", config, "--no-progress", "-v")
    assert again.code == 0, again.output
    assert bucket.objects("videos/").keys() == keys.keys()
