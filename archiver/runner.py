"""Running the archiving job in one process: lock, manifest, job, then the files that follow.

Shared by `archiver run` and `archiver demo`. Signals: SIGINT and SIGTERM cancel the job, which
records what finished, keeps `.part` files, and returns; the run then exits 130.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from archiver.checksums import write_checksums
from archiver.errors import ArchiverError, ArchiveWriteError, UsageError
from archiver.job import ArchiveJob, Progress
from archiver.lock import ArchiveLock
from archiver.manifest import MANIFEST, ManifestStore
from archiver.output import BarProgress, NoProgress, summary_lines
from archiver.report import report_document, write_report
from archiver.settings import Config, SourceConfig
from archiver.stats import RunStats

T = TypeVar("T")
log = logging.getLogger("archiver")


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked of one run."""

    sources: tuple[str, ...] = ()
    dry_run: bool = False
    full: bool = False
    progress: bool = False
    report: Path | None = None
    command: str = "run"


def select_sources(config: Config, names: tuple[str, ...]) -> tuple[SourceConfig, ...]:
    """The configured sources named on the command line (all of them if none)."""
    if not names:
        return config.sources
    known = {s.name: s for s in config.sources}
    for name in names:
        if name not in known:
            raise UsageError(f"no source named {name!r} in {config.path}")
    return tuple(known[n] for n in dict.fromkeys(names))


def run_archive(config: Config, options: RunOptions) -> RunStats:
    """One archiving run; the caller prints nothing but what this logs."""
    sources = select_sources(config, options.sources)
    if options.dry_run:
        return _dry_run(config, sources)
    try:
        config.archive_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot create {config.archive_dir}: {exc.strerror}") from None
    with ArchiveLock(config.archive_dir):
        manifest = ManifestStore.open(config.archive_dir / MANIFEST)
        try:
            return _locked_run(config, manifest, sources, options)
        finally:
            manifest.close()


def _locked_run(
    config: Config,
    manifest: ManifestStore,
    sources: tuple[SourceConfig, ...],
    opts: RunOptions,
) -> RunStats:
    started_at = datetime.now(UTC)
    run_id = manifest.begin_run(opts.command)
    progress: Progress = BarProgress() if opts.progress else NoProgress()
    job = ArchiveJob(config, manifest, progress, run_id=run_id, full=opts.full)
    try:
        stats = run_cancellable(job.run(sources))
    except Exception as exc:  # the job keeps its own errors: this is a bug, or the manifest
        stats = job.stats
        stats.fatal = stats.fatal or _describe(exc)
        log.debug("traceback", exc_info=True)
    finally:
        if isinstance(progress, BarProgress):
            progress.close()
    finish_run(config, manifest, run_id, stats, opts, started_at)
    return stats


def finish_run(
    config: Config,
    manifest: ManifestStore,
    run_id: int,
    stats: RunStats,
    opts: RunOptions,
    started_at: datetime | None = None,
) -> None:
    """What follows a run: checksums, the catalog, the report, the manifest's run record.

    Each is tried whatever became of the ones before: a step that fails makes the run's exit
    status 1 and says why in one line, and the run record is closed in any case.
    """
    for name in stats.sources:
        _attempt(stats, write_checksums, manifest, config.archive_dir, name)
    if config.catalog and (stats.eventful or not (config.archive_dir / "index.html").exists()):
        _write_catalog(config.archive_dir)
    document = report_document(
        stats,
        command=opts.command,
        started_at=started_at or datetime.now(UTC),
        exit_status=stats.exit_status,
    )
    _attempt(
        stats, write_report, config.archive_dir, document, keep=config.keep_reports,
        extra=opts.report,
    )  # fmt: skip
    manifest.finish_run(run_id, stats.exit_status, document["totals"])


def _attempt(stats: RunStats, step: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Run one step after the run; its failure becomes the run's (the first one is shown)."""
    try:
        step(*args, **kwargs)
    except Exception as exc:  # whatever it is, the run record must be closed
        if stats.fatal is None:
            stats.fatal = _describe(exc)
        else:
            log.error("%s", _describe(exc))
        log.debug("traceback", exc_info=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ArchiverError):
        return str(exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _write_catalog(archive_dir: Path) -> None:
    # Imported here: a run that changed nothing, the usual nightly one, does not need it.
    from archiver.catalog import write_catalog

    try:
        write_catalog(archive_dir)
    except Exception as exc:  # the catalog is a convenience: never fail a backup over it
        log.warning("could not write the catalog index.html: %s", exc)


def _dry_run(config: Config, sources: tuple[SourceConfig, ...]) -> RunStats:
    path = config.archive_dir / MANIFEST
    manifest = ManifestStore.open(path, readonly=True) if path.exists() else None
    try:
        job = ArchiveJob(config, manifest, NoProgress(), dry_run=True)
        return run_cancellable(job.run(sources))
    finally:
        if manifest is not None:
            manifest.close()


def run_cancellable(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on a new event loop; SIGINT and SIGTERM cancel it."""

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        # Signal handlers belong to the main thread; elsewhere (embedded use) there are none.
        handled = threading.current_thread() is threading.main_thread()
        signals = (signal.SIGINT, signal.SIGTERM) if handled else ()
        for sig in signals:
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await coroutine
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def print_summary(
    stats: RunStats, *, interactive: bool, verbosity: int, stream: IO[str] | None = None
) -> None:
    """The closing summary: always on a terminal, off a terminal only when there is news."""
    if verbosity < 0 or not (interactive or stats.eventful or verbosity > 0):
        return
    out = stream or sys.stderr
    for line in summary_lines(stats):
        print(line, file=out)
