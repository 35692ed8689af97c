"""`python -m archiver.standin`: run the stand-in in its own process until SIGTERM or Ctrl-C.

For tests that need the stand-in in a process of its own, and for trying the archiver by hand;
`--fault` arms faults from the start (a test whose stand-in runs in its own event loop arms
them directly instead). Once both sites listen, their URLs are written as JSON to
`--port-file` (atomically: a reader polling for the file never sees half of it) and printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from archiver.standin import server
from archiver.standin.dataset import DatasetSpec
from archiver.standin.faults import Fault
from archiver.standin.server import StandIn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of the stand-in."""
    parser = argparse.ArgumentParser(
        prog="python -m archiver.standin",
        description="Serve a stand-in of both video services on loopback.",
    )
    parser.add_argument("--port-file", type=Path, help="write the URLs here as JSON")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, default=0, help="default: any free port")
    parser.add_argument("--media-port", type=int, default=0, help="default: any free port")
    parser.add_argument("--vth-tasks", type=int, default=DatasetSpec.vth_tasks)
    parser.add_argument("--chanjing-tasks", type=int, default=DatasetSpec.chanjing_tasks)
    parser.add_argument("--templates", type=int, default=DatasetSpec.templates)
    parser.add_argument("--seed", type=int, default=DatasetSpec.seed)
    parser.add_argument("--media-min-bytes", type=int, default=DatasetSpec.media_min_bytes)
    parser.add_argument("--media-max-bytes", type=int, default=DatasetSpec.media_max_bytes)
    parser.add_argument("--media-base-url", help="point media URLs at another host")
    parser.add_argument("--vth-token", default=server.DEMO_VTH_TOKEN)
    parser.add_argument("--chanjing-app-id", default=server.DEMO_CHANJING_APP_ID)
    parser.add_argument("--chanjing-secret-key", default=server.DEMO_CHANJING_SECRET_KEY)
    parser.add_argument("--chanjing-access-token", default=server.DEMO_CHANJING_ACCESS_TOKEN)
    parser.add_argument("--qps-limit", type=int, default=10)
    parser.add_argument(
        "--no-request-log", action="store_true", help="keep counters only (large datasets)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=parse_fault,
        help='arm a fault, as JSON: \'{"kind": "slow", "path": "/media/*", "value": 2}\'',
    )
    return parser.parse_args(argv)


def parse_fault(text: str) -> Fault:
    """A `Fault` from its JSON form (the dataclass's fields as keys)."""
    try:
        fields = json.loads(text)
        return Fault(**fields)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"not a fault: {text!r} ({exc})") from exc


async def serve(args: argparse.Namespace) -> None:
    """Run the stand-in until SIGTERM or SIGINT."""
    spec = DatasetSpec(
        vth_tasks=args.vth_tasks,
        chanjing_tasks=args.chanjing_tasks,
        templates=args.templates,
        seed=args.seed,
        media_min_bytes=args.media_min_bytes,
        media_max_bytes=args.media_max_bytes,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with StandIn(
        spec,
        vth_token=args.vth_token,
        chanjing_app_id=args.chanjing_app_id,
        chanjing_secret_key=args.chanjing_secret_key,
        chanjing_access_token=args.chanjing_access_token or None,
        host=args.host,
        media_base_url=args.media_base_url,
        qps_limit=args.qps_limit,
        record_requests=not args.no_request_log,
        api_port=args.api_port,
        media_port=args.media_port,
    ) as standin:
        for fault in args.fault:
            standin.faults.add(fault)
        urls = {"api_url": standin.api_url, "media_url": standin.media_url}
        if args.port_file is not None:
            partial = args.port_file.with_name(args.port_file.name + ".part")
            partial.write_text(json.dumps(urls), encoding="utf-8")
            partial.replace(args.port_file)
        print(json.dumps(urls), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit status 0 after a clean stop."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
