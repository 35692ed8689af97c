"""SIGTERM and Ctrl-C: exit 130 within two seconds, `.part` files kept, the manifest consistent.

A real `python -m archiver run` child gets the signal in the middle of its downloads (slowed
by its own bandwidth limit, so that they are mid-way). The next run resumes the kept parts
with Range requests and completes the archive.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from archiver.standin import DatasetSpec
from tests.conftest import StandInFactory
from tests.support import (
    assert_archive_exact,
    config_dict,
    manifest_problems,
    run_child,
    spawn_cli,
    write_config,
)

SPEC = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=12,
    succeeded_share=1.0,
    media_min_bytes=1_500_000,
    media_max_bytes=3_000_000,
)


def _archived(archive: Path) -> int:
    try:
        db = sqlite3.connect(archive / "manifest.sqlite3", timeout=5)
        try:
            row = db.execute("SELECT count(*) FROM items WHERE state = 'archived'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return 0  # not created yet
    return int(row[0])


async def _mid_way(archive: Path) -> None:
    """Wait until a task is recorded as archived and another file is being received."""
    while not (_archived(archive) and list(archive.rglob("*.part"))):
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_the_run_cleanly_within_two_seconds(
    make_standin: StandInFactory, tmp_path: Path, signum: signal.Signals
) -> None:
    standin = await make_standin(SPEC)
    cfg = config_dict(standin, only="chanjing", bandwidth_limit=8_000_000)
    config = write_config(tmp_path, cfg)
    archive = tmp_path / "archive"
    output = tmp_path / "first.txt"
    # A session of its own: the signal goes to the whole process group, as Ctrl-C on a
    # terminal and systemd's stop do.
    child = await spawn_cli(
        "run", "-c", config, "--no-progress", output=output, preexec_fn=os.setsid
    )
    await asyncio.wait_for(_mid_way(archive), 30)
    await asyncio.sleep(0.2)
    os.killpg(child.pid, signum)
    sent = time.monotonic()
    code = await asyncio.wait_for(child.wait(), 10)
    elapsed = time.monotonic() - sent
    text = output.read_text()
    assert code == 130, text
    assert elapsed < 2.0, elapsed
    with pytest.raises(ProcessLookupError):
        os.killpg(child.pid, 0)  # nothing of the run is left
    assert "Traceback" not in text and "interrupted" in text

    # The .part files stay, each with the validator that lets the next run resume it, and
    # hold every byte that arrived (not just whole blocks).
    parts = {p: p.stat().st_size for p in archive.rglob("*.part")}
    assert parts
    for part in parts:
        assert part.with_name(part.name + ".json").is_file()
    assert manifest_problems(archive) == []
    db = sqlite3.connect(archive / "manifest.sqlite3")
    ((status,),) = db.execute("SELECT exit_status FROM runs").fetchall()
    archived = db.execute("SELECT count(*) FROM items WHERE state = 'archived'").fetchone()[0]
    db.close()
    assert status == 130
    assert 0 < archived < len(standin.dataset.succeeded_chanjing())

    standin.stats.reset()
    unlimited = tmp_path / "unlimited"
    unlimited.mkdir()
    config = write_config(
        unlimited, config_dict(standin, only="chanjing", archive_dir=str(archive))
    )
    second = await run_child("run", "-c", config, output=tmp_path / "second.txt")
    assert second.code == 0, second.output
    resumed = {r.header("Range") for r in standin.stats.media_requests}
    for part, size in parts.items():
        assert f"bytes={size}-" in resumed, part
    assert_archive_exact(archive, standin, ("chanjing",))
