"""API faults that a run survives: whatever the listing endpoints do, the archive ends exact.

Each fault hits page 2 of a listing twice (or the token endpoint), on the wire: an error page
from a proxy, a retry code, a dropped connection, an answer slower than the read timeout, a
body that is not JSON or JSON of the wrong shape. The run must retry through it and archive
every succeeded task, each file byte for byte.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from archiver.standin import Fault, StandIn
from tests.support import (
    assert_archive_exact,
    config_dict,
    expected_items,
    run_cli,
    sidecars,
    write_config,
)

VTH = "/videoTaskHistory"
LIST = "/open/v1/video_lip_sync/list"
TOKEN = "/open/v1/access_token"

# A read timeout short enough for a slow answer to trip it, long enough for a loaded machine.
READ_TIMEOUT = 0.6

SHARED_FAULTS = [
    pytest.param("http_status", 500, id="http-500-html"),
    pytest.param("http_status", 502, id="http-502-html"),
    pytest.param("http_status", 503, id="http-503-html"),
    pytest.param("reset", None, id="reset-mid-page"),
    pytest.param("slow", READ_TIMEOUT * 3, id="slower-than-read-timeout"),
    pytest.param("bad_json", None, id="json-that-does-not-parse"),
    pytest.param("wrong_shape", "data_null", id="data-null"),
    pytest.param("wrong_shape", "data_string", id="data-a-string"),
    pytest.param("wrong_shape", "list_object", id="list-where-an-object-belongs"),
    pytest.param("retry_after", "²", id="429-retry-after-not-a-number"),
]


def _config(standin: StandIn, only: str) -> dict[str, Any]:
    cfg = config_dict(standin, only=only)
    cfg["http"] = {**cfg["http"], "read_timeout": READ_TIMEOUT}
    return cfg


async def _run_and_check(standin: StandIn, tmp_path: Path, only: str) -> None:
    config = write_config(tmp_path, _config(standin, only))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert_archive_exact(tmp_path / "archive", standin, (only,))


@pytest.mark.parametrize(("kind", "value"), SHARED_FAULTS)
async def test_video_task_history_survives(
    standin: StandIn, tmp_path: Path, kind: str, value: object
) -> None:
    fault = standin.faults.add(Fault(kind, path=VTH, page=2, times=2, value=value))  # type: ignore[arg-type]
    await _run_and_check(standin, tmp_path, "faceswap")
    assert fault.fired == 2


@pytest.mark.parametrize(("kind", "value"), SHARED_FAULTS)
async def test_chanjing_list_survives(
    standin: StandIn, tmp_path: Path, kind: str, value: object
) -> None:
    fault = standin.faults.add(Fault(kind, path=LIST, page=2, times=2, value=value))  # type: ignore[arg-type]
    await _run_and_check(standin, tmp_path, "chanjing")
    assert fault.fired == 2


@pytest.mark.parametrize(("kind", "value"), SHARED_FAULTS[:6])
async def test_chanjing_first_page_and_token_survive(
    standin: StandIn, tmp_path: Path, kind: str, value: object
) -> None:
    # The first page decides how the rest is read (it tells total_page), and the token
    # endpoint comes before everything.
    first = standin.faults.add(Fault(kind, path=LIST, page=1, value=value))  # type: ignore[arg-type]
    token = standin.faults.add(Fault(kind, path=TOKEN, value=value))  # type: ignore[arg-type]
    await _run_and_check(standin, tmp_path, "chanjing")
    assert first.fired == 1 and token.fired == 1


@pytest.mark.parametrize(
    ("path", "code", "only"),
    [
        pytest.param(VTH, 510, "faceswap", id="vth-510"),
        pytest.param(LIST, 50000, "chanjing", id="chanjing-50000"),
        pytest.param(LIST, 40001, "chanjing", id="chanjing-40001"),
        pytest.param(TOKEN, 50000, "chanjing", id="token-50000"),
        pytest.param(TOKEN, 40001, "chanjing", id="token-40001"),
    ],
)
async def test_retry_codes_are_retried(
    standin: StandIn, tmp_path: Path, path: str, code: int, only: str
) -> None:
    page = None if path == TOKEN else 2
    times = 1 if code == 40001 else 2  # 40001 waits a whole rate window before the retry
    fault = standin.faults.add(Fault("api_code", path=path, page=page, times=times, value=code))
    await _run_and_check(standin, tmp_path, only)
    assert fault.fired == times


async def test_a_null_page_twice_in_a_row_does_not_end_the_listing(
    standin: StandIn, tmp_path: Path
) -> None:
    # A Go back end sends `data: null` for an empty list, so one null page may be the end; a
    # null page in the middle of the list, answered twice, must not cost the pages after it.
    standin.faults.add(Fault("wrong_shape", path=VTH, page=2, times=3, value="data_null"))
    await _run_and_check(standin, tmp_path, "faceswap")


async def test_a_null_page_at_the_end_is_the_end(standin: StandIn, tmp_path: Path) -> None:
    # 30 tasks in pages of 10: page 4 is empty, and answered `data: null` it is still the end.
    standin.faults.add(Fault("wrong_shape", path=VTH, page=4, times=-1, value="data_null"))
    await _run_and_check(standin, tmp_path, "faceswap")
    pages = [r.body["page"] for r in standin.stats.requests_to(VTH)]
    assert max(pages) <= 5


async def test_a_record_listed_twice_is_archived_once(standin: StandIn, tmp_path: Path) -> None:
    # The same tasks again at the top of the list, as when a list is paged while it shifts:
    # each copy is met on another page, while the first is still downloading.
    vth = [r for r in standin.dataset.vth_tasks() if r["state"] == 30][3:9]
    chanjing = [r for r in standin.dataset.chanjing_tasks() if r["status"] == 20][3:9]
    for record in vth:
        standin.dataset.add_raw("vth", record)
    for record in chanjing:
        standin.dataset.add_raw("chanjing", record)
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    assert_archive_exact(tmp_path / "archive", standin)
    paths = [r.path for r in standin.stats.media_requests]
    assert len(paths) == len(set(paths))  # each file fetched once


async def test_a_list_that_shifts_while_it_is_paged_loses_nothing(
    standin: StandIn, tmp_path: Path
) -> None:
    # Page 2 is answered late, after three new tasks were put at the top: its first three
    # records are the last three of page 1 again (and Chanjing's list gains a page).
    before = expected_items(standin, ("faceswap", "chanjing"))
    for path in (VTH, LIST):
        standin.faults.add(Fault("slow", path=path, page=2, value=0.5))

    def asked(path: str, page: int) -> bool:
        return any((r.body or {}).get("page") == page for r in standin.stats.requests_to(path))

    async def shift() -> None:
        # While both page 2s wait, and once Chanjing's page 3 (asked at the same time as its
        # page 2) has been answered from the list as it was.
        while not (asked(VTH, 2) and asked(LIST, 2) and asked(LIST, 3)):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        for _ in range(3):
            standin.dataset.add_vth_task()
            standin.dataset.add_chanjing_task()

    config = write_config(tmp_path, config_dict(standin))
    shifter = asyncio.create_task(shift())
    result = await run_cli("run", "-c", config, "--no-progress")
    await shifter
    assert result.code == 0, result.output
    assert set(sidecars(tmp_path / "archive")) == before
    paths = [r.path for r in standin.stats.media_requests]
    assert len(paths) == len(set(paths))
    # The three new tasks are the next run's.
    assert (await run_cli("run", "-c", config)).code == 0
    assert_archive_exact(tmp_path / "archive", standin)
