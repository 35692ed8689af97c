"""The command line: `main(argv) -> int` is the one place errors become exit statuses.

0    every succeeded task listed was archived
1    the run finished, but some items failed (the next run retries them)
2    usage or configuration error; nothing was touched
3    a source could not be listed; the others were archived (3 wins over 1)
4    another run holds this archive
130  interrupted; the archive and manifest are consistent
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from archiver import __version__
from archiver.config import default_config_path, load_config
from archiver.errors import ArchiverError
from archiver.output import setup_logging
from archiver.redact import REDACT

log = logging.getLogger("archiver")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="archiver",
        description="Keep a complete, verified local archive of your generated videos.",
    )
    parser.add_argument("--version", action="version", version=f"archiver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="archive everything new",
        description=(
            "List every task of each configured source and archive the succeeded ones that are "
            "not archived yet."
        ),
    )
    _config_option(run)
    _source_option(run, "archive")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="list and report what would be archived; download and write nothing",
    )
    run.add_argument(
        "--full",
        action="store_true",
        help="list every page even where stop_after_known would end early",
    )
    run.add_argument(
        "--report", type=Path, metavar="FILE", help="also write the run report to FILE"
    )
    _output_options(run)
    run.set_defaults(handler=_cmd_run)

    verify = commands.add_parser(
        "verify",
        help="re-hash the archive against the manifest",
        description=(
            "Re-hash every archived file against the manifest and check every sidecar. Each task "
            "with a missing or changed file or a broken sidecar is named, and fetched again by the "
            "next run; changed bytes are kept in .archiver/quarantine/. Files the manifest does "
            "not know are named and left in place. Exit status 1 if anything is wrong."
        ),
    )
    _config_option(verify)
    _source_option(verify, "verify")
    verify.add_argument("--quick", action="store_true", help="check sizes only, without re-hashing")
    _output_options(verify)
    verify.set_defaults(handler=_cmd_verify)

    status = commands.add_parser(
        "status",
        help="show what is archived, failed and pending",
        description=(
            "Per source: tasks archived, files and bytes, tasks failed (with their last error) and "
            "pending; the recent runs and how they ended. Reads the manifest only; works while a "
            "run is going on."
        ),
    )
    _config_option(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_cmd_status)

    index = commands.add_parser(
        "index",
        help="rebuild the archive's index.html catalog",
        description=(
            "Write <archive_dir>/index.html, a browsable offline catalog of the archive, from the "
            "manifest and the sidecars."
        ),
    )
    _config_option(index)
    index.set_defaults(handler=_cmd_index)

    demo = commands.add_parser(
        "demo",
        help="archive from a bundled stand-in of both services",
        description=(
            "Start a local stand-in of both services on a loopback port and archive from it "
            "into DIR, to see the whole thing work with no account."
        ),
    )
    demo.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("archiver-demo"),
        metavar="DIR",
        help="where to put the demo archive (default: %(default)s)",
    )
    demo.add_argument(
        "--tasks",
        type=int,
        default=150,
        metavar="N",
        help="tasks per service in the stand-in (default: %(default)s)",
    )
    _output_options(demo)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def _source_option(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME",
        help=f"{verb} only this source (repeatable)",
    )


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help="the config file (default: $ARCHIVER_CONFIG, then ./config.yaml)",
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="say more")
    loudness.add_argument("-q", "--quiet", action="store_true", help="errors only")
    parser.add_argument("--log-file", type=Path, metavar="FILE", help="also log to FILE")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as text or one JSON object each (default: text)",
    )


def _verbosity(args: argparse.Namespace) -> int:
    return 1 if getattr(args, "verbose", False) else -1 if getattr(args, "quiet", False) else 0


def _interactive(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() and not getattr(args, "no_progress", False)


def _setup(args: argparse.Namespace) -> None:
    setup_logging(
        verbosity=_verbosity(args),
        interactive=_interactive(args),
        log_file=getattr(args, "log_file", None),
        log_format=getattr(args, "log_format", "text"),
    )


def _cmd_run(args: argparse.Namespace) -> int:
    # Imported here: the download machinery (aiohttp) is not needed by verify or status.
    from archiver.runner import RunOptions, print_summary, run_archive

    config = load_config(args.config or default_config_path())
    REDACT.add(config.secrets)
    options = RunOptions(
        sources=tuple(args.source),
        dry_run=args.dry_run,
        full=args.full,
        progress=_interactive(args) and _verbosity(args) >= 0,
        report=args.report,
    )
    stats = run_archive(config, options)
    print_summary(stats, interactive=_interactive(args), verbosity=_verbosity(args))
    if stats.fatal:
        log.error("%s", stats.fatal)
    return stats.exit_status


def _cmd_verify(args: argparse.Namespace) -> int:
    from archiver.verify import run_verify

    config = load_config(args.config or default_config_path())
    REDACT.add(config.secrets)
    return run_verify(
        config,
        tuple(args.source),
        quick=args.quick,
        interactive=_interactive(args),
        verbosity=_verbosity(args),
    )


def _cmd_status(args: argparse.Namespace) -> int:
    from archiver.manifest import MANIFEST, ManifestStore
    from archiver.status import archive_status, status_json, status_text

    config = load_config(args.config or default_config_path())
    manifest = ManifestStore.open(config.archive_dir / MANIFEST, readonly=True)
    try:
        status = archive_status(manifest)
    finally:
        manifest.close()
    print(status_json(status) if args.json else status_text(status))
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from archiver.catalog import write_catalog

    config = load_config(args.config or default_config_path())
    print(write_catalog(config.archive_dir))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from archiver.demo import run_demo

    return run_demo(
        args.dir, tasks=args.tasks, interactive=_interactive(args), verbosity=_verbosity(args)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv` and return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    _setup(args)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ArchiverError as exc:
        log.error("%s", exc)
        return exc.exit_status
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.error("interrupted")
        return 130
    except Exception as exc:  # a bug: one redacted line, the traceback only with -v
        log.error("unexpected error: %s: %s", type(exc).__name__, exc)
        log.debug("traceback", exc_info=True)
        return 1


def entry_point() -> None:
    """The `archiver` console script."""
    sys.exit(main())
