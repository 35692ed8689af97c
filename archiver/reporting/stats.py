"""One statistics record per run: what each source listed, archived, skipped and lost.

The job fills it; the summary, the run report and the exit status are read from it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_DETAILS = 1000  # failures and rejections listed by name in a report, per source


@dataclass
class SourceStats:
    """What happened to one source in one run."""

    listed: int = 0
    succeeded: int = 0
    unfinished: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    archived: int = 0
    templates_archived: int = 0
    already_archived: int = 0
    updated: int = 0
    failed: int = 0
    bytes: int = 0
    files: int = 0
    listing_error: str | None = None
    listed_to_end: bool = False
    stopped_early: bool = False
    duration: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    rejections: list[dict[str, str | None]] = field(default_factory=list)
    # (id, reason) of the records the last report of this source named as rejected: the same
    # record rejected again for the same reason is no news, and a cron run stays quiet.
    rejected_before: frozenset[tuple[str | None, str]] = frozenset()
    rejected_again: int = 0

    def fail(self, item_id: str, kind: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_DETAILS:
            self.failures.append({"id": item_id, "kind": kind, "reason": reason})

    def reject(self, item_id: str | None, reason: str) -> bool:
        """Count a rejected record; True if it is news (not rejected so by the last run)."""
        self.rejected += 1
        if len(self.rejections) < MAX_DETAILS:
            self.rejections.append({"id": item_id, "reason": reason})
        if (item_id, reason) in self.rejected_before:
            self.rejected_again += 1
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        """The statistics as the run report writes them."""
        return {
            "listed": self.listed,
            "succeeded_upstream": self.succeeded,
            "not_succeeded": dict(self.unfinished),
            "rejected": self.rejected,
            "rejected_again": self.rejected_again,
            "newly_archived": self.archived,
            "templates_archived": self.templates_archived,
            "already_archived": self.already_archived,
            "updated": self.updated,
            "failed": self.failed,
            "files": self.files,
            "bytes": self.bytes,
            "listing_error": self.listing_error,
            "listed_to_end": self.listed_to_end,
            "stopped_early": self.stopped_early,
            "duration": round(self.duration, 3),
            "failures": self.failures,
            "rejections": self.rejections,
        }


@dataclass
class RunStats:
    """The whole run."""

    sources: dict[str, SourceStats] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0
    interrupted: bool = False
    fatal: str | None = None
    busy: bool = False  # stopped because another run took the archive over: exit 4
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)  # about the run, not an item (notify)
    # Per source, the (id, reason) of the records its last report named as rejected.
    rejected_before: dict[str, frozenset[tuple[str | None, str]]] = field(default_factory=dict)

    def source(self, name: str) -> SourceStats:
        """The statistics of one source, made at its first mention."""
        found = self.sources.get(name)
        if found is None:
            before = self.rejected_before.get(name, frozenset())
            found = self.sources[name] = SourceStats(rejected_before=before)
        return found

    @property
    def exit_status(self) -> int:
        """3 if a source could not be listed, 1 if items failed, else 0 (130 if interrupted,
        4 if another run took the archive over)."""
        if self.interrupted:
            return 130
        if self.busy:
            return 4
        if any(s.listing_error for s in self.sources.values()):
            return 3
        if self.fatal or any(s.failed for s in self.sources.values()):
            return 1
        return 0

    def total(self, name: str) -> int:
        """A count (`archived`, `failed`, ...) summed over the sources."""
        return sum(int(getattr(s, name)) for s in self.sources.values())

    @property
    def eventful(self) -> bool:
        """Whether anything happened worth telling a cron mailbox."""
        return bool(
            self.total("archived")
            or self.total("templates_archived")
            or self.total("failed")
            or self.total("rejected") > self.total("rejected_again")
            or self.total("updated")
            or self.exit_status
        )
