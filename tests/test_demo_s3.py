"""`archiver demo --s3`: the demo into a bucket, its config then read by verify and status."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import yaml

from tests.bucket import Bucket, sidecars_in
from tests.support import run_cli


def _last_report(state: Path) -> dict[str, object]:
    report: dict[str, object] = json.loads(
        sorted((state / ".archiver" / "runs").glob("*.json"))[-1].read_text()
    )
    return report


async def test_a_demo_into_a_bucket_is_verified_and_a_second_demo_adds_nothing(
    bucket: Bucket, tmp_path: Path
) -> None:
    state = tmp_path / "demo"
    url = f"s3://{bucket.name}/demo"
    argv = ("demo", state, "--tasks", "10", "--s3", url, "--s3-endpoint", bucket.endpoint)
    first = await run_cli(*argv, "--no-progress")
    assert first.code == 0, first.output
    config = state / ".archiver" / "demo-config.yaml"
    written = yaml.safe_load(config.read_text())
    assert written["archive_dir"] == url
    assert written["s3"] == {"endpoint_url": bucket.endpoint}
    assert f"the archive is in {url}" in first.output
    assert f"  archiver verify -c {config}" in first.output
    # The payload is in the bucket, with its checksums and the manifest's copy; only the state
    # (manifest, reports) is in the demo's folder, and the store's credentials are nowhere.
    keys = bucket.objects("demo/")
    assert len(sidecars_in(bucket, "demo")) > 10
    assert "demo/faceswap/SHA256SUMS" in keys and "demo/.archiver/manifest.sqlite3" in keys
    assert not list(state.rglob("*.mp4")) and not (state / "faceswap").exists()
    secret = os.environ["AWS_SECRET_ACCESS_KEY"].encode()
    assert not any(secret in p.read_bytes() for p in state.rglob("*") if p.is_file())
    assert bucket.uploads() == []

    verify = await run_cli("verify", "-c", config, "-v")
    assert verify.code == 0 and "all good" in verify.output, verify.output
    status = await run_cli("status", "-c", config)
    assert status.code == 0, status.output
    assert "multipart uploads in progress: 0" in status.output
    assert " demo " in status.output and "0 failed" in status.output

    second = await run_cli(*argv, "--no-progress")
    assert second.code == 0, second.output
    totals = _last_report(state)["totals"]
    assert isinstance(totals, dict)
    assert totals["newly_archived"] == 0 and totals["bytes"] == 0
    payload = {k: v for k, v in keys.items() if not k.startswith("demo/.archiver/")}
    again = bucket.objects("demo/")
    assert {k: v for k, v in again.items() if not k.startswith("demo/.archiver/")} == payload
    # The demo's config is still not one to run: its stand-in lived only inside the demo.
    run = await run_cli("run", "-c", config)
    assert run.code == 2 and "run only inside `archiver demo`" in run.output
    again_with = f"`archiver demo --s3 s3://{bucket.name}/demo --s3-endpoint {bucket.endpoint} "
    assert again_with in run.output, run.output


async def test_the_endpoint_comes_from_the_aws_chain_when_not_given(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", bucket.endpoint)
    state = tmp_path / "demo"
    demo = await run_cli("demo", state, "--tasks", "3", "--s3", f"s3://{bucket.name}/p", "-q")
    assert demo.code == 0, demo.output
    config = state / ".archiver" / "demo-config.yaml"
    assert yaml.safe_load(config.read_text())["s3"] is None  # nothing but the chain
    assert "p/.archiver/manifest.sqlite3" in bucket.objects("p/")
    status = await run_cli("status", "-c", config, "--json")
    assert status.code == 0 and '"uploads_in_progress": 0' in status.output, status.output


async def test_a_missing_bucket_is_exit_2_in_one_line_touching_nothing(
    bucket: Bucket, tmp_path: Path
) -> None:
    state = tmp_path / "demo"
    url = "s3://no-such-bucket-for-the-demo/videos"
    result = await run_cli("demo", state, "--s3", url, "--s3-endpoint", bucket.endpoint)
    assert result.code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert url in lines[0] and ("NoSuchBucket" in lines[0] or "404" in lines[0])
    assert not state.exists()


async def test_a_wrong_endpoint_is_exit_2_in_one_line_touching_nothing(
    bucket: Bucket, tmp_path: Path
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    state = tmp_path / "demo"
    url = f"s3://{bucket.name}/videos"
    endpoint = f"http://127.0.0.1:{port}"
    result = await run_cli("demo", state, "--s3", url, "--s3-endpoint", endpoint)
    assert result.code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert url in lines[0] and "EndpointConnectionError" in lines[0]
    assert not state.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--s3", "s3://Not_A_Bucket/x"], "--s3: not a bucket and prefix"),
        (["--s3", "/tmp/folder"], "--s3: not a bucket and prefix"),
        (["--s3", "s3://bucket-ok/x", "--s3-endpoint", "minio:9000"], "--s3-endpoint: expected"),
        (["--s3-endpoint", "http://127.0.0.1:9000"], "--s3-endpoint: only with --s3"),
    ],
    ids=["bad-bucket", "not-s3", "bad-endpoint", "endpoint-alone"],
)
async def test_a_bad_bucket_argument_is_a_usage_error(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    result = await run_cli("demo", tmp_path / "demo", *argv)
    assert result.code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "demo").exists()
