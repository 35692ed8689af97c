"""`python -m bench.standin`: the stand-in's listing API for one benchmark dataset.

Like `python -m archiver.standin`, but the dataset is any `DatasetSpec`, given as JSON (the
benchmark wants every task succeeded, which the stand-in's own command line cannot say), and
nothing is recorded per request. The media URLs point at `--media-base-url` (nginx).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from archiver.standin import DatasetSpec, StandIn


async def serve(spec: DatasetSpec, media_base_url: str, port_file: Path) -> None:
    """Serve until SIGTERM or SIGINT; the API's URL is written to `port_file` once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with StandIn(spec, media_base_url=media_base_url, record_requests=False) as standin:
        partial = port_file.with_name(port_file.name + ".part")
        partial.write_text(json.dumps({"api_url": standin.api_url}), encoding="utf-8")
        partial.replace(port_file)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.standin")
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--spec", required=True, help="DatasetSpec fields as a JSON object")
    parser.add_argument("--media-base-url", required=True)
    args = parser.parse_args()
    spec = DatasetSpec(**json.loads(args.spec))
    asyncio.run(serve(spec, args.media_base_url, args.port_file))


if __name__ == "__main__":
    main()
