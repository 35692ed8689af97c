"""Listing: both sources page to the end, whatever the page size, and only as fast as allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.standin import DatasetSpec, StandIn
from tests.conftest import StandInFactory
from tests.support import config_dict, run_cli, task_ids, write_config


@pytest.mark.parametrize("page_size", [1, 7, 10, 30, 31, 100])
async def test_both_sources_page_to_the_end(
    make_standin: StandInFactory, tmp_path: Path, page_size: int
) -> None:
    # 30 tasks each: sizes that divide the count exactly (1, 10, 30) end on an empty page.
    standin = await make_standin(DatasetSpec(vth_tasks=30, chanjing_tasks=30))
    config = write_config(
        tmp_path,
        config_dict(standin, vth={"page_size": page_size}, chanjing={"page_size": page_size}),
    )
    assert (await run_cli("run", "-c", config)).code == 0
    archive = tmp_path / "archive"
    assert task_ids(archive, "faceswap") == {str(r["id"]) for r in standin.dataset.succeeded_vth()}
    assert task_ids(archive, "chanjing") == {r["id"] for r in standin.dataset.succeeded_chanjing()}
    vth_pages = [r.body["page"] for r in standin.stats.requests_to("/videoTaskHistory")]
    assert vth_pages == list(range(1, len(vth_pages) + 1))
    assert all(
        r.body["pageSize"] == page_size for r in standin.stats.requests_to("/videoTaskHistory")
    )
    expected_pages = 30 // page_size + 1 if 30 % page_size == 0 else -(-30 // page_size)
    assert len(vth_pages) == expected_pages
    chanjing = standin.stats.requests_to("/open/v1/video_lip_sync/list")
    assert sorted(r.body["page"] for r in chanjing) == list(range(1, -(-30 // page_size) + 1))


async def test_an_empty_account_archives_nothing_and_succeeds(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=0, chanjing_tasks=0))
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("run", "-c", config)
    assert result.code == 0, result.output
    assert standin.stats.media_bytes_sent == 0


async def test_form_encoding_is_sent_when_configured(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, config_dict(standin, only="faceswap", vth={"request_encoding": "form"})
    )
    assert (await run_cli("run", "-c", config)).code == 0
    assert set(standin.stats.vth_encodings) == {"form"}
    assert task_ids(tmp_path / "archive", "faceswap")


async def test_authorization_and_extra_headers_are_sent_exactly(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, config_dict(standin, only="faceswap", vth={"headers": {"X-Client": "nightly"}})
    )
    assert (await run_cli("run", "-c", config)).code == 0
    for request in standin.stats.requests_to("/videoTaskHistory"):
        assert request.header("Authorization") == "demo-faceswap-token"
        assert request.header("X-Client") == "nightly"


async def test_chanjing_never_exceeds_ten_requests_a_second(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=0, chanjing_tasks=60))
    config = write_config(
        tmp_path, config_dict(standin, only="chanjing", chanjing={"page_size": 2})
    )
    assert (await run_cli("run", "-c", config)).code == 0
    assert len(standin.stats.chanjing_arrivals) >= 30
    assert standin.stats.max_chanjing_in_window(1.0) <= 10
    assert standin.stats.qps_violations == 0


async def test_token_is_minted_once_per_run_and_shared_by_sources_of_one_app(
    standin: StandIn, tmp_path: Path
) -> None:
    cfg = config_dict(standin, only="chanjing")
    cfg["sources"]["chanjing2"] = dict(cfg["sources"]["chanjing"])
    config = write_config(tmp_path, cfg)
    assert (await run_cli("run", "-c", config)).code == 0
    assert sum(standin.stats.mints.values()) == 1
    assert task_ids(tmp_path / "archive", "chanjing2") == task_ids(tmp_path / "archive", "chanjing")


async def test_a_ready_access_token_is_used_without_minting(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        config_dict(
            standin,
            only="chanjing",
            chanjing={"app_id": None, "secret_key": None, "access_token": "demo-chanjing-token"},
        ),
    )
    assert (await run_cli("run", "-c", config)).code == 0
    assert sum(standin.stats.mints.values()) == 0
    assert task_ids(tmp_path / "archive", "chanjing")


async def test_an_invalidated_token_is_minted_again_once(standin: StandIn, tmp_path: Path) -> None:
    # The token is rejected once (10400), as when another client minted a new one.
    from archiver.standin import Fault

    standin.faults.add(Fault("api_code", path="/open/v1/video_lip_sync/list", value=10400, page=1))
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    result = await run_cli("run", "-c", config)
    assert result.code == 0, result.output
    assert sum(standin.stats.mints.values()) == 2
