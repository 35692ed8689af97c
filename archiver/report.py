"""Run reports: one JSON file per run under `.archiver/runs/`, the oldest pruned.

A report is written for every run that got as far as opening the archive, failed ones most of
all: it is what a person reads the morning after a cron mail.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.errors import ArchiveWriteError
from archiver.redact import REDACT
from archiver.stats import RunStats


def report_document(
    stats: RunStats, *, command: str, started_at: datetime, exit_status: int
) -> dict[str, Any]:
    """The report of one run, as JSON-ready data."""
    return {
        "command": command,
        "started_at": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration": round(stats.duration, 3),
        "exit_status": exit_status,
        "dry_run": stats.dry_run,
        "interrupted": stats.interrupted,
        "fatal": stats.fatal,
        "warnings": stats.warnings,
        "totals": {
            "newly_archived": stats.total("archived"),
            "templates_archived": stats.total("templates_archived"),
            "already_archived": stats.total("already_archived"),
            "failed": stats.total("failed"),
            "rejected": stats.total("rejected"),
            "bytes": stats.total("bytes"),
        },
        "sources": {name: s.as_dict() for name, s in stats.sources.items()},
    }


def write_report(
    archive_dir: Path, document: dict[str, Any], *, keep: int, extra: Path | None = None
) -> Path:
    """Write the report into `.archiver/runs/` (and to `extra`), keeping the newest `keep`."""
    folder = archive_dir / ".archiver" / "runs"
    # Microseconds keep two runs in one second apart, and names sort in time order.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    text = REDACT(json.dumps(document, ensure_ascii=False, indent=2)) + "\n"
    path = folder / f"{stamp}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
        if extra is not None:
            write_atomically(extra, text)
    except OSError as exc:
        raise ArchiveWriteError(f"cannot write the run report: {exc}") from None
    reports = sorted(p for p in folder.glob("*.json"))
    for old in reports[: max(0, len(reports) - max(1, keep))]:
        with contextlib.suppress(OSError):
            old.unlink()
    return path


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, flush it, and rename it into place."""
    temp = path.with_name(path.name + ".tmp")
    with temp.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    temp.replace(path)
