"""Running the archiving job in one process: lock, manifest, job, then the files that follow.

Shared by `archiver run` and `archiver demo`. Signals: SIGINT and SIGTERM cancel the job, which
records what finished, keeps `.part` files, and returns; the run then exits 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from archiver import interrupts
from archiver.config.settings import BucketSettings, Config, SourceConfig
from archiver.errors import ArchiveBusy, ArchiverError, ConfigError, UsageError
from archiver.pipeline.job import ArchiveJob
from archiver.pipeline.listing import Progress
from archiver.reporting.console import BarProgress, NoProgress, summary_lines
from archiver.reporting.redact import REDACT
from archiver.reporting.runreport import report_document, write_report
from archiver.reporting.stats import RunStats
from archiver.store.backend import ArchiveStore, store_of
from archiver.store.lock import ArchiveLock
from archiver.store.manifest import MANIFEST, ManifestStore
from archiver.store.rebuildfs import rebuild_due, rebuild_manifest

if TYPE_CHECKING:
    from archiver.store.remote import BucketLock

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
    # Called once the run's outcome is known, before the report is written (notifications);
    # what it returns are warnings for the report.
    on_end: Callable[[RunStats], list[str]] | None = None


def select_sources(config: Config, names: tuple[str, ...]) -> tuple[SourceConfig, ...]:
    """The configured sources named on the command line (all of them if none)."""
    known = {s.name: s for s in config.sources}
    for name in names:
        if name not in known:
            raise UsageError(f"no source named {name!r} in {config.path}")
    chosen = tuple(known[n] for n in dict.fromkeys(names)) if names else config.sources
    for source in chosen:
        if not source.resolved:  # a config loaded for another command: no credential read
            raise UsageError(f"source {source.name!r} was loaded without its credentials")
    return chosen


def run_archive(config: Config, options: RunOptions) -> RunStats:
    """One archiving run; the caller prints nothing but what this logs."""
    if config.demo:
        into = "" if config.s3 is None else f" --s3 {config.s3.url}"
        if config.s3 is not None and config.s3.endpoint_url:
            into += f" --s3-endpoint {config.s3.endpoint_url}"
        raise UsageError(
            f"{config.path}: the demo's config: its stand-in services run only inside "
            f"`archiver demo`; `archiver demo{into} {config.archive_dir}` archives from them again"
        )
    sources = select_sources(config, options.sources)
    if options.dry_run:
        return _dry_run(config, sources)
    if config.s3 is not None:
        return _bucket_run(config, config.s3, sources, options)
    create_archive_dir(config)
    with ArchiveLock(config.archive_dir):
        # A `-wal` left of a lost manifest is not read into the new one: SQLite starts it anew.
        lost = not (config.archive_dir / MANIFEST).exists()
        manifest = ManifestStore.open(config.archive_dir / MANIFEST)
        try:
            # A stat and two small queries: all that a run whose manifest is there pays.
            if lost or rebuild_due(manifest):
                options = _rebuilt(config, manifest, options, lost=lost)
            return _locked_run(config, manifest, sources, options)
        finally:
            manifest.close()


def _rebuilt(
    config: Config, manifest: ManifestStore, opts: RunOptions, *, lost: bool
) -> RunOptions:
    """Rebuild a lost manifest from the sidecars; the options, with a note for the report.

    Not `lost`: a rebuild that a killed run cut short, finished now.
    """
    # Every configured source, not only this run's: the manifest is rebuilt once.
    done = rebuild_manifest(config.archive_dir, [s.name for s in config.sources], manifest)
    if not (done.sidecars or done.skipped):
        return opts  # a new archive
    how = "no manifest; rebuilt it" if lost else "the manifest's rebuild was cut short; ended it"
    refused = "1 item" if done.refused == 1 else f"{done.refused} items"
    skipped = f", {done.skipped} unusable sidecars skipped" if done.skipped else ""
    note = (
        f"{config.archive_dir}: {how} from {done.sidecars} sidecars "
        f"({refused} whose files did not check out fetched again{skipped})"
    )
    log.warning("%s", note)
    on_end = opts.on_end

    def noted(stats: RunStats) -> list[str]:
        return [note, *(on_end(stats) if on_end is not None else ())]

    return replace(opts, on_end=noted)


def _bucket_run(
    config: Config, bucket: BucketSettings, sources: tuple[SourceConfig, ...], opts: RunOptions
) -> RunStats:
    """A run into a bucket: the state folder's lock, then the bucket's, then the run."""
    from archiver.store.remote import (
        BucketLock,
        adopt_from_sidecars,
        check_bucket,
        publish_manifest,
        take_over,
    )

    check_bucket(bucket)  # exit 2 before anything is listed or written
    create_archive_dir(config)
    with ArchiveLock(config.archive_dir), BucketLock(bucket, config.archive_dir) as lock:
        path = config.archive_dir / MANIFEST
        lost = not path.exists()
        if lost and take_over(bucket, path):
            log.warning(
                "%s: no manifest in %s; took over the archive from the bucket's copy",
                bucket.url,
                config.archive_dir,
            )
        manifest = ManifestStore.open(path)
        try:
            if lost:
                # What the copy does not list (a run killed before it was made), the sidecars do.
                adopted = adopt_from_sidecars(bucket, manifest)
                if adopted:
                    log.warning("%s: took over %d items from their sidecars", bucket.url, adopted)
            stats = _locked_run(config, manifest, sources, opts, lock)
            if lock.lost is not None:  # another run writes there now: not a byte more of ours
                raise ArchiveBusy(lock.lost)
            # The bucket alone must be a complete archive: its manifest copy too.
            _attempt(stats, publish_manifest, bucket, manifest, config.archive_dir)
            return stats
        finally:
            manifest.close()


def create_archive_dir(config: Config) -> None:
    """Create the archive's folder; one that cannot be made is a configuration error."""
    folder = config.archive_dir
    where = f"{config.path}: archive_dir"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConfigError(f"{where}: not a folder: {_in_the_way(folder)}") from exc
    except PermissionError as exc:
        raise ConfigError(f"{where}: permission denied: {folder}") from exc
    except OSError as exc:
        # /proc and the like refuse a new folder with ENOENT, which reads as nonsense.
        if exc.errno == errno.ENOENT:
            reason = f"{_deepest_existing(folder)} takes no new folders"
        else:
            reason = exc.strerror or str(exc)
        raise ConfigError(f"{where}: cannot create {folder}: {reason}") from exc


