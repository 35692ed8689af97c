"""A full disk: a clear message, nothing recorded that is not complete, and the next run finishes.

The archiver runs as a child under a file size limit (`RLIMIT_FSIZE`): Python ignores the
SIGXFSZ that follows, so every write past the limit really fails (EFBIG), as on a full disk.
The limit is met first by a media file being written, or, with many small files, by the
manifest itself.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from pathlib import Path

import pytest

from archiver.standin import DatasetSpec
from tests.conftest import StandInFactory
from tests.support import (
    assert_archive_exact,
    config_dict,
    manifest_problems,
    run_child,
    write_config,
)

BIG_MEDIA = DatasetSpec(
    vth_tasks=10,
    chanjing_tasks=10,
    templates=3,
    media_min_bytes=20_000,
    media_max_bytes=1_800_000,
)
MANY_TASKS = DatasetSpec(
    vth_tasks=200, chanjing_tasks=200, media_min_bytes=2_000, media_max_bytes=30_000
)


def _file_size_limit(limit: int) -> Callable[[], None]:
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_file_size


@pytest.mark.parametrize(
    ("spec", "limit", "said"),
    [
        pytest.param(BIG_MEDIA, 1_000_000, "File too large", id="a-media-file"),
        pytest.param(MANY_TASKS, 400_000, "cannot write the manifest", id="the-manifest"),
    ],
)
async def test_a_full_disk_stops_the_run_clearly_and_the_next_run_completes(
    make_standin: StandInFactory, tmp_path: Path, spec: DatasetSpec, limit: int, said: str
) -> None:
    standin = await make_standin(spec)
    config = write_config(tmp_path, config_dict(standin, concurrency=2))
    archive = tmp_path / "archive"
    full = await run_child(
        "run", "-c", config, "--no-progress", output=tmp_path / "full.txt",
        preexec_fn=_file_size_limit(limit),
    )  # fmt: skip
    assert full.code == 1, full.output
    assert "Traceback" not in full.output and "unexpected" not in full.output
    errors = [line for line in full.output.splitlines() if " ERROR " in line]
    assert errors and all(said in line for line in errors), full.output
    assert any("cannot write" in line and str(archive) in line for line in errors)
    assert manifest_problems(archive) == []
    assert [p for p in archive.rglob("*") if p.is_file() and p.stat().st_size > limit] == []
    # What the full disk cut short stays, to be resumed, not fetched again.
    parts = {p: p.stat().st_size for p in archive.rglob("*.part")}
    if spec is BIG_MEDIA:
        assert any(p.with_name(p.name + ".json").exists() for p in parts), parts

    # With room again, the next run completes.
    standin.stats.reset()
    again = await run_child("run", "-c", config, "--no-progress", output=tmp_path / "again.txt")
    assert again.code == 0, again.output
    assert_archive_exact(archive, standin)
    ranges = {r.header("Range") for r in standin.stats.media_requests}
    for part, size in parts.items():
        if part.with_name(part.name + ".json").exists():
            assert f"bytes={size}-" in ranges, part
