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

from archiver.errors import ArchiverError
from archiver.reporting.redact import REDACT
from archiver.reporting.stats import RunStats
from archiver.store.archivefs import Folder, archive_folder, atomic_file

RUNS = ".archiver/runs"
LOOK_BACK = 30  # reports read for the rejections of the sources' last runs


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
    # Microseconds keep two runs in one second apart, and names sort in time order.
    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ") + ".json"
    data = (REDACT(json.dumps(document, ensure_ascii=False, indent=2)) + "\n").encode("utf-8")
    try:
        with archive_folder(archive_dir, RUNS) as folder:
            with atomic_file(folder, name, durable=True) as out:
                out.write(data)
            _prune(folder, keep)
            path = Path(folder.path) / name
        if extra is not None:
            # Outside the archive, where the user asked: their folder, links and all.
            with (
                archive_folder(extra.parent, "") as elsewhere,
                atomic_file(elsewhere, extra.name, durable=True) as out,
            ):
                out.write(data)
    except ArchiverError as exc:
        raise type(exc)(f"cannot write the run report: {exc}") from exc
    return path


def rejected_before(archive_dir: Path, sources: list[str]) -> dict[str, frozenset[Any]]:
    """Per source, the (id, reason) of the rejected records its newest report names.

    Reads reports newest first until each of `sources` is found (a run of `--source` lists
    only some); a report that cannot be read counts as none. Never raises.
    """
    found: dict[str, frozenset[Any]] = {}
    try:
        names = sorted((archive_dir / RUNS).glob("*.json"), reverse=True)
    except OSError:
        return found
    for path in names[:LOOK_BACK]:
        if len(found) == len(sources):
            break
        try:
            document = json.loads(path.read_bytes())
            for name, source in document["sources"].items():
                if name in sources and name not in found:
                    found[name] = frozenset((r["id"], r["reason"]) for r in source["rejections"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def _prune(folder: Folder, keep: int) -> None:
    """Remove all but the newest `keep` reports (an unlink removes a link, never its target)."""
    reports = sorted(n for n in os.listdir(folder.fd) if n.endswith(".json"))  # noqa: PTH208
    for old in reports[: max(0, len(reports) - max(1, keep))]:
        with contextlib.suppress(OSError):
            os.unlink(old, dir_fd=folder.fd)