def _in_the_way(folder: Path) -> Path:
    """The first part of `folder` that exists and is not a folder."""
    for part in reversed((folder, *folder.parents)):
        if part.exists() and not part.is_dir():
            return part
    return folder


def _deepest_existing(folder: Path) -> Path:
    return next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))


def _locked_run(
    config: Config,
    manifest: ManifestStore,
    sources: tuple[SourceConfig, ...],
    opts: RunOptions,
    lock: BucketLock | None = None,
) -> RunStats:
    started_at = datetime.now(UTC)
    run_id = manifest.begin_run(opts.command)
    progress: Progress = BarProgress() if opts.progress else NoProgress()
    job = ArchiveJob(config, manifest, progress, run_id=run_id, full=opts.full)
    # A signal that comes after the job waits until its report is written and its row closed.
    with signals_held():
        try:
            stats = run_cancellable(lambda: job.run(sources), lock.watch if lock else None)
        except Exception as exc:  # the job keeps its own errors: a bug, or the manifest
            stats = job.stats
            stats.fatal = stats.fatal or _describe(exc)
            log.debug("traceback", exc_info=True)
        finally:
            if isinstance(progress, BarProgress):
                progress.close()
        lost = lock.lost if lock is not None else None
        if lost is not None:  # the job was stopped by the lost lock, not by a signal
            stats.interrupted = False
            stats.fatal = lost
            stats.busy = True
        finish_run(config, manifest, run_id, stats, opts, started_at, publish=lost is None)
    return stats


