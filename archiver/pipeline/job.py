"""The archiving job: sources -> records -> download pipeline -> archive + manifest.

Each source is listed by its own task, page by page, into one bounded queue; a fixed pool of
`concurrency` workers takes items off it and fetches their files, so downloads begin while
listing goes on and memory stays flat however long the list. Per-item bookkeeping lives in the
manifest: a page costs one lookup and one write (a page where nothing changed, a share of one),
a batch of finished items one flush and one transaction. This module imports no concrete source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from stat import S_ISREG
from typing import TYPE_CHECKING, Protocol

from archiver.config.settings import Config, SourceConfig
from archiver.errors import ArchiverError, ArchiveWriteError, ListingRepeats, SourceError
from archiver.net.http import HttpClient
from archiver.pipeline.guard import ListingGuard
from archiver.pipeline.item import ItemLimits, ItemResult, ItemTask, archive_item
from archiver.reporting.repeats import FAILED, REJECTED, RepeatedWarnings
from archiver.reporting.stats import RunStats, SourceStats
from archiver.sources import Source, SourceContext, source_types
from archiver.sources.records import ArchiveItem, Page, Rejected, Unfinished
from archiver.store.backend import ArchiveStore, FolderStore
from archiver.store.durable import BatchCommitter
from archiver.store.freespace import FreeSpace
from archiver.store.manifest import (
    KnownItem,
    ListedItem,
    ManifestStore,
    Outcome,
    Seen,
)
from archiver.store.paths import item_folder, within
from archiver.store.sidecar import (
    SIDECAR,
    fingerprint,
    iso,
    record_digest,
)

if TYPE_CHECKING:
    from archiver.store.s3 import BucketStore
    from archiver.store.uploads import UploadRecords

log = logging.getLogger("archiver")

QUEUE_PER_WORKER = 64  # items listed ahead of the downloads, per worker
_STAT_AT = os.stat in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
# Unchanged items listed before their `last_seen_run` is written: one manifest transaction per
# page cost a rerun more than the rows it wrote.
SEEN_BATCH = 1000


class Progress(Protocol):
    """What the job tells whoever shows progress."""

    def listed(self, count: int) -> None: ...
    def file_done(self) -> None: ...
    def received(self, count: int) -> None: ...


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One item on its way to the workers."""

    source: SourceConfig
    item: ArchiveItem
    folder: PurePosixPath
    fingerprint: str
    known: KnownItem | None


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
        self.stats = RunStats(dry_run=dry_run)
        self._committer: BatchCommitter | None = None
        self._incremental: dict[str, bool] = {}
        self._warnings = RepeatedWarnings(log)
        # A bucket archive keeps nothing but its manifest and reports on the local disk.
        self.space = FreeSpace(str(self.root), config.min_free_space) if not config.s3 else None
        # Where the items go: the archive's folder, or its bucket once opened (`_open_bucket`).
        self._store: ArchiveStore = FolderStore(str(self.root), self.space)

    async def run(self, sources: tuple[SourceConfig, ...]) -> RunStats:
        """Archive everything new from `sources`; returns the run's statistics."""
        for cfg in sources:
            self.stats.source(cfg.name)
        if not self.dry_run and self.space is not None:
            try:
                # Short of min_free_space: first the run's own `.part` files go, else it stops.
                self.space.make_room(cfg.name for cfg in self.config.sources)
            except ArchiveWriteError as exc:
                self.stats.fatal = str(exc)
                self.stats.duration = time.monotonic() - self.stats.started
                return self.stats
        queue: asyncio.Queue[WorkItem | None] = asyncio.Queue(
            QUEUE_PER_WORKER * self.config.concurrency
        )
        http = HttpClient(self.config.http, bandwidth_limit=self.config.bandwidth_limit)
        if self.manifest is not None and not self.dry_run:
            # A bucket's objects are durable once their upload returns: nothing to flush.
            fsync = self.config.durability == "fsync" and self.config.s3 is None
            self._committer = BatchCommitter(self.manifest, self.run_id, self.root, fsync=fsync)
            # Decided before this run marks the sources unclean: until it ends cleanly, the
            # next run must not trust an early stop.
            self._incremental = {cfg.name: self._incremental_allowed(cfg) for cfg in sources}
            for cfg in sources:
                self.manifest.set_source_state(cfg.name, listed_to_end=False, clean=False)
        try:
            try:
                # Exits in reverse: every task ends, then the HTTP session closes.
                async with http, self._open_bucket(), asyncio.TaskGroup() as group:
                    context = SourceContext(http)
                    if self._committer is not None:
                        group.create_task(self._committer.run())
                    workers = [
                        group.create_task(self._worker(http, queue))
                        for _ in range(self.config.concurrency)
                    ]
                    listers = [
                        group.create_task(self._list_source(cfg, context, queue)) for cfg in sources
                    ]
                    await asyncio.gather(*listers)
                    for _ in workers:
                        await queue.put(None)
                    await asyncio.gather(*workers)
                    if self._committer is not None:
                        await self._committer.close()
            except* ArchiverError as group:
                # A full disk or an unwritable archive: stop everything, say why.
                self.stats.fatal = str(group.exceptions[0])
            except* Exception as group:  # a bug: the run still ends with its report
                self.stats.fatal = self.stats.fatal or _unexpected(group.exceptions[0])
                log.debug("traceback", exc_info=group.exceptions[0])
        except asyncio.CancelledError:
            self.stats.interrupted = True
        finally:
            self._store.close()
            if self._committer is not None:
                # What finished before the stop is recorded; the rest is retried next time.
                try:
                    await self._committer.close()
                except ArchiveWriteError as exc:  # the manifest's disk is full too
                    self.stats.fatal = self.stats.fatal or str(exc)
            self.stats.duration = time.monotonic() - self.stats.started
            for cfg in sources:
                self._warnings.close(cfg.name)
        stopped = self.stats.interrupted or self.stats.fatal
        if self.manifest is not None and not self.dry_run and not stopped:
            self._record_source_states(sources)  # else they stay unclean, as marked above
        return self.stats

    @contextlib.asynccontextmanager
    async def _open_bucket(self) -> AsyncIterator[None]:
        """The archive's bucket for the run, if it has one; multipart uploads left aborted."""
        settings = self.config.s3
        if settings is None or self.dry_run:
            yield
            return
        # An optional extra (aiobotocore), imported for a bucket only.
        from archiver.store.s3 import BucketItems, BucketStore
        from archiver.store.uploads import UploadRecords

        records = UploadRecords(self.root)
        async with BucketStore(settings, connections=2 * self.config.concurrency) as bucket:
            # The run holds the archive's lock: an upload in progress is one a killed run left,
            # to be resumed if a record says how, else never to be completed.
            await self._abort_orphans(bucket, records)
            self._store = BucketItems(bucket, records)
            try:
                yield
                await self._abort_orphans(bucket, records)
            finally:
                self._store = FolderStore(str(self.root), self.space)

    async def _abort_orphans(self, bucket: BucketStore, records: UploadRecords) -> None:
        aborted = await bucket.abort_uploads(keep=records.upload_ids())
        if aborted:
            log.info("%s: aborted %d uploads that cannot be resumed", bucket.url, aborted)

    # Listing

    async def _list_source(
        self, cfg: SourceConfig, context: SourceContext, queue: asyncio.Queue[WorkItem | None]
    ) -> None:
        stats = self.stats.source(cfg.name)
        started = time.monotonic()
        source: Source = source_types()[cfg.settings.type](cfg.name, cfg.settings, context)
        incremental = self._incremental.get(cfg.name, False)
        streak = 0
        unmarked: set[tuple[str, str]] = set()
        guard = ListingGuard()
        pages = source.pages()
        try:
            async for page in pages:
                streak = await self._take_page(cfg, page, queue, streak, stats, unmarked)
                guard.check(page)
                if incremental and streak >= cfg.settings.stop_after_known:
                    stats.stopped_early = True
                    log.info("%s: %d archived tasks in a row; listing ends here", cfg.name, streak)
                    break
            else:
                stats.listed_to_end = True
            if unmarked and self.manifest is not None:
                self.manifest.mark_seen(cfg.name, self.run_id, (), unmarked)
        except ListingRepeats as exc:
            # What was listed is archived; the source counts as not listed to its end.
            stats.listing_error = str(exc)
            log.warning("%s: listing stopped at %s", cfg.name, exc)
        except SourceError as exc:
            stats.listing_error = str(exc)
            log.error("%s: cannot list: %s", cfg.name, exc)
        except ArchiveWriteError:
            raise  # the manifest cannot be written: the whole run stops (see `run`)
        except Exception as exc:  # a bug in one source must not cost the others their run
            stats.listing_error = f"unexpected error: {type(exc).__name__}: {exc}"
            log.error("%s: cannot list: %s", cfg.name, stats.listing_error)
            log.debug("traceback", exc_info=True)
        finally:
            await pages.aclose()
            stats.duration = time.monotonic() - started
            self._warnings.close(cfg.name, REJECTED)

    def _incremental_allowed(self, cfg: SourceConfig) -> bool:
        settings = cfg.settings
        if self.full or settings.stop_after_known <= 0 or self.manifest is None:
            return False
        last_full, clean = self.manifest.source_state(cfg.name)
        if not clean or last_full is None or self.manifest.unsettled(cfg.name):
            return False
        age = datetime.now(UTC) - datetime.fromisoformat(last_full.replace("Z", "+00:00"))
        return age < timedelta(days=settings.full_every_days)

    def _reject(self, source: str, stats: SourceStats, entry: Rejected) -> None:
        stats.listed += 1
        stats.reject(entry.id, entry.reason)
        self._warnings.warn(
            source, REJECTED, "rejected record %s: %s", entry.id or "?", entry.reason
        )

    async def _take_page(
        self,
        cfg: SourceConfig,
        page: Page,
        queue: asyncio.Queue[WorkItem | None],
        streak: int,
        stats: SourceStats,
        unmarked: set[tuple[str, str]],
    ) -> int:
        """Sort one page into skipped and to-do; returns the run of archived tasks so far.

        `unmarked` holds the unchanged items listed in this run whose `last_seen_run` is not
        written yet: added to here, written (and emptied) now and then.
        """
        fresh: dict[tuple[str, str], ArchiveItem] = {}
        listed_before = stats.listed
        for entry in page.items:
            if isinstance(entry, Unfinished):
                stats.listed += 1
                stats.unfinished[entry.state] += 1
            elif isinstance(entry, Rejected):
                self._reject(cfg.name, stats, entry)
            else:
                if entry.kind == "task":
                    stats.listed += 1
                    stats.succeeded += 1
                fresh.setdefault((entry.kind, entry.id), entry)
        self.progress.listed(stats.listed - listed_before)  # every record but the templates
        listed = self._listing_state(cfg.name, fresh)
        writing = self.manifest is not None and not self.dry_run
        todo: list[tuple[ArchiveItem, ListedItem | None, str]] = []
        seen: list[Seen] = []
        for key, item in fresh.items():
            state = listed.get(key)
            if state is not None and (
                (state.last_seen_run == self.run_id and self.run_id) or key in unmarked
            ):
                continue  # listed twice: the list shifted while it was read
            digest = record_digest(item.record)
            if state is not None and digest is not None and digest == state.listed_digest:
                # The record as last listed: its fingerprint, folder and creation time are
                # in the manifest already. This is what keeps a rerun cheap.
                mark = state.listed_fingerprint or fingerprint(item.record)
                if writing:
                    unmarked.add(key)
            else:
                mark = fingerprint(item.record)
                folder = (
                    state.folder
                    if state is not None
                    else str(item_folder(cfg.name, item, self.config.layout))
                )
                seen.append(Seen(*key, folder, iso(item.created_at), digest, mark))
            todo.append((item, state, mark))
        checks = {
            index: (state.folder, state.files)
            for index, (_, state, mark) in enumerate(todo)
            if state is not None and state.state == "archived" and state.fingerprint == mark
        }
        intact = self._intact(checks)
        stale = [
            (item.kind, item.id)
            for index, (item, state, _) in enumerate(todo)
            if state is not None and index not in intact
        ]
        known = self._lookup(cfg.name, stale)
        if writing and (seen or len(unmarked) >= SEEN_BATCH):
            # New and changed items are written before any worker can record them.
            assert self.manifest is not None
            self.manifest.mark_seen(cfg.name, self.run_id, seen, unmarked)
            unmarked.clear()
        for index, (item, state, mark) in enumerate(todo):
            is_task = item.kind == "task"
            if index in intact:
                if is_task:
                    stats.already_archived += 1
                    streak += 1
                continue
            if is_task:
                streak = 0
            if self.dry_run:
                stats.archived += is_task
                stats.templates_archived += not is_task
                continue
            where = (
                PurePosixPath(state.folder)
                if state is not None
                else item_folder(cfg.name, item, self.config.layout)
            )
            await queue.put(WorkItem(cfg, item, where, mark, known.get((item.kind, item.id))))
        return streak

    def _listing_state(
        self, source: str, fresh: dict[tuple[str, str], ArchiveItem]
    ) -> dict[tuple[str, str], ListedItem]:
        if self.manifest is None:
            return {}
        found: dict[tuple[str, str], ListedItem] = {}
        for kind in ("task", "template"):
            ids = [item_id for (k, item_id) in fresh if k == kind]
            if ids:
                for item_id, state in self.manifest.listing_state(source, kind, ids).items():
                    found[kind, item_id] = state
        return found

    def _lookup(
        self, source: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], KnownItem]:
        """All the manifest knows of these items (their files whole), for the downloads."""
        if self.manifest is None or not keys:
            return {}
        found: dict[tuple[str, str], KnownItem] = {}
        for kind in ("task", "template"):
            ids = [item_id for (k, item_id) in keys if k == kind]
            if ids:
                found.update(
                    ((kind, i), v) for i, v in self.manifest.lookup(source, kind, ids).items()
                )
        return found

    def _intact(self, checks: dict[int, tuple[str, tuple[tuple[str, int], ...]]]) -> set[int]:
        """Those of `checks` (folder, current files) whose sidecar and files are all there."""
        intact: set[int] = set()
        if not checks:
            return intact
        if self.config.s3 is not None:
            # A HEAD per file on every run would cost a request per archived file: the manifest
            # records an object only after its upload returned, and `verify` checks the bucket.
            return set(checks)
        # Paths relative to an open descriptor of the archive where the system has them: each
        # lookup then walks the archive's own few parts only, not every folder above it.
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY) if _STAT_AT else None
        except OSError:
            fd = None
        prefix = "" if fd is not None else f"{self.root}/"
        stat = os.stat
        try:
            for index, (folder, files) in checks.items():
                # Plain strings and os calls: pathlib's parsing cost more than the stat calls
                # on a rerun, where every listed item comes through here.
                try:
                    sidecar = stat(within(prefix, f"{folder}/{SIDECAR}"), dir_fd=fd)
                    if not S_ISREG(sidecar.st_mode):
                        continue
                    for path, size in files:
                        if stat(within(prefix, path), dir_fd=fd).st_size != size:
                            break
                    else:
                        intact.add(index)
                except (OSError, ValueError):
                    continue
        finally:
            if fd is not None:
                os.close(fd)
        return intact

    # Downloading

    async def _worker(self, http: HttpClient, queue: asyncio.Queue[WorkItem | None]) -> None:
        limits = ItemLimits(store=self._store, max_file_bytes=self.config.max_file_bytes)
        while (work := await queue.get()) is not None:
            await self._archive(http, limits, work)

    async def _archive(self, http: HttpClient, limits: ItemLimits, work: WorkItem) -> None:
        """Archive one item; count, log and record what it did."""
        cfg, item = work.source, work.item
        stats = self.stats.source(cfg.name)
        known = work.known
        task = ItemTask(
            source=cfg.name,
            source_type=cfg.settings.type,
            item=item,
            folder=within("", str(work.folder)),
            known_files=known.files if known is not None else (),
        )

        def received(count: int) -> None:
            stats.bytes += count
            self.progress.received(count)

        try:
            result = await archive_item(http, task, limits, received)
        except ArchiverError:
            raise  # the archive as a whole cannot be written: the run stops (see `run`)
        except Exception as exc:  # a bug met by one item must not cost the others their run
            log.debug("traceback", exc_info=True)
            result = ItemResult((), 0, (("item", _unexpected(exc)),), ())
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
        await self._committer.add(
            Outcome(cfg.name, item.kind, item.id, work.fingerprint, result.files, None),
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


def _unexpected(exc: BaseException) -> str:
    return f"unexpected error: {type(exc).__name__}: {exc}"
