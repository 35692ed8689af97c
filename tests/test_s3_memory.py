"""Memory of a run into a bucket: under 150 MB at part_size 16 MiB and concurrency 8.

Each upload holds at most one part in memory; this measures the peak resident size of a real
`python -m archiver run` child archiving many files of several parts each, eight at a time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from archiver.standin import DatasetSpec
from tests.bucket import Bucket
from tests.conftest import StandInFactory
from tests.support import config_dict, spawn_cli, write_config

MiB = 1024**2
SPEC = DatasetSpec(
    vth_tasks=8,
    chanjing_tasks=8,
    templates=1,
    seed=3,
    media_min_bytes=33 * MiB,
    media_max_bytes=40 * MiB,
)
LIMIT = 150 * MiB


def _peak(pid: int) -> int:
    """The process's peak resident size so far (VmHWM), in bytes; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_a_bucket_run_of_large_files_stays_under_150_mb(
    make_standin: StandInFactory, bucket: Bucket, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    settings = config_dict(standin, **bucket.s3_config(part_size=16 * MiB), concurrency=8)
    config = write_config(tmp_path, settings)
    child = await spawn_cli("run", "-c", config, output=tmp_path / "run.txt")
    peak = 0
    while child.returncode is None:
        peak = max(peak, _peak(child.pid))
        try:
            await asyncio.wait_for(child.wait(), 0.1)
        except TimeoutError:
            continue
    assert child.returncode == 0, (tmp_path / "run.txt").read_text()
    print(f"peak RSS of the run: {peak / MiB:.1f} MiB")  # shown with -s: the margin's figure
    assert peak < LIMIT, f"peak RSS {peak / MiB:.0f} MiB"
