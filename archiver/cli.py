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
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archiver import __version__
from archiver.config.load import default_config_path, load_config
from archiver.config.settings import Config
from archiver.errors import ArchiverError, UsageError
from archiver.reporting.console import setup_logging
from archiver.reporting.redact import REDACT

if TYPE_CHECKING:
    from archiver.reporting.notify import Notifier
    from archiver.reporting.stats import RunStats

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
    run.add_argument(
        "--metrics-file",
        type=Path,
        metavar="FILE",
        help="write the run's metrics to FILE, in node_exporter's textfile format "
        "(default: metrics_file in the config)",
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
            "manifest (into the bucket, for an archive in a bucket)."
        ),
    )
    _config_option(index)
    index.set_defaults(handler=_cmd_index)

    demo = commands.add_parser(
        "demo",
        help="archive from a bundled stand-in of both services",
        description=(
            "Start a local stand-in of both services on a loopback port and archive from it "
            "into DIR, to see the whole thing work with no account. With --s3, archive into a "
            "bucket instead, DIR holding its manifest and run reports; the store's credentials "
            "come from the standard AWS chain and are written nowhere."
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
    demo.add_argument(
        "--s3",
        metavar="s3://BUCKET/PREFIX",
        help="archive into this bucket (it must exist); DIR is then its state folder",
    )
    demo.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="the S3 API's URL, for MinIO and the like (default: the AWS chain's, "
        "e.g. $AWS_ENDPOINT_URL, else AWS)",
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
    from archiver.reporting.notify import Notifier

    # Only the sources this run lists have their credentials read.
    config = load_config(args.config or default_config_path(), sources=args.source or None)
    REDACT.add(config.secrets)
    if args.dry_run:  # a dry run is no run to report on: no ping, no metrics
        return _run(config, args, None).exit_status
    notifier = Notifier(config.notify, archive=str(config.archive_dir))
    started = time.time()
    notifier.start()
    stats = None
    status = 1
    try:
        stats = _run(config, args, notifier)
        status = stats.exit_status
    except ArchiverError as exc:
        status = _ended_by(notifier, exc.exit_status, str(exc))
        raise
    except KeyboardInterrupt:
        status = _ended_by(notifier, 130, "interrupted")
        raise
    except Exception as exc:  # a bug: main logs it; whoever watches hears of it
        _ended_by(notifier, 1, f"unexpected error: {type(exc).__name__}: {exc}")
        raise
    finally:
        _write_metrics(args.metrics_file or config.metrics_file, config, stats, started, status)
    return status


def _run(config: Config, args: argparse.Namespace, notifier: Notifier | None) -> RunStats:
    # Imported here: the download machinery (aiohttp) is not needed by verify or status.
    from archiver.commands.run import RunOptions, print_summary, run_archive

    options = RunOptions(
        sources=tuple(args.source),
        dry_run=args.dry_run,
        full=args.full,
        progress=_interactive(args) and _verbosity(args) >= 0,
        report=args.report,
        on_end=notifier.run_ended if notifier is not None else None,
    )
    stats = run_archive(config, options)
    print_summary(stats, interactive=_interactive(args), verbosity=_verbosity(args))
    if stats.fatal:
        log.error("%s", stats.fatal)
    return stats


def _ended_by(notifier: Notifier, status: int, message: str) -> int:
    """Tell of a run stopped by an error before its report (a second telling does nothing)."""
    from archiver.reporting.notify import Outcome

    notifier.end(Outcome.of_error(status, message))
    return status


def _write_metrics(
    path: Path | None, config: Config, stats: RunStats | None, started: float, status: int
) -> None:
    from archiver.reporting.metrics import RunFacts, write_metrics

    if path is None:
        return
    try:
        facts = RunFacts.of_run(
            stats,
            started=started,
            ended=time.time(),
            exit_status=status,
            archive_dir=config.archive_dir,
        )
        write_metrics(path, facts)
    except (OSError, ArchiverError) as exc:  # metrics are a report: never fail a run over them
        log.warning("could not write the metrics file %s: %s", path, exc)


def _cmd_verify(args: argparse.Namespace) -> int:
    from archiver.commands.verify import run_verify

    config = _existing_archive(args)
    return run_verify(
        config,
        tuple(args.source),
        quick=args.quick,
        interactive=_interactive(args),
        verbosity=_verbosity(args),
    )


def _cmd_status(args: argparse.Namespace) -> int:
    from archiver.commands.status import archive_status, status_json, status_text
    from archiver.store.manifest import MANIFEST, ManifestStore

    config = _existing_archive(args)
    manifest = ManifestStore.open(config.archive_dir / MANIFEST, readonly=True)
    try:
        status = archive_status(manifest, template_sources=_template_sources(config))
    finally:
        manifest.close()
    if config.s3 is not None:
        from archiver.store.remote import uploads_in_progress

        status.uploads_in_progress = uploads_in_progress(config.s3)
    print(status_json(status) if args.json else status_text(status))
    return 0


def _template_sources(config: Config) -> frozenset[str]:
    return frozenset(s.name for s in config.sources if getattr(s.settings, "templates", False))


def _cmd_index(args: argparse.Namespace) -> int:
    config = _existing_archive(args)
    if config.s3 is not None:  # built from the state folder's manifest, into the bucket
        from archiver.catalog.bucket import write_bucket_catalog
        from archiver.store.remote import check_bucket

        check_bucket(config.s3)  # exit 2 for a bucket that cannot be used, as `run`
        print(write_bucket_catalog(config.s3, config.archive_dir))
        return 0
    from archiver.catalog.build import write_catalog

    print(write_catalog(config.archive_dir))
    return 0


def _existing_archive(args: argparse.Namespace) -> Config:
    """The config of a command that reads an archive, which must exist: it calls no source."""
    from archiver.store.manifest import MANIFEST

    config = load_config(args.config or default_config_path(), sources=(), notify=False)
    if not (config.archive_dir / MANIFEST).is_file():
        raise UsageError(
            f"{config.archive_dir}: no archive here: nothing has been archived yet (no {MANIFEST})"
        )
    return config


def _cmd_demo(args: argparse.Namespace) -> int:
    from archiver.commands.demo import demo_bucket, run_demo

    if args.s3_endpoint is not None and args.s3 is None:
        raise UsageError("--s3-endpoint: only with --s3 s3://BUCKET/PREFIX")
    return run_demo(
        args.dir,
        tasks=args.tasks,
        interactive=_interactive(args),
        verbosity=_verbosity(args),
        bucket=demo_bucket(args.s3, args.s3_endpoint) if args.s3 is not None else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in `argv` and return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    try:
        _setup(args)
    except UsageError as exc:  # no log yet to say it in
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ArchiverError as exc:
        log.error("%s", exc)
        if exc.__cause__ is not None:  # what went wrong underneath, for `-v`
            log.debug("caused by", exc_info=exc)
        return exc.exit_status
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.error("interrupted")
        return 130
    except Exception as exc:  # a bug: one redacted line, the traceback only with -v
        log.error("unexpected error: %s: %s", type(exc).__name__, exc)
        log.debug("traceback", exc_info=True)
        return 1
