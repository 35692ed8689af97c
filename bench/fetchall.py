"""`python -m bench.fetchall`: the least a Python program on aiohttp does per file.

A reference for the small-files case, beside curl and aria2c: the same URLs, 16 at a time over
one aiohttp session, each body hashed (sha256) and written to `<name>.part`, then renamed,
folders made as needed. No listing, sidecar, manifest or flush: what is left of the
archiver's time above this is its own bookkeeping; what this takes above curl is Python's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
from pathlib import Path

import aiohttp

PARALLEL = 16


def read_list(path: Path) -> list[tuple[str, str]]:
    """(url, output name) pairs from an aria2c input file (`URL` then `  out=NAME`)."""
    pairs: list[tuple[str, str]] = []
    url = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  out="):
            pairs.append((url, line[len("  out=") :]))
        elif line.strip():
            url = line.strip()
    return pairs


async def fetch_all(pairs: list[tuple[str, str]], target: Path) -> int:
    """Fetch every pair into `target`; returns the bytes written."""
    queue = iter(pairs)
    written = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal written
        for url, name in queue:
            async with session.get(url) as answer:
                answer.raise_for_status()
                body = await answer.read()
            hashlib.sha256(body).hexdigest()
            final = f"{target}/{name}"
            part = final + ".part"
            try:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(part), exist_ok=True)
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            try:
                os.write(fd, body)
            finally:
                os.close(fd)
            os.replace(part, final)
            written += len(body)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(PARALLEL)))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fetchall")
    parser.add_argument("list", type=Path, help="an aria2c input file")
    parser.add_argument("target", type=Path, help="the folder to write into")
    args = parser.parse_args()
    pairs = read_list(args.list)
    written = asyncio.run(fetch_all(pairs, args.target.resolve()))
    print(f"{len(pairs)} files, {written} bytes")


if __name__ == "__main__":
    main()
