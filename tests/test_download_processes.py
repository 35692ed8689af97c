"""Download processes: the same archive as the main process makes, and nothing lost when one dies.

Real `python -m archiver.worker` children of real runs: found through /proc, their open files
read there, one of them killed with SIGKILL in the middle of its downloads.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archiver.lock import ArchiveLock
from archiver.standin import DatasetSpec
from tests.conftest import StandInFactory
from tests.support import (
    assert_archive_exact,
    comparable_sidecars,
    config_dict,
    manifest_problems,
    run_child,
    run_cli,
    spawn_cli,
    write_config,
)

SPEC = DatasetSpec(vth_tasks=20, chanjing_tasks=20, templates=3, seed=5)
BIG = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=8,
    succeeded_share=1.0,
    media_min_bytes=1_500_000,
    media_max_bytes=3_000_000,
)


def _workers_of(parent: int) -> list[int]:
    """The pids of the download processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == parent and b"archiver.worker" in command:
            found.append(int(entry.name))
    return found


def _open_files(pid: int) -> set[str]:
    names = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            names.add(str(fd.readlink()))
        except OSError:
            continue
    return names


@pytest.mark.parametrize("processes", [0, 1, 3])
async def test_any_number_of_download_processes_makes_the_same_archive(
    make_standin: StandInFactory, tmp_path: Path, processes: int
) -> None:
    standin = await make_standin(SPEC)
    reference = tmp_path / "reference"
    reference.mkdir()
    config = write_config(reference, config_dict(standin, download_processes=0))
    assert (await run_cli("run", "-c", config)).code == 0

    folder = tmp_path / f"with{processes}"
    folder.mkdir()
    config = write_config(folder, config_dict(standin, download_processes=processes))
    result = await run_cli("run", "-c", config)
    assert result.code == 0, result.output
    assert_archive_exact(folder / "archive", standin)
    assert comparable_sidecars(folder / "archive") == comparable_sidecars(reference / "archive")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_a_killed_download_process_stops_the_run_and_loses_nothing(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(BIG)
    # Slow enough that the worker is mid-way through its files when it is killed.
    cfg = config_dict(standin, only="chanjing", download_processes=1, bandwidth_limit=6_000_000)
    config = write_config(tmp_path, cfg)
    archive = tmp_path / "archive"
    output = tmp_path / "first.txt"
    run = await spawn_cli("run", "-c", config, "--no-progress", output=output)
    deadline = time.monotonic() + 30
    while not list(archive.rglob("*.part")) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    workers = _workers_of(run.pid)
    assert len(workers) == 1, workers
    # The worker holds the archive's lock too: no next run can start while it settles files.
    assert str(archive / ".archiver" / "lock") in _open_files(workers[0])

    os.kill(workers[0], signal.SIGKILL)
    code = await asyncio.wait_for(run.wait(), 30)
    text = output.read_text()
    assert code == 1, text
    assert "a download process ended unexpectedly" in text
    assert "Traceback" not in text
    assert manifest_problems(archive) == []

    final = await run_child("run", "-c", config, output=tmp_path / "second.txt")
    assert final.code == 0, final.output
    assert_archive_exact(archive, standin, ("chanjing",))


def test_a_run_waits_for_the_download_processes_of_a_run_that_has_ended(tmp_path: Path) -> None:
    # A child takes the lock and writes the pid of a process that has ended, as a killed run's
    # download process does while it settles; it lets go after a second.
    (tmp_path / ".archiver").mkdir()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.ftruncate(fd, 0); os.write(fd, (sys.argv[2] + '\\n').encode())\n"
            "print('held', flush=True); time.sleep(1)\n",
            str(tmp_path / ".archiver" / "lock"),
            ended,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with ArchiveLock(tmp_path):
        waited = time.monotonic() - started
    holder.wait(10)
    assert 0.3 < waited < 5, waited
