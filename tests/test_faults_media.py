"""Media faults that a run survives: the archive ends exact, and partial data is resumed.

The media host misbehaves on the wire: 503, 429 with Retry-After, a reset connection, a body
cut short of its Content-Length, a Range it ignores, a file replaced between attempts, a
transfer that stalls. Every file must end up exactly the bytes served, never two versions
spliced together, and what arrived before a break is kept and resumed, not fetched again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archiver.standin import DatasetSpec, Fault, StandIn
from tests.conftest import StandInFactory
from tests.support import assert_archive_exact, config_dict, run_cli, write_config

READ_TIMEOUT = 0.6
BIG = 3_000_000
ONE_BIG = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=1,
    succeeded_share=1.0,
    media_min_bytes=BIG,
    media_max_bytes=BIG,
)
VIDEO = "/media/lip-sync/*.mp4"


def _config(standin: StandIn, only: str | None = None, **http: Any) -> dict[str, Any]:
    cfg = config_dict(standin, only=only)
    cfg["http"] = {**cfg["http"], "read_timeout": READ_TIMEOUT, **http}
    return cfg


async def _run(standin: StandIn, tmp_path: Path, only: str | None = None, **http: Any) -> None:
    config = write_config(tmp_path, _config(standin, only, **http))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    sources = ("faceswap", "chanjing") if only is None else (only,)
    assert_archive_exact(tmp_path / "archive", standin, sources)


def _video_requests(standin: StandIn) -> list[str | None]:
    """The Range header of each request for the one big video, in order."""
    return [r.header("Range") for r in standin.stats.media_requests if r.path.endswith(".mp4")]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        pytest.param("http_status", 503, id="503"),
        pytest.param("reset", None, id="reset"),
        pytest.param("truncate", None, id="cut-short-of-content-length"),
        pytest.param("stall", None, id="stalled"),
    ],
)
async def test_every_file_is_exact_after_media_faults(
    standin: StandIn, tmp_path: Path, kind: str, value: int | None
) -> None:
    fault = standin.faults.add(Fault(kind, path="/media/*", times=3, value=value))
    await _run(standin, tmp_path)
    assert fault.fired == 3


async def test_429_waits_as_long_as_retry_after_asks(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(ONE_BIG)
    standin.faults.add(Fault("retry_after", path=VIDEO, value=1))
    await _run(standin, tmp_path, "chanjing", backoff_max=0.05)
    first, second = [r.at for r in standin.stats.media_requests if r.path.endswith(".mp4")]
    assert second - first >= 1.0


async def test_a_retry_after_that_is_not_a_number_is_ignored(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    # `²` passes str.isdigit() but not float(): the header is ignored, the backoff used.
    standin = await make_standin(ONE_BIG)
    standin.faults.add(Fault("retry_after", path=VIDEO, value="²", times=2))
    await _run(standin, tmp_path, "chanjing")


@pytest.mark.parametrize(
    ("kind", "cut"),
    [
        pytest.param("truncate", 1_500_000, id="cut-short"),
        pytest.param("reset", 2_000_000, id="reset"),
        pytest.param("stall", 1_700_000, id="stalled"),
    ],
)
async def test_a_broken_transfer_resumes_where_it_broke(
    make_standin: StandInFactory, tmp_path: Path, kind: str, cut: int
) -> None:
    standin = await make_standin(ONE_BIG)
    standin.faults.add(Fault(kind, path=VIDEO, value=cut))
    await _run(standin, tmp_path, "chanjing")
    ranges = _video_requests(standin)
    assert ranges[0] is None and len(ranges) == 2
    assert ranges[1] is not None
    offset = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    # Every byte that arrived before the break is kept; a reset (RST) may also throw away
    # what the kernel had received but not yet handed over.
    if kind == "reset":
        assert 0 < offset <= cut
    else:
        assert offset == cut
    assert standin.stats.media_bytes_sent <= 2 * BIG + (cut - offset)


async def test_a_server_that_ignores_range_gets_a_fresh_whole_file(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(ONE_BIG)
    standin.faults.add(Fault("truncate", path=VIDEO, value=1_000_000))
    ignored = standin.faults.add(Fault("ignore_range", path=VIDEO))
    await _run(standin, tmp_path, "chanjing")
    assert ignored.fired == 1
    ranges = _video_requests(standin)
    assert len(ranges) == 2 and ranges[1] is not None  # asked to resume, answered 200
    # Spliced, the file would hold the first million bytes twice and be a million too long:
    # `assert_archive_exact` compares every byte with what is served now.


async def test_a_file_replaced_between_attempts_is_started_over(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(ONE_BIG)
    url = standin.dataset.succeeded_chanjing()[0]["video_url"]
    path = standin.dataset.media_path(url)
    old = standin.dataset.media_bytes(path)
    standin.faults.add(Fault("truncate", path=VIDEO, value=1_000_000))
    replaced = standin.faults.add(Fault("replace", path=VIDEO))
    await _run(standin, tmp_path, "chanjing")
    assert replaced.fired == 1
    video = next((tmp_path / "archive").rglob("video.mp4")).read_bytes()
    assert video == standin.dataset.media_bytes(path) != old
    assert video[:1_000_000] != old[:1_000_000]  # not the old head with the new tail
