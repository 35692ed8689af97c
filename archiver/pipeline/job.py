"""The archiving job: sources -> records -> download pipeline -> archive + manifest.

Each source is listed by its own task, page by page (see `listing`), into one bounded queue of
items. One opener takes them in listing order, opens each item's place and queues its files,
and a fixed pool of `concurrency` download slots takes files, not items: a slot that finishes
a file takes the next one of any item, so a task's cover never waits behind its video and no
slot idles while files are waiting; a slot with no file left takes half of the largest
download still coming (`archiver.net.segments`). Whoever completes an item's last file writes
its sidecar and hands it to the batch of items to flush and record (one flush and one
manifest transaction per batch). Downloads begin while listing goes on, and memory stays flat
however long the list: both queues are bounded. The job is the one place that catches what
stops a run and says why. This module imports no concrete source.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from archiver.catalog.describe import describe_item
from archiver.config.settings import Config, SourceConfig
from archiver.errors import ArchiverError, ArchiveWriteError
from archiver.net.http import HttpClient
from archiver.net.segments import SplitBoard
from archiver.pipeline.item import ItemLimits, ItemResult, ItemRun, ItemTask, open_item
from archiver.pipeline.listing import Progress, SourceLister, WorkItem
from archiver.reporting.repeats import FAILED, RepeatedWarnings
from archiver.reporting.runreport import rejected_before
from archiver.reporting.stats import RunStats
from archiver.sources import SourceContext
from archiver.store.backend import ArchiveStore, open_store
from archiver.store.durable import BatchCommitter
from archiver.store.freespace import FreeSpace
from archiver.store.manifest import ManifestStore, Outcome
from archiver.store.paths import within

log = logging.getLogger("archiver")

QUEUE_PER_WORKER = 64  # items listed ahead of the downloads, per download slot
FILES_AHEAD = 2  # files of opened items waiting for a slot, per slot


class ArchiveJob:
    """One run over the configured sources."""

    def __init__(
        self,
        config: Config,
        manifest: ManifestStore | None,
        progress: Progress,
        *,
        run_id: int = 0,
        dry_run: bool = False,
        full: bool = False,
    ) -> None:
        self.config = config
        self.root = config.archive_dir
        self.manifest = manifest
        self.progress = progress
        self.run_id = run_id
        self.dry_run = dry_run
        self.full = full
        names = [s.name for s in config.sources]
        self.stats = RunStats(dry_run=dry_run, rejected_before=rejected_before(self.root, names))
        self._committer: BatchCommitter | None = None
        self._warnings = RepeatedWarnings(log)
        self._counters: dict[str, Callable[[int], None]] = {}
        self._running: set[ItemRun] = set()  # items opened and not finished: closed at the end
        # A bucket archive keeps nothing but its manifest and reports on the local disk.
        self.space = FreeSpace(str(self.root), config.min_free_space) if not config.s3 else None
        # Where the items go: the archive's folder or its bucket, open while the pipeline runs.
        self._store: ArchiveStore | None = None
        # Downloads an idle slot may take the upper half of; only into a local folder.
        splitting = config.split_files and config.s3 is None and not dry_run
        self._splits = SplitBoard() if splitting else None
        self._lister = SourceLister(
            config,
            manifest,
            progress,
            self.stats,
            self._warnings,
            run_id=run_id,
            dry_run=dry_run,
            full=full,
        )

    async def run(self, sources: tuple[SourceConfig, ...]) -> RunStats:
        """Archive everything new from `sources`; returns the run's statistics."""
        for cfg in sources:
            self.stats.source(cfg.name)
        if not self.dry_run and not self._room_to_start():
            return self.stats
        if self.manifest is not None and not self.dry_run:
            self._begin(sources)
        try:
            await self._pipeline(sources)
        except asyncio.CancelledError:
            self.stats.interrupted = True
        finally:
            await self._close(sources)
        stopped = self.stats.interrupted or self.stats.fatal
        if self.manifest is not None and not self.dry_run and not stopped:
            self._record_source_states(sources)  # else they stay unclean, as marked above
        return self.stats

    def _room_to_start(self) -> bool:
        """Short of min_free_space: first the run's own `.part` files go, else it stops."""
        if self.space is None:
            return True
        try:
            self.space.make_room(cfg.name for cfg in self.config.sources)
        except ArchiveWriteError as exc:
            self.stats.fatal = str(exc)
            self.stats.duration = time.monotonic() - self.stats.started
            return False
        return True

    def _begin(self, sources: tuple[SourceConfig, ...]) -> None:
        assert self.manifest is not None
        # A bucket's objects are durable once their upload returns: nothing to flush.
        fsync = self.config.durability == "fsync" and self.config.s3 is None
        self._committer = BatchCommitter(self.manifest, self.run_id, self.root, fsync=fsync)
        # Decided before this run marks the sources unclean: until it ends cleanly, the
        # next run must not trust an early stop.
        self._lister.incremental = {
            cfg.name: self._lister.incremental_allowed(cfg) for cfg in sources
        }
        for cfg in sources:
            self.manifest.set_source_state(cfg.name, listed_to_end=False, clean=False)

    async def _pipeline(self, sources: tuple[SourceConfig, ...]) -> None:
        """The listers, the opener and the download slots, until all is done or the run stops."""
        items: asyncio.Queue[WorkItem | None] = asyncio.Queue(
            QUEUE_PER_WORKER * self.config.concurrency
        )
        # Files opened ahead of the slots: enough that a slot finishing one finds the next.
        files: asyncio.Queue[_FileWork | None] = asyncio.Queue(
            FILES_AHEAD * self.config.concurrency
        )
        http = HttpClient(self.config.http, bandwidth_limit=self.config.bandwidth_limit)
        try:
            # Exits in reverse: every task ends, then the HTTP session closes.
            store = open_store(
                self.config,
                self.space,
                connections=2 * self.config.concurrency,
                dry_run=self.dry_run,
            )
            async with http, store as self._store, asyncio.TaskGroup() as group:
                context = SourceContext(http)
                if self._committer is not None:
                    group.create_task(self._committer.run())
                opener = group.create_task(self._open_items(items, files))
                slots = [
                    group.create_task(self._download_slot(http, files))
                    for _ in range(self.config.concurrency)
                ]
                listers = [
                    group.create_task(self._lister.list_source(cfg, context, items))
                    for cfg in sources
                ]
                await asyncio.gather(*listers)
                await items.put(None)
                await opener
                await asyncio.gather(*slots)
                if self._committer is not None:
                    await self._committer.close()
        except* ArchiverError as group:
            # A full disk or an unwritable archive: stop everything, say why.
            self.stats.fatal = str(group.exceptions[0])
        except* Exception as group:  # a bug: the run still ends with its report
            self.stats.fatal = self.stats.fatal or _unexpected(group.exceptions[0])
            log.debug("traceback", exc_info=group.exceptions[0])

    async def _close(self, sources: tuple[SourceConfig, ...]) -> None:
        for run in self._running:  # a stopped run's items: each retried next time
            run.close()
        self._running.clear()
        if self._committer is not None:
            # What finished before the stop is recorded; the rest is retried next time.
            try:
                await self._committer.close()
            except ArchiveWriteError as exc:  # the manifest's disk is full too
                self.stats.fatal = self.stats.fatal or str(exc)
        self.stats.duration = time.monotonic() - self.stats.started
        for cfg in sources:
            self._warnings.close(cfg.name)

    async def _open_items(
        self, items: asyncio.Queue[WorkItem | None], files: asyncio.Queue[_FileWork | None]
    ) -> None:
        """Open each listed item and queue its files, one unit of work each, in listing order."""
        assert self._store is not None  # items are opened only while the store is
        limits = ItemLimits(
            store=self._store, max_file_bytes=self.config.max_file_bytes, splits=self._splits
        )
        while (work := await items.get()) is not None:
            known = work.known
            task = ItemTask(
                source=work.source.name,
                source_type=work.source.settings.type,
                item=work.item,
                folder=within("", str(work.folder)),
                known_files=known.files if known is not None else (),
            )
            try:
                run = open_item(task, limits)
            except ArchiverError:
                raise  # the archive as a whole cannot be written: the run stops
            except Exception as exc:  # a bug met by one item must not cost the others their run
                log.debug("traceback", exc_info=True)
                run = ItemResult((), 0, (("item", _unexpected(exc)),), ())
            if isinstance(run, ItemResult):  # its folder cannot be used
                await self._record(work, run)
                continue
            self._running.add(run)
            if not run.files:  # nothing to fetch: every file the listing named was unusable
                await self._finish(work, run)
                continue
            for index, _ in run.files:
                await files.put(_FileWork(work, run, index))
        for _ in range(self.config.concurrency):
            await files.put(None)

    async def _download_slot(
        self, http: HttpClient, files: asyncio.Queue[_FileWork | None]
    ) -> None:
        """One download in flight at a time: any item's next file, as soon as one is done.

        Then, until the last ones are done, the upper halves of the largest still coming.
        """
        while (unit := await files.get()) is not None:
            received = self._counter(unit.work.source.name)
            try:
                await unit.run.fetch(unit.index, http, received)
            except ArchiverError:
                raise  # the archive as a whole cannot be written: the run stops (see `run`)
            except Exception as exc:  # a bug met by one file must not cost the others their run
                log.debug("traceback", exc_info=True)
                unit.run.fail(unit.index, _unexpected(exc))
            if unit.run.done:
                await self._finish(unit.work, unit.run)
        if self._splits is not None:
            # No file left to take: rather than idle, fetch half of one still coming.
            await self._splits.help()

    def _counter(self, source: str) -> Callable[[int], None]:
        """What counts the bytes received for `source`: one per source, made once."""
        counter = self._counters.get(source)
        if counter is None:
            stats, progress = self.stats.source(source), self.progress

            def counter(count: int) -> None:
                stats.bytes += count
                progress.received(count)

            self._counters[source] = counter
        return counter

    async def _finish(self, work: WorkItem, run: ItemRun) -> None:
        """The item's last file is done: its sidecar, then its record."""
        self._running.discard(run)
        try:
            result = await run.finish()
        except ArchiverError:
            raise
        except Exception as exc:  # a bug met by one item must not cost the others their run
            log.debug("traceback", exc_info=True)
            result = ItemResult((), 0, (("item", _unexpected(exc)),), ())
        await self._record(work, result)

    async def _record(self, work: WorkItem, result: ItemResult) -> None:
        """Count, log and record what archiving one item did."""
        cfg, item, known = work.source, work.item, work.known
        stats = self.stats.source(cfg.name)
        stats.files += result.fetched
        for _ in range(result.fetched):
            self.progress.file_done()
        assert self._committer is not None
        if result.failures:
            for role, why in result.failures:
                self._warnings.warn(
                    cfg.name, FAILED, "%s %s: %s: %s", item.kind, item.id, role, why
                )
            reason = "; ".join(f"{role}: {why}" for role, why in result.failures)
            stats.fail(item.id, item.kind, reason)
            await self._committer.add(
                Outcome(cfg.name, item.kind, item.id, work.fingerprint, result.files, reason),
                result.written,
            )
            return
        if known is not None and known.state == "archived":
            stats.updated += 1
        elif item.kind == "task":
            stats.archived += 1
        else:
            stats.templates_archived += 1
        log.debug("%s: archived %s %s", cfg.name, item.kind, work.folder)
        # What the catalog shows of it, from the record its sidecar holds: kept in the manifest.
        card = describe_item(cfg.settings.type, item.kind, item.record, dict(item.problems))
        await self._committer.add(
            Outcome(cfg.name, item.kind, item.id, work.fingerprint, result.files, None, card),
            result.written,
        )

    def _record_source_states(self, sources: tuple[SourceConfig, ...]) -> None:
        assert self.manifest is not None
        for cfg in sources:
            stats = self.stats.source(cfg.name)
            complete = stats.listed_to_end or stats.stopped_early
            clean = complete and not stats.failed and not stats.listing_error
            clean = clean and not self.stats.fatal
            self.manifest.set_source_state(cfg.name, listed_to_end=stats.listed_to_end, clean=clean)


@dataclass(frozen=True, slots=True)
class _FileWork:
    """One file of an opened item: the unit a download slot takes."""

    work: WorkItem
    run: ItemRun
    index: int  # of the file in the item's media


def _unexpected(exc: BaseException) -> str:
    return f"unexpected error: {type(exc).__name__}: {exc}"
