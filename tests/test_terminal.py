"""On a terminal: progress bars while a run works, log lines above them, a summary at the end.

A real `python -m archiver run` child with its stderr on a pseudo-terminal, as a person at a
shell sees it; the tests elsewhere run off a terminal, where the bars never show.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import sys
import termios
from pathlib import Path

from archiver.standin import DatasetSpec, Fault
from tests.conftest import StandInFactory
from tests.support import CHILD_ENV, config_dict, task_ids, write_config

SPEC = DatasetSpec(vth_tasks=12, chanjing_tasks=0, succeeded_share=1.0)


async def _run_on_terminal(*argv: str | Path) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a new pseudo-terminal; its exit status and text."""
    controller, terminal = pty.openpty()
    # A terminal 120 columns wide, as a window has: a bare pty is 0 wide, and no bar fits.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "archiver",
            *(str(a) for a in argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            env=CHILD_ENV,
        )
    finally:
        os.close(terminal)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = asyncio.create_task(asyncio.to_thread(drain))
    code = await asyncio.wait_for(child.wait(), 60)
    await asyncio.wait_for(reader, 10)
    os.close(controller)
    return code, b"".join(chunks).decode("utf-8", "replace")


async def test_a_run_on_a_terminal_shows_bars_then_a_summary(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    # One cover refused for good: its warning must be written above the bars, not through them.
    victim = standin.dataset.succeeded_vth()[0]
    cover = standin.dataset.media_path(victim["covering"])
    standin.faults.add(Fault("http_status", path=cover, value=404, times=-1))
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))

    code, text = await _run_on_terminal("run", "-c", config)

    assert code == 1, text  # one task failed
    for bar in ("tasks listed", "files", "received"):
        assert bar in text, text
    assert re.search(r"\r(?!\n)", text), text  # bars redraw in place (not the tty's \r\n)
    assert f"task {victim['id']}: cover: " in text and "HTTP 404" in text
    assert "archived 11 new tasks" in text, text
    assert "Traceback" not in text
    assert len(task_ids(tmp_path / "archive", "faceswap")) == 11
