"""`archiver status`: where the archive stands, read from the manifest only.

It opens the manifest read-only, so it works while a run is writing (WAL lets readers in) and
never changes a thing.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from archiver.reporting.console import human_bytes
from archiver.store.manifest import ManifestStore
from archiver.store.queries import RunRow

RECENT_RUNS = 5


@dataclass
class SourceStatus:
    """One source's standing."""

    tasks_archived: int = 0
    templates_archived: int = 0
    files: int = 0
    bytes: int = 0
    pending: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    last_full_listing: str | None = None
    has_templates: bool = False  # a source type with templates (the count is shown even at 0)
    # Why the latest run that ended could not list this source to its end (None if it could).
    listing_error: str | None = None


@dataclass
class RunRecord:
    """One past run."""

    id: int
    command: str
    started_at: str
    finished_at: str | None
    exit_status: int | None
    duration: float | None
    totals: dict[str, Any]
    listing_errors: dict[str, str] = field(default_factory=dict)  # source: why not listed
    fatal: str | None = None  # what stopped the run, if anything did


@dataclass
class ArchiveStatus:
    """The whole archive's standing."""

    sources: dict[str, SourceStatus]
    bytes: int
    runs: list[RunRecord]
    # A bucket archive's multipart uploads in progress (a killed run's, to be resumed or
    # aborted by the next run), or why the bucket could not be asked; None for a folder.
    uploads_in_progress: int | str | None = None


def archive_status(
    manifest: ManifestStore,
    *,
    failures_listed: int = 10,
    template_sources: Collection[str] = (),
) -> ArchiveStatus:
    """Read the standing of every source, and the recent runs, from the manifest."""
    sources: dict[str, SourceStatus] = {}
    for source, kind, state, count in manifest.item_counts():
        s = sources.setdefault(source, SourceStatus())
        if state == "archived":
            if kind == "task":
                s.tasks_archived += count
            else:
                s.templates_archived += count
        elif state == "failed":
            s.failed += count
        else:
            s.pending += count
    for source, files, size in manifest.file_totals():
        s = sources.setdefault(source, SourceStatus())
        s.files, s.bytes = files, size
    for source, s in sources.items():
        s.failures = [
            {"kind": kind, "id": item_id, "error": error or ""}
            for kind, item_id, error in manifest.failures(source, failures_listed)
        ]
        s.last_full_listing = manifest.source_state(source)[0]
    runs = [_run_record(r) for r in manifest.recent_runs(RECENT_RUNS)]
    # A source whose listing failed may have nothing archived yet: it is shown all the same.
    latest = next((run for run in runs if run.finished_at is not None), None)
    for name, reason in (latest.listing_errors if latest else {}).items():
        sources.setdefault(name, SourceStatus()).listing_error = reason
    for name in template_sources:
        if name in sources:
            sources[name].has_templates = True
    return ArchiveStatus(
        sources=dict(sorted(sources.items())),
        bytes=sum(s.bytes for s in sources.values()),
        runs=runs,
    )


def _run_record(row: RunRow) -> RunRecord:
    totals = json.loads(row.summary) if row.summary else {}
    return RunRecord(
        id=row.id,
        command=row.command,
        started_at=row.started_at,
        finished_at=row.finished_at,
        exit_status=row.exit_status,
        duration=_seconds_between(row.started_at, row.finished_at),
        listing_errors=totals.pop("listing_errors", None) or {},
        fatal=totals.pop("fatal", None),
        totals=totals,
    )


def _seconds_between(start: str, end: str | None) -> float | None:
    if end is None:
        return None
    parse = datetime.fromisoformat
    delta = parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))
    return delta.total_seconds()


def status_json(status: ArchiveStatus) -> str:
    """The status as JSON, for scripts and monitoring."""
    return json.dumps(asdict(status), ensure_ascii=False, indent=2)


def status_text(status: ArchiveStatus) -> str:
    """The status as a few lines a person reads at a glance."""
    lines = [f"archive: {human_bytes(status.bytes)}"]
    if isinstance(status.uploads_in_progress, int):
        lines.append(f"multipart uploads in progress: {status.uploads_in_progress}")
    elif status.uploads_in_progress is not None:
        lines.append(f"multipart uploads in progress: unknown ({status.uploads_in_progress})")
    for name, s in status.sources.items():
        templates = (
            f" and {s.templates_archived} templates"
            if s.has_templates or s.templates_archived
            else ""
        )
        lines.append(
            f"{name}: {s.tasks_archived} tasks{templates} archived "
            f"({s.files} files, {human_bytes(s.bytes)}), {s.failed} failed, {s.pending} pending"
        )
        if s.listing_error:
            lines.append(f"  NOT LISTED by the last run: {s.listing_error}")
        lines.extend(f"  failed {f['kind']} {f['id']}: {f['error']}" for f in s.failures)
        if s.failed > len(s.failures):
            lines.append(f"  ... and {s.failed - len(s.failures)} more")
        if s.last_full_listing:
            lines.append(f"  last listed to the end: {s.last_full_listing}")
    if status.runs:
        lines.append("recent runs:")
    for run in status.runs:
        lines.extend(_run_lines(run))
    return "\n".join(lines)


def _run_lines(run: RunRecord) -> list[str]:
    if run.finished_at is None:
        ended = "running, or stopped without a word"
    else:
        ended = f"exit {run.exit_status} after {run.duration:.0f} s"
    new = run.totals.get("newly_archived")
    counts = f", {new} new, {run.totals.get('failed', 0)} failed" if new is not None else ""
    lines = [f"  #{run.id} {run.command} {run.started_at}: {ended}{counts}"]
    lines.extend(f"    {name}: not listed: {why}" for name, why in run.listing_errors.items())
    if run.fatal:
        lines.append(f"    stopped: {run.fatal}")
    return lines
