"""The last run as metrics, in node_exporter's textfile format (`--metrics-file`).

node_exporter's textfile collector reads every `*.prom` file of a folder; this one is rewritten
after each run, atomically (a temporary file in the same folder, then a rename), so the
collector never reads half of it. An alert on `archiver_last_run_exit_status != 0`, or on an
end time that stops moving, watches a nightly run without reading its mail.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from archiver.reporting.stats import RunStats
from archiver.store.archivefs import archive_folder, atomic_file
from archiver.store.manifest import MANIFEST, ManifestStore


@dataclass(frozen=True)
class RunFacts:
    """What the metrics say of one run."""

    started: float  # Unix seconds
    ended: float
    exit_status: int
    sources: dict[str, tuple[int, int, int]] = field(
        default_factory=dict
    )  # archived, failed, bytes
    archive_bytes: int | None = None  # None: no manifest to read it from

    @classmethod
    def of_run(
        cls,
        stats: RunStats | None,
        *,
        started: float,
        ended: float,
        exit_status: int,
        archive_dir: Path,
    ) -> RunFacts:
        per_source = {
            name: (s.archived + s.templates_archived, s.failed, s.bytes)
            for name, s in (stats.sources.items() if stats is not None else ())
        }
        return cls(started, ended, exit_status, per_source, archive_size(archive_dir))


def archive_size(archive_dir: Path) -> int | None:
    """The bytes of every archived file, from the manifest (None if there is none)."""
    from archiver.commands.status import archive_status  # it reads the manifest's tables

    path = archive_dir / MANIFEST
    if not path.is_file():
        return None
    manifest = ManifestStore.open(path, readonly=True)
    try:
        return archive_status(manifest, failures_listed=0).bytes
    finally:
        manifest.close()


def metrics_text(facts: RunFacts) -> str:
    """The textfile: HELP and TYPE lines, then the samples, every name prefixed `archiver_`."""
    return "".join(f"{line}\n" for line in _lines(facts))


def _lines(facts: RunFacts) -> Iterator[str]:
    yield from _metric(
        "last_run_start_timestamp_seconds",
        "When the last run started, in Unix seconds.",
        {"": facts.started},
    )
    yield from _metric(
        "last_run_end_timestamp_seconds",
        "When the last run ended, in Unix seconds.",
        {"": facts.ended},
    )
    yield from _metric(
        "last_run_exit_status",
        "The last run's exit status: 0 all archived, 1 items failed, 2 configuration error, "
        "3 a source not listed, 4 archive busy, 130 interrupted.",
        {"": facts.exit_status},
    )
    columns = (
        ("last_run_items_archived", "Tasks and templates newly archived by the last run."),
        ("last_run_items_failed", "Tasks and templates that failed in the last run."),
        ("last_run_bytes", "Media bytes received by the last run."),
    )
    for index, (name, help_text) in enumerate(columns):
        samples = {_labels(source=s): v[index] for s, v in sorted(facts.sources.items())}
        if samples:
            yield from _metric(name, help_text, samples)
    if facts.archive_bytes is not None:
        yield from _metric(
            "archive_size_bytes",
            "Bytes of every file the manifest lists as archived.",
            {"": facts.archive_bytes},
        )


def _metric(name: str, help_text: str, samples: Mapping[str, float]) -> Iterator[str]:
    yield f"# HELP archiver_{name} {help_text}"
    yield f"# TYPE archiver_{name} gauge"
    for labels, value in samples.items():
        number = f"{value:.3f}" if isinstance(value, float) else str(value)
        yield f"archiver_{name}{labels} {number}"


def _labels(**labels: str) -> str:
    # The format's escapes: backslash, double quote and line feed.
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def write_metrics(path: Path, facts: RunFacts) -> None:
    """Replace the textfile at `path` in one rename; OSError or ArchiverError if it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The user's own folder, links and all; the file itself is replaced, never written through.
    with (
        archive_folder(path.parent, "") as folder,
        atomic_file(folder, path.name, durable=False) as out,
    ):
        out.write(metrics_text(facts).encode("utf-8"))
