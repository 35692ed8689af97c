"""Partial downloads: kept as .part, resumed with Range tied to the same validator."""

from __future__ import annotations

import hashlib
from pathlib import Path

from archiver.standin import DatasetSpec, Fault
from tests.conftest import StandInFactory
from tests.support import config_dict, run_cli, sidecars, write_config

ONE_BIG = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=1,
    succeeded_share=1.0,
    media_min_bytes=3_000_000,
    media_max_bytes=3_000_001,
)


async def test_a_part_left_by_an_earlier_run_is_resumed_with_range(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(ONE_BIG)
    # The first run's only attempt is cut short: it ends with a .part on disk.
    standin.faults.add(Fault("truncate", path="/media/*.mp4", value=2_000_000))
    cfg = config_dict(standin, only="chanjing", http={"retries": 1, "backoff_base": 0.01})
    config = write_config(tmp_path, cfg)
    first = await run_cli("run", "-c", config)
    assert first.code == 1, first.output
    parts = list((tmp_path / "archive").rglob("video.part"))
    assert len(parts) == 1
    kept = parts[0].stat().st_size
    assert kept >= 1_000_000
    standin.stats.reset()
    second = await run_cli("run", "-c", config)
    assert second.code == 0, second.output
    video_requests = [r for r in standin.stats.media_requests if r.path.endswith(".mp4")]
    assert video_requests[0].header("Range") == f"bytes={kept}-"
    assert video_requests[0].header("If-Range")
    total = 3_000_000
    assert standin.stats.media_bytes_sent < total  # only the rest was sent, plus the preview
    doc = next(iter(sidecars(tmp_path / "archive").values()))
    video = next((tmp_path / "archive").rglob("video.mp4"))
    data = video.read_bytes()
    served = standin.dataset.media_bytes(standin.dataset.media_path(doc["files"]["video"]["url"]))
    assert data == served
    assert hashlib.sha256(data).hexdigest() == doc["files"]["video"]["sha256"]
    assert not list((tmp_path / "archive").rglob("*.part*"))


async def test_a_cut_body_is_resumed_within_the_same_run(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(ONE_BIG)
    standin.faults.add(Fault("truncate", path="/media/*.mp4", value=1_500_000))
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    assert (await run_cli("run", "-c", config)).code == 0
    ranges = [r.header("Range") for r in standin.stats.media_requests if r.path.endswith(".mp4")]
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) >= 1_000_000
    # Started over, it would be 1.5 MB cut + 3 MB video + 3 MB preview = 7.5 MB.
    assert standin.stats.media_bytes_sent < 7_000_000


async def test_a_replaced_file_is_never_spliced(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(ONE_BIG)
    standin.faults.add(Fault("truncate", path="/media/*.mp4", value=1_000_000))
    cfg = config_dict(standin, only="chanjing", http={"retries": 1, "backoff_base": 0.01})
    config = write_config(tmp_path, cfg)
    assert (await run_cli("run", "-c", config)).code == 1
    # Upstream the file is replaced between the runs: the resume must start over.
    url = standin.dataset.succeeded_chanjing()[0]["video_url"]
    standin.dataset.replace_media(standin.dataset.media_path(url))
    assert (await run_cli("run", "-c", config)).code == 0
    video = next((tmp_path / "archive").rglob("video.mp4"))
    assert video.read_bytes() == standin.dataset.media_bytes(standin.dataset.media_path(url))
