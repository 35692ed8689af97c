"""`python -m bench.filewrites`: writing files the way archiver does, beside aiofiles.

The question it answers: does `aiofiles` earn its place as a dependency? Two workloads, each
written twice into a fresh temporary folder:

- 3,000 files of 30 KB: archiver writes a body this small with plain `os` calls right on the
  event loop (see `archiver.net.partfile.INLINE_BYTES`); aiofiles hops to a thread for each of
  open, write and close.
- one file of 512 MiB in 256 KiB blocks: archiver hands each block to a worker thread
  (`asyncio.to_thread`), as aiofiles does for each write.

Prints wall and CPU time (all threads of the process) of each, the best of a few rounds.
Needs `pip install aiofiles`, which archiver itself does not.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

SMALL_FILES = 3000
SMALL_BYTES = 30_000
LARGE_BYTES = 512 << 20
BLOCK = 1 << 18  # archiver's block for large files (`archiver.net.partfile.BLOCK`)
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC

Writer = Callable[[str], Coroutine[Any, Any, None]]


async def small_os(folder: str) -> None:
    """Archiver today: open, write and close on the loop, no thread hop."""
    body = os.urandom(SMALL_BYTES)
    for n in range(SMALL_FILES):
        fd = os.open(f"{folder}/{n}.part", FLAGS, 0o644)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)


async def large_os(folder: str) -> None:
    """Archiver today: one worker-thread hop per 256 KiB block."""
    block = os.urandom(BLOCK)
    fd = os.open(f"{folder}/large.part", FLAGS, 0o644)
    try:
        for _ in range(LARGE_BYTES // BLOCK):
            await asyncio.to_thread(os.write, fd, block)
    finally:
        os.close(fd)


def _aiofiles() -> Any:
    # Imported by name: aiofiles is not a dependency of archiver, and has no stubs here.
    return importlib.import_module("aiofiles")


async def small_aiofiles(folder: str) -> None:
    """aiofiles: open, write and close, each one a thread hop."""
    aiofiles = _aiofiles()
    body = os.urandom(SMALL_BYTES)
    for n in range(SMALL_FILES):
        async with aiofiles.open(f"{folder}/{n}.part", "wb") as out:
            await out.write(body)


async def large_aiofiles(folder: str) -> None:
    """aiofiles: one thread hop per 256 KiB block, through a buffered file."""
    aiofiles = _aiofiles()
    block = os.urandom(BLOCK)
    async with aiofiles.open(f"{folder}/large.part", "wb") as out:
        for _ in range(LARGE_BYTES // BLOCK):
            await out.write(block)


def measure(writer: Writer, parent: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of `writer` into a new folder under `parent`."""
    folder = tempfile.mkdtemp(dir=parent)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        asyncio.run(writer(folder))
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        shutil.rmtree(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cases: list[tuple[str, Writer]] = [
        ("3,000 x 30 KB, os calls on the loop", small_os),
        ("3,000 x 30 KB, aiofiles", small_aiofiles),
        ("512 MiB, thread per 256 KiB block", large_os),
        ("512 MiB, aiofiles", large_aiofiles),
    ]
    print(f"{'case':40} {'wall s':>8} {'CPU s':>8}  (best of {args.rounds})")
    for name, writer in cases:
        # Alternating would be fairer on a busy machine; the best of rounds is close enough.
        runs = [measure(writer, args.dir) for _ in range(args.rounds)]
        wall = min(r[0] for r in runs)
        cpu = min(r[1] for r in runs)
        print(f"{name:40} {wall:8.2f} {cpu:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