def finish_run(
    config: Config,
    manifest: ManifestStore,
    run_id: int,
    stats: RunStats,
    opts: RunOptions,
    started_at: datetime | None = None,
    *,
    publish: bool = True,
) -> None:
    """What follows a run: checksums, the catalog, the report, the manifest's run record.

    Each is tried whatever became of the ones before: a step that fails makes the run's exit
    status 1 and says why in one line, and the run record is closed in any case. Without
    `publish` (a bucket another run holds now), nothing more is written into the archive.
    """
    store = store_of(config)
    try:
        for name in stats.sources if publish else ():
            _attempt(stats, store.publish_checksums, manifest, name)
        if config.catalog and publish:
            _write_catalog(store, config.archive_dir, eventful=stats.eventful)
    finally:
        store.close()
    if opts.on_end is not None:
        stats.warnings.extend(opts.on_end(stats))
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
    manifest.finish_run(run_id, stats.exit_status, run_summary(stats, document["totals"]))


def run_summary(stats: RunStats, totals: dict[str, Any]) -> dict[str, Any]:
    """What the manifest keeps of a run for `status`: the totals, and what went wrong."""
    failed = {n: REDACT(s.listing_error) for n, s in stats.sources.items() if s.listing_error}
    return {**totals, "listing_errors": failed, "fatal": stats.fatal and REDACT(stats.fatal)}


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


def _write_catalog(store: ArchiveStore, state_dir: Path, *, eventful: bool) -> None:
    """The catalog, after a run with news or where there is none yet; the run holds the lock."""
    try:
        store.publish_catalog(state_dir, eventful=eventful)
    except Exception as exc:  # the catalog is a convenience: never fail a backup over it
        log.warning("could not write the catalog index.html: %s", exc)


def _dry_run(config: Config, sources: tuple[SourceConfig, ...]) -> RunStats:
    path = config.archive_dir / MANIFEST
    manifest = ManifestStore.open(path, readonly=True) if path.exists() else None
    try:
        job = ArchiveJob(config, manifest, NoProgress(), dry_run=True)
        return run_cancellable(lambda: job.run(sources))
    finally:
        if manifest is not None:
            manifest.close()


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait while the block runs; one that came strikes at its end.

    Their handlers are put back as they were, too: asyncio leaves SIGTERM at the system's
    default when it lets go of it, which would end the process without a word.
    """
    # Signal handlers belong to the main thread; elsewhere (embedded use) there are none.
    handled = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if handled else ()
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a signal held back strikes here


def run_cancellable(
    start: Callable[[], Coroutine[Any, Any, T]],
    watch: Callable[[Callable[[], None] | None], None] | None = None,
) -> T:
    """Run the coroutine `start()` makes on a new event loop; SIGINT and SIGTERM cancel it.

    `watch` is handed a function that cancels it from another thread (a lost bucket lock),
    and None once the loop is gone.

    The signals are let through only while the loop's handlers are in place: one that comes
    before or after waits (`signals_held`), so nothing is left half made: no coroutine never
    awaited, no loop never closed.
    """
    handled = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if handled else ()

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in signals:
            loop.add_signal_handler(sig, task.cancel)
        if watch is not None:

            def cancel() -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(task.cancel)

            watch(cancel)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
        if handled and interrupts.pending():
            task.cancel()  # a signal before the loop, dropped by a finalizer it struck in
        try:
            return await start()
        finally:
            if watch is not None:
                watch(None)
            signal.pthread_sigmask(signal.SIG_BLOCK, signals)
            for sig in signals:
                loop.remove_signal_handler(sig)

    with signals_held():
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
