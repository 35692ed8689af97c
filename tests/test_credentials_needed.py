"""Credentials are read only by the commands that call a source, and only for those sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from archiver.config.load import load_config
from archiver.standin import StandIn
from archiver.standin.server import DEMO_CHANJING_SECRET_KEY, DEMO_VTH_TOKEN
from tests.support import config_dict, run_cli, write_config

FACESWAP_VAR = "ARCHIVER_TEST_FACESWAP_TOKEN"
CHANJING_VAR = "ARCHIVER_TEST_CHANJING_SECRET"


def _config(standin: StandIn, folder: Path) -> Path:
    config = config_dict(
        standin,
        vth={"token": f"${{{FACESWAP_VAR}}}"},
        chanjing={"secret_key": f"${{{CHANJING_VAR}}}"},
    )
    return write_config(folder, config)


async def test_run_of_one_source_needs_only_its_credentials(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(standin, tmp_path)
    monkeypatch.delenv(FACESWAP_VAR, raising=False)
    monkeypatch.setenv(CHANJING_VAR, DEMO_CHANJING_SECRET_KEY)
    only = await run_cli("run", "-c", path, "--source", "chanjing")
    assert only.code == 0, only.output
    assert (tmp_path / "archive" / "chanjing").is_dir()
    assert not (tmp_path / "archive" / "faceswap").exists()
    every = await run_cli("run", "-c", path)
    assert every.code == 2
    assert f"sources.faceswap.token: environment variable {FACESWAP_VAR} is not set" in every.output


async def test_status_verify_and_index_need_no_credential(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(standin, tmp_path)
    monkeypatch.setenv(FACESWAP_VAR, DEMO_VTH_TOKEN)
    monkeypatch.setenv(CHANJING_VAR, DEMO_CHANJING_SECRET_KEY)
    assert (await run_cli("run", "-c", path)).code == 0
    monkeypatch.delenv(FACESWAP_VAR)
    monkeypatch.delenv(CHANJING_VAR)
    status = await run_cli("status", "-c", path)
    assert status.code == 0, status.output
    assert "faceswap:" in status.output and "chanjing:" in status.output
    verify = await run_cli("verify", "-c", path, "--source", "faceswap", "-v")
    assert verify.code == 0, verify.output
    assert "all good" in verify.output
    index = await run_cli("index", "-c", path)
    assert index.code == 0, index.output
    assert (tmp_path / "archive" / "index.html").is_file()
    # They never call a source: a run without the credentials still cannot.
    assert (await run_cli("run", "-c", path)).code == 2


async def test_other_references_are_still_resolved_for_every_command(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, config_dict(standin, archive_dir="${ARCHIVER_TEST_HOME}/a"))
    monkeypatch.delenv("ARCHIVER_TEST_HOME", raising=False)
    result = await run_cli("status", "-c", path)
    assert result.code == 2
    assert "archive_dir: environment variable ARCHIVER_TEST_HOME is not set" in result.output


def test_the_secrets_are_those_of_the_sources_used(standin: StandIn, tmp_path: Path) -> None:
    path = _config(standin, tmp_path)
    env = {FACESWAP_VAR: "faceswap-secret", CHANJING_VAR: "chanjing-secret"}
    assert load_config(path, env).secrets == {"faceswap-secret", "chanjing-secret"}
    chanjing = load_config(path, env, sources=("chanjing",))
    assert chanjing.secrets == {"chanjing-secret"}
    unused = next(s for s in chanjing.sources if s.name == "faceswap")
    assert not unused.resolved
    assert dataclasses.asdict(unused.settings)["token"] == f"${{{FACESWAP_VAR}}}"  # as written
    assert load_config(path, {}, sources=()).secrets == frozenset()
