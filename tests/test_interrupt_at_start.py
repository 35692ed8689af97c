"""Ctrl-C in the first milliseconds: exit 130, quietly, from the entry point's first instruction.

A real child process gets SIGINT (or SIGTERM) at several delays after its entry point started,
while it loads its modules, reads its config, or waits on a listing that never answers. The
entry point's first instruction holds the signals back; that is how the test knows it has run
(`SigBlk` in /proc), so no signal lands in the interpreter's own start-up, before any of ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import CHILD_ENV, FAST_HTTP, write_config

DELAYS = (0.0, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5)
HELD = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A listening socket that never answers: a listing that waits until it is stopped."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def _config(folder: Path, api: str) -> Path:
    return write_config(
        folder,
        {
            "archive_dir": "archive",
            "catalog": False,
            "http": {**FAST_HTTP, "read_timeout": 30},
            "sources": {"faceswap": {"type": "video_task_history", "base_url": api, "token": "t"}},
        },
    )


def _commands() -> list[list[str]]:
    commands = [[sys.executable, "-m", "archiver"]]
    script = shutil.which("archiver", path=str(Path(sys.executable).parent))
    if script is not None:  # the console script, where the package is installed
        commands.append([script])
    return commands


def _wait_until_held(pid: int, timeout: float = 10.0) -> None:
    """Wait until the process's entry point has run its first instruction (signals held)."""
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in status.read_text().splitlines():
            if line.startswith("SigBlk:") and int(line.split()[1], 16) & HELD == HELD:
                return
    raise AssertionError("the entry point never held SIGINT back")


@pytest.mark.parametrize("command", _commands(), ids=lambda c: Path(c[-1]).name)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_right_after_start_exits_130_quietly(
    tmp_path: Path, silent_api: str, command: list[str], signum: signal.Signals
) -> None:
    config = _config(tmp_path, silent_api)
    env = {**CHILD_ENV, "PYTHONUNBUFFERED": "1"}
    for delay in DELAYS:
        child = subprocess.Popen(
            [*command, "run", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        try:
            _wait_until_held(child.pid)
            time.sleep(delay)
            os.kill(child.pid, signum)
            output, _ = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 130, (delay, output)
        assert "Traceback" not in output, (delay, output)
        assert "KeyboardInterrupt" not in output, (delay, output)


FINALIZER_CHILD = """
import os, sys, time
from archiver import interrupts
from archiver.cli import main

interrupts.install()


class Slow:
    def __del__(self):
        print("in a finalizer", flush=True)
        time.sleep(3)  # the signal strikes here, where Python drops what a handler raises


Slow()
os._exit(main(["run", "-c", sys.argv[1], "--no-progress"]))
"""


def test_a_signal_dropped_by_a_finalizer_still_stops_the_run(
    tmp_path: Path, silent_api: str
) -> None:
    # Without the signal remembered, the run would go on to wait on the silent listing.
    config = _config(tmp_path, silent_api)
    child = subprocess.Popen(
        [sys.executable, "-c", FINALIZER_CHILD, str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**CHILD_ENV, "PYTHONUNBUFFERED": "1"},
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "in a finalizer\n"
        os.kill(child.pid, signal.SIGINT)
        output, _ = child.communicate(timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, output
    assert "KeyboardInterrupt" not in output and "Traceback" not in output, output
