"""`python -m bench.standin`: the stand-in's listing API for one benchmark dataset.

Like `python -m archiver.standin`, but the dataset is any `DatasetSpec`, given as JSON (the
benchmark wants every task succeeded, which the stand-in's own command line cannot say), and
nothing is recorded per request. The media URLs point at `--media-base-url` (nginx).
`--page-delay` holds each listing page back, as a real service's database takes its time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from archiver.standin import DatasetSpec, StandIn
from archiver.standin.faults import Fault


async def serve(
    spec: DatasetSpec, media_base_url: str, port_file: Path, page_delay: float = 0.0
) -> None:
    """Serve until SIGTERM or SIGINT; the API's URL is written to `port_file` once listening."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with StandIn(spec, media_base_url=media_base_url, record_requests=False) as standin:
        if page_delay > 0:
            # The stand-in's own `slow` fault, on every page of the listing.
            standin.faults.add(Fault("slow", "*/videoTaskHistory", times=-1, value=page_delay))
        partial = port_file.with_name(port_file.name + ".part")
        partial.write_text(json.dumps({"api_url": standin.api_url}), encoding="utf-8")
        partial.replace(port_file)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.standin")
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--spec", required=True, help="DatasetSpec fields as a JSON object")
    parser.add_argument("--media-base-url", required=True)
    parser.add_argument(
        "--page-delay", type=float, default=0.0, help="seconds before each listing page"
    )
    args = parser.parse_args()
    spec = DatasetSpec(**json.loads(args.spec))
    asyncio.run(serve(spec, args.media_base_url, args.port_file, args.page_delay))


if __name__ == "__main__":
    main()
