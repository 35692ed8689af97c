"""Credentials go to the API host only, and never into logs, reports, manifest or archive."""

from __future__ import annotations

from pathlib import Path

from archiver.standin import Fault, StandIn
from tests.support import config_dict, run_cli, write_config

SECRETS = ("demo-faceswap-token", "demo-secret")


async def test_credentials_never_reach_the_media_host(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin, vth={"headers": {"X-Api-Key": "k-123"}}))
    assert (await run_cli("run", "-c", config)).code == 0
    assert standin.stats.media_requests
    names = standin.stats.media_header_names
    assert not names & {"authorization", "access_token", "x-api-key", "cookie"}
    for request in standin.stats.media_requests:
        values = " ".join(v for _, v in request.headers)
        for secret in (*SECRETS, "k-123"):
            assert secret not in values


async def test_an_api_redirect_is_not_followed_with_the_credential(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.faults.add(
        Fault(
            "redirect",
            path="/videoTaskHistory",
            value=f"{standin.media_url}/media/elsewhere",
            times=-1,
        )
    )
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    result = await run_cli("run", "-c", config)
    assert result.code == 3
    assert "redirect" in result.output
    assert "authorization" not in standin.stats.media_header_names


async def test_no_secret_is_written_anywhere(standin: StandIn, tmp_path: Path) -> None:
    # A failing source puts error text in the logs and the report too.
    standin.faults.add(Fault("http_status", path="/media/*.jpg", value=404, times=-1))
    config = write_config(tmp_path, config_dict(standin))
    log_file = tmp_path / "run.log"
    result = await run_cli("run", "-c", config, "-v", "--log-file", log_file)
    assert result.code == 1
    texts = [result.output, log_file.read_text()]
    for path in (tmp_path / "archive").rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    minted = [r for r in standin.stats.requests_to("/open/v1/access_token")]
    assert minted
    tokens = list(standin.chanjing_tokens.values())
    for text in texts:
        for secret in (*SECRETS, *tokens):
            assert secret not in text
