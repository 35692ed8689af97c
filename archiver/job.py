"""The archiving job: sources -> records -> download pipeline -> archive + manifest.

Each source is listed by its own task, page by page, into one bounded queue; a fixed pool of
`concurrency` workers takes items off it and fetches their files, so downloads begin while
listing goes on and memory stays flat however long the list. Per-item bookkeeping lives in the
manifest: a page costs one lookup and one write, a batch of finished items one flush and one
transaction. This module imports no concrete source.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Protocol

from archiver.download import download_file
from archiver.durable import BatchCommitter
from archiver.errors import ArchiverError, ArchiveWriteError, SourceError, TransferError
from archiver.http import HttpClient
from archiver.manifest import FileRow, KnownItem, ManifestStore, Outcome, Seen, utc_now
from archiver.paths import file_stem, inside, item_folder
from archiver.records import ArchiveItem, Page, Rejected, Unfinished
from archiver.settings import Config, SourceConfig
from archiver.sidecar import (
    SIDECAR,
    fingerprint,
    iso,
    sidecar_document,
    url_identity,
    write_sidecar,
)
from archiver.sources import Source, SourceContext, source_types
from archiver.stats import RunStats, SourceStats

log = logging.getLogger("archiver")

QUEUE_PER_WORKER = 64  # items listed ahead of the downloads, per worker


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

    async def run(self, sources: tuple[SourceConfig, ...]) -> RunStats:
        """Archive everything new from `sources`; returns the run's statistics."""
        for cfg in sources:
            self.stats.source(cfg.name)
        queue: asyncio.Queue[WorkItem | None] = asyncio.Queue(
            QUEUE_PER_WORKER * self.config.concurrency
        )
        http = HttpClient(self.config.http, bandwidth_limit=self.config.bandwidth_limit)
        if self.manifest is not None and not self.dry_run:
            self._committer = BatchCommitter(
                self.manifest, self.run_id, self.root, fsync=self.config.durability == "fsync"
            )
            # Decided before this run marks the sources unclean: until it ends cleanly, the
            # next run must not trust an early stop.
            self._incremental = {cfg.name: self._incremental_allowed(cfg) for cfg in sources}
            for cfg in sources:
                self.manifest.set_source_state(cfg.name, listed_to_end=False, clean=False)
        try:
            try:
                async with http, asyncio.TaskGroup() as group:
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
        except asyncio.CancelledError:
            self.stats.interrupted = True
        finally:
            if self._committer is not None:
                # What finished before the stop is recorded; the rest is retried next time.
                try:
                    await self._committer.close()
                except ArchiveWriteError as exc:  # the manifest's disk is full too
                    self.stats.fatal = self.stats.fatal or str(exc)
            self.stats.duration = time.monotonic() - self.stats.started
        stopped = self.stats.interrupted or self.stats.fatal
        if self.manifest is not None and not self.dry_run and not stopped:
            self._record_source_states(sources)  # else they stay unclean, as marked above
        return self.stats

    # Listing

    async def _list_source(
        self, cfg: SourceConfig, context: SourceContext, queue: asyncio.Queue[WorkItem | None]
    ) -> None:
        stats = self.stats.source(cfg.name)
        started = time.monotonic()
        source: Source = source_types()[cfg.settings.type](cfg.name, cfg.settings, context)
        incremental = self._incremental.get(cfg.name, False)
        streak = 0
        pages = source.pages()
        try:
            async for page in pages:
                streak = await self._take_page(cfg, page, queue, streak, stats)
                if incremental and streak >= cfg.settings.stop_after_known:
                    stats.stopped_early = True
                    log.info("%s: %d archived tasks in a row; listing ends here", cfg.name, streak)
                    break
            else:
                stats.listed_to_end = True
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

    def _incremental_allowed(self, cfg: SourceConfig) -> bool:
        settings = cfg.settings
        if self.full or settings.stop_after_known <= 0 or self.manifest is None:
            return False
        last_full, clean = self.manifest.source_state(cfg.name)
        if not clean or last_full is None or self.manifest.unsettled(cfg.name):
            return False
        age = datetime.now(UTC) - datetime.fromisoformat(last_full.replace("Z", "+00:00"))
        return age < timedelta(days=settings.full_every_days)

    async def _take_page(
        self,
        cfg: SourceConfig,
        page: Page,
        queue: asyncio.Queue[WorkItem | None],
        streak: int,
        stats: SourceStats,
    ) -> int:
        """Sort one page into skipped and to-do; returns the run of archived tasks so far."""
        fresh: dict[tuple[str, str], ArchiveItem] = {}
        for entry in page.items:
            if isinstance(entry, Unfinished):
                stats.listed += 1
                stats.unfinished[entry.state] += 1
            elif isinstance(entry, Rejected):
                stats.listed += 1
                stats.reject(entry.id, entry.reason)
                log.warning("%s: rejected record %s: %s", cfg.name, entry.id or "?", entry.reason)
            else:
                if entry.kind == "task":
                    stats.listed += 1
                    stats.succeeded += 1
                fresh.setdefault((entry.kind, entry.id), entry)
        self.progress.listed(
            sum(1 for e in page.items if not isinstance(e, ArchiveItem) or e.kind == "task")
        )
        known = self._lookup(cfg.name, fresh)
        work: list[WorkItem] = []
        for (kind, item_id), item in fresh.items():
            seen = known.get((kind, item_id))
            if seen is not None and seen.last_seen_run == self.run_id and self.run_id:
                continue  # listed twice: the list shifted while it was read
            folder = (
                PurePosixPath(seen.folder)
                if seen is not None
                else item_folder(cfg.name, item, self.config.layout)
            )
            work.append(WorkItem(cfg, item, folder, fingerprint(item.record), seen))
        intact = await asyncio.to_thread(self._intact, work)
        if self.manifest is not None and not self.dry_run:
            self.manifest.mark_seen(
                cfg.name,
                self.run_id,
                [Seen(w.item.kind, w.item.id, str(w.folder), iso(w.item.created_at)) for w in work],
            )
        for w in work:
            is_task = w.item.kind == "task"
            if id(w) in intact:
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
            await queue.put(w)
        return streak

    def _lookup(
        self, source: str, fresh: dict[tuple[str, str], ArchiveItem]
    ) -> dict[tuple[str, str], KnownItem]:
        if self.manifest is None:
            return {}
        found: dict[tuple[str, str], KnownItem] = {}
        for kind in ("task", "template"):
            ids = [item_id for (k, item_id) in fresh if k == kind]
            if ids:
                found.update(
                    ((kind, i), v) for i, v in self.manifest.lookup(source, kind, ids).items()
                )
        return found

    def _intact(self, work: list[WorkItem]) -> set[int]:
        """The work items already archived, unchanged, with every file still there."""
        intact: set[int] = set()
        root = str(self.root)
        for w in work:
            known = w.known
            if known is None or known.state != "archived" or known.fingerprint != w.fingerprint:
                continue
            # Plain strings and os calls: pathlib's parsing cost more than the stat calls on
            # a rerun, where every listed item comes through here.
            try:
                if not os.path.isfile(_within(root, f"{w.folder}/{SIDECAR}")):  # noqa: PTH113
                    continue
                if all(
                    os.stat(_within(root, f.path)).st_size == f.bytes  # noqa: PTH116
                    for f in known.files
                    if f.current
                ):
                    intact.add(id(w))
            except (OSError, ValueError):
                continue
        return intact

    # Downloading

    async def _worker(self, http: HttpClient, queue: asyncio.Queue[WorkItem | None]) -> None:
        while (work := await queue.get()) is not None:
            await self._archive(http, work)

    async def _archive(self, http: HttpClient, work: WorkItem) -> None:
        cfg, item = work.source, work.item
        stats = self.stats.source(cfg.name)
        folder = _within(str(self.root), str(work.folder))
        # A folder that is not there holds nothing of an earlier run: no file of it needs a
        # look for a `.part` or an orphan (one stat per item, instead of a scan per file).
        new_folder = bool(item.media) and not os.path.isdir(folder)  # noqa: PTH112, ASYNC240
        known_files = work.known.files if work.known is not None else ()
        files: list[FileRow] = []
        written: list[str] = []
        failures: dict[str, str] = {}
        for ref in item.media:
            reuse = _reusable(known_files, ref.role, ref.url, self.root)
            if reuse is not None:
                files.append(reuse)
                continue
            stem = _free_stem(file_stem(ref), ref.role, ref.url, known_files)
            try:
                fetched = await download_file(
                    http,
                    ref.role,
                    ref.url,
                    folder,
                    stem,
                    max_bytes=self.config.max_file_bytes,
                    progress=self._received(stats),
                    new_folder=new_folder,
                )
            except TransferError as exc:
                failures[ref.role] = str(exc)
                log.warning("%s: %s %s: %s: %s", cfg.name, item.kind, item.id, ref.role, exc)
                continue
            stats.files += 1
            self.progress.file_done()
            written.append(f"{folder}/{fetched.name}")
            files.append(
                FileRow(
                    name=fetched.name,
                    role=ref.role,
                    path=f"{work.folder}/{fetched.name}",
                    url=fetched.url,
                    bytes=fetched.bytes,
                    sha256=fetched.sha256,
                    content_type=fetched.content_type,
                )
            )
        assert self._committer is not None
        if failures:
            reason = "; ".join(f"{role}: {why}" for role, why in failures.items())
            stats.fail(item.id, item.kind, reason)
            await self._committer.add(
                Outcome(cfg.name, item.kind, item.id, work.fingerprint, tuple(files), reason),
                written,
            )
            return
        current = {f.name for f in files}
        document = sidecar_document(
            source=cfg.name,
            source_type=cfg.settings.type,
            item=item,
            files=files,
            missing=dict(item.problems),
            previous=[f for f in known_files if f.name not in current],
            archived_at=utc_now(),
        )
        # A few kilobytes: written on the loop, which costs less than a thread hop.
        written.append(write_sidecar(folder, document))
        if work.known is not None and work.known.state == "archived":
            stats.updated += 1
        elif item.kind == "task":
            stats.archived += 1
        else:
            stats.templates_archived += 1
        log.debug("%s: archived %s %s", cfg.name, item.kind, work.folder)
        await self._committer.add(
            Outcome(cfg.name, item.kind, item.id, work.fingerprint, tuple(files), None), written
        )

    def _received(self, stats: SourceStats) -> Callable[[int], None]:
        def count(n: int) -> None:
            stats.bytes += n
            self.progress.received(n)

        return count

    def _record_source_states(self, sources: tuple[SourceConfig, ...]) -> None:
        assert self.manifest is not None
        for cfg in sources:
            stats = self.stats.source(cfg.name)
            complete = stats.listed_to_end or stats.stopped_early
            clean = complete and not stats.failed and not stats.listing_error
            clean = clean and not self.stats.fatal
            self.manifest.set_source_state(cfg.name, listed_to_end=stats.listed_to_end, clean=clean)


def _within(root: str, relative: str) -> str:
    """`root/relative` as text, refusing anything that would leave `root` (like `inside`)."""
    if relative.startswith("/") or ".." in relative.split("/"):
        raise ValueError(f"path {relative!r} would leave the archive")
    return f"{root}/{relative}"


def _reusable(known: tuple[FileRow, ...], role: str, url: str, root: Path) -> FileRow | None:
    """An archived file of this role from the same URL, still whole on disk."""
    if not known:
        return None
    identity = url_identity(url)
    for f in known:
        if f.role == role and url_identity(f.url) == identity:
            try:
                if inside(root, f.path).stat().st_size == f.bytes:
                    return f
            except (OSError, ValueError):
                return None
    return None


def _free_stem(stem: str, role: str, url: str, known: tuple[FileRow, ...]) -> str:
    """`stem`, or `stem.2`, ... if an archived file of another URL already has that name."""
    if not known:
        return stem
    identity = url_identity(url)
    taken = {f.name.rsplit(".", 1)[0] for f in known if url_identity(f.url) != identity}
    if stem not in taken:
        return stem
    n = 2
    while f"{stem}.{n}" in taken:
        n += 1
    return f"{stem}.{n}"
