"""Listing: each source's pages sorted into what is archived and intact, and what is to do.

A page costs one manifest lookup and one write (a page where nothing changed, a share of one):
a record whose digest is the one last listed is taken as it is in the manifest (and a record
its source put off, `Unparsed`, is then never parsed), and an archived item whose sidecar and
files are all on disk at their sizes is skipped; the rest go onto the workers' queue as
`WorkItem`s. The guard against listings that never end, and the
incremental stop, are applied here. This module imports no concrete source.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from stat import S_ISREG
from typing import Protocol

from archiver.config.settings import Config, SourceConfig
from archiver.errors import ArchiveWriteError, ListingRepeats, SourceError
from archiver.pipeline.guard import ListingGuard
from archiver.reporting.repeats import REJECTED, RepeatedWarnings
from archiver.reporting.stats import RunStats, SourceStats
from archiver.sources import Source, SourceContext, source_types
from archiver.sources.records import ArchiveItem, Page, Rejected, Unfinished, Unparsed
from archiver.store.manifest import KnownItem, ListedItem, ManifestStore, Seen
from archiver.store.paths import item_folder, within
from archiver.store.sidecar import SIDECAR, fingerprint, iso, record_digest

log = logging.getLogger("archiver")

_STAT_AT = os.stat in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
# Unchanged items listed before they are written as listed: one transaction per page cost a
# rerun more than the rows it wrote.
SEEN_BATCH = 1000

Key = tuple[str, str]  # an item's (kind, id)
# An item to consider: the item, what the manifest has of it, its fingerprint and its folder.
Todo = tuple[ArchiveItem | Unparsed, ListedItem | None, str, str]


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


class SourceLister:
    """Lists sources into the workers' queue, for one run."""

    def __init__(
        self,
        config: Config,
        manifest: ManifestStore | None,
        progress: Progress,
        stats: RunStats,
        warnings: RepeatedWarnings,
        *,
        run_id: int,
        dry_run: bool,
        full: bool,
    ) -> None:
        self.config = config
        self.root = config.archive_dir
        self.manifest = manifest
        self.progress = progress
        self.stats = stats
        self.run_id = run_id
        self.dry_run = dry_run
        self.full = full
        self.incremental: dict[str, bool] = {}  # by source: whether it may stop early
        self._warnings = warnings

    async def list_source(
        self, cfg: SourceConfig, context: SourceContext, queue: asyncio.Queue[WorkItem | None]
    ) -> None:
        """List one source to its end or its stop, queueing what is to do.

        A source's own failure is logged and counted for it; only a failure to write the
        archive escapes, and stops the run.
        """
        stats = self.stats.source(cfg.name)
        started = time.monotonic()
        source: Source = source_types()[cfg.settings.type](cfg.name, cfg.settings, context)
        incremental = self.incremental.get(cfg.name, False)
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
        except ListingRepeats as exc:
            # What was listed is archived; the source counts as not listed to its end.
            stats.listing_error = str(exc)
            log.warning("%s: listing stopped at %s", cfg.name, exc)
        except SourceError as exc:
            stats.listing_error = str(exc)
            log.error("%s: cannot list: %s", cfg.name, exc)
            if exc.__cause__ is not None:  # what went wrong underneath, for `-v`
                log.debug("caused by", exc_info=exc)
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

    def incremental_allowed(self, cfg: SourceConfig) -> bool:
        """Whether `cfg` may stop at `stop_after_known` archived tasks in a row this run."""
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
        if stats.reject(entry.id, entry.reason):
            self._warnings.warn(
                source, REJECTED, "rejected record %s: %s", entry.id or "?", entry.reason
            )
        else:  # told by an earlier run already: counted in the summary and the report
            log.debug("%s: rejected record %s again: %s", source, entry.id or "?", entry.reason)

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

        `unmarked` holds the unchanged items listed in this run not yet written as listed (see
        `ManifestStore.mark_seen`): added to here, written (and emptied) now and then.
        """
        listed = self._listing_state(cfg.name, page)
        fresh = self._count(cfg.name, page, stats, listed)
        again = self._listed_again(cfg.name, listed)
        todo, seen = self._sort(cfg.name, fresh, listed, unmarked, again)
        intact = self._intact(
            {
                index: (state.folder, state.files)
                for index, (_, state, mark, _) in enumerate(todo)
                if state is not None and state.state == "archived" and state.fingerprint == mark
            }
        )
        stale = [
            (item.kind, item.id)
            for index, (item, state, _, _) in enumerate(todo)
            if state is not None and index not in intact
        ]
        known = self._lookup(cfg.name, stale)
        if self._writing and (seen or len(unmarked) >= SEEN_BATCH):
            # New and changed items are written before any worker can record them.
            assert self.manifest is not None
            self.manifest.mark_seen(cfg.name, self.run_id, seen, unmarked)
            unmarked.clear()
        for index, (entry, state, mark, folder) in enumerate(todo):
            is_task = entry.kind == "task"
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
            item = self._parsed(cfg.name, stats, entry)
            if item is None:
                continue
            where = PurePosixPath(state.folder if state is not None else folder)
            await queue.put(WorkItem(cfg, item, where, mark, known.get((item.kind, item.id))))
        return streak

    @property
    def _writing(self) -> bool:
        return self.manifest is not None and not self.dry_run

    def _count(
        self, source: str, page: Page, stats: SourceStats, listed: dict[Key, ListedItem]
    ) -> dict[Key, tuple[ArchiveItem | Unparsed, bytes | None]]:
        """Count the page's records; its archivable items by (kind, id), first of each.

        With each item comes the digest of its record. A record put off by its source
        (`Unparsed`) is parsed here unless the manifest holds it as last listed: then it
        stays unparsed, and nothing of it but its id and digest is looked at unless it is to
        be fetched again.
        """
        fresh: dict[Key, tuple[ArchiveItem | Unparsed, bytes | None]] = {}
        listed_before = stats.listed
        for entry in page.items:
            digest = None
            if isinstance(entry, Unparsed):
                digest = record_digest(entry.record)
                state = listed.get((entry.kind, entry.id))
                if digest is None or state is None or digest != state.listed_digest:
                    entry = entry.parse(entry.record)
            if isinstance(entry, Unfinished):
                stats.listed += 1
                stats.unfinished[entry.state] += 1
            elif isinstance(entry, Rejected):
                self._reject(source, stats, entry)
            else:
                if entry.kind == "task":
                    stats.listed += 1
                    stats.succeeded += 1
                if (entry.kind, entry.id) not in fresh:
                    if digest is None and isinstance(entry, ArchiveItem):
                        digest = record_digest(entry.record)
                    fresh[entry.kind, entry.id] = (entry, digest)
        self.progress.listed(stats.listed - listed_before)  # every record but the templates
        return fresh

    def _parsed(
        self, source: str, stats: SourceStats, entry: ArchiveItem | Unparsed
    ) -> ArchiveItem | None:
        """The item to fetch, parsed; None if it does not parse as one any more.

        A record unchanged since it was archived is parsed only here, when it is to be fetched
        again. If the rules of parsing changed since, it may not parse now: it is then
        counted as the source would have had it counted, rejected or unfinished.
        """
        if isinstance(entry, ArchiveItem):
            return entry
        item = entry.parse(entry.record)
        if isinstance(item, ArchiveItem):
            return item
        stats.listed -= 1  # counted as succeeded already, and counted again below
        stats.succeeded -= 1
        if isinstance(item, Unfinished):
            stats.listed += 1
            stats.unfinished[item.state] += 1
        else:
            self._reject(source, stats, item)
        return None

    def _sort(
        self,
        source: str,
        fresh: dict[Key, tuple[ArchiveItem | Unparsed, bytes | None]],
        listed: dict[Key, ListedItem],
        unmarked: set[Key],
        again: set[Key],
    ) -> tuple[list[Todo], list[Seen]]:
        """The items to consider, with their state and fingerprint; and those to write as seen.

        An item listed twice in this run is dropped; one whose record is the one last listed
        keeps what the manifest has of it (that this run listed it is kept, batched in
        `unmarked`; `again` are those written so far that are on this page).
        """
        todo: list[Todo] = []
        seen: list[Seen] = []
        for key, (item, digest) in fresh.items():
            state = listed.get(key)
            if state is not None and (
                (state.last_seen_run == self.run_id and self.run_id)
                or key in unmarked
                or key in again
            ):
                continue  # listed twice: the list shifted while it was read
            if state is not None and digest is not None and digest == state.listed_digest:
                # The record as last listed: its fingerprint, folder and creation time are
                # in the manifest already. This is what keeps a rerun cheap.
                mark = state.listed_fingerprint or fingerprint(item.record)
                folder = state.folder
                if self._writing:
                    unmarked.add(key)
            else:
                assert isinstance(item, ArchiveItem)  # `_count` parsed every changed record
                mark = fingerprint(item.record)
                folder = (
                    state.folder
                    if state is not None
                    else str(item_folder(source, item, self.config.layout))
                )
                seen.append(Seen(*key, folder, iso(item.created_at), digest, mark))
            todo.append((item, state, mark, folder))
        return todo, seen

    def _listing_state(self, source: str, page: Page) -> dict[Key, ListedItem]:
        """What the manifest knows of the page's archivable items, by (kind, id)."""
        if self.manifest is None:
            return {}
        found: dict[Key, ListedItem] = {}
        ids: dict[str, list[str]] = {}
        for entry in page.items:
            if isinstance(entry, ArchiveItem | Unparsed):
                ids.setdefault(entry.kind, []).append(entry.id)
        for kind, kind_ids in ids.items():
            for item_id, state in self.manifest.listing_state(source, kind, kind_ids).items():
                found[kind, item_id] = state
        return found

    def _listed_again(self, source: str, listed: dict[Key, ListedItem]) -> set[Key]:
        """Which of these items this run listed before, unchanged, and wrote as listed."""
        again: set[Key] = set()
        if not self._writing or not listed:
            return again
        assert self.manifest is not None
        for kind in ("task", "template"):
            ids = [item_id for (k, item_id) in listed if k == kind]
            if ids:
                again.update((kind, i) for i in self.manifest.listed_unchanged(source, kind, ids))
        return again

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
