"""`python -m bench.catalog`: the catalog of a large archive, built from its manifest.

Archiving 200,000 tasks for real takes most of an hour on a small machine, and the catalog
needs none of the media's bytes: this builds the archive's manifest directly, through the
manifest's own calls (`mark_seen`, then `record` with each item's description as a run makes
it), from the stand-in's records (two thirds face swap, one third Chanjing lip sync), and an
empty file at every media path, so that the catalog finds each file where the manifest says.

Then, each in a round of its own: `write_catalog` in this process (its wall time, the figure
the goal is about), and `archiver index` as a whole process (wall time and peak RSS).
`--sidecars` also writes every item's sidecar and measures the first catalog of the archive as
an archiver of schema version 2 left it: every item described from its sidecar, once.
`--browser` then opens the catalog in headless Chromium and times its first card painted
(`bench.firstcard`; skipped, with a line saying so, without Playwright or Chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.catalog.build import write_catalog
from archiver.catalog.describe import describe_item
from archiver.standin import Dataset, DatasetSpec
from archiver.store.manifest import ManifestStore, Outcome, Seen
from archiver.store.queries import FileRow
from bench.env import archiver_environment
from bench.firstcard import browser_lines
from bench.measure import run_measured

REPO = Path(__file__).resolve().parent.parent
BATCH = 2000  # items per transaction, about what a run's batches add up to


def synthetic_items(tasks: int) -> Iterator[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(source, source type, record, role -> media URL) of `tasks` succeeded tasks."""
    chanjing = tasks // 3
    spec = DatasetSpec(
        vth_tasks=tasks - chanjing,
        chanjing_tasks=chanjing,
        chanjing_videos=0,
        chanjing_avatars=0,
        ai_creations=0,
        succeeded_share=1.0,
    )
    dataset = Dataset(spec)
    for record in dataset.succeeded_vth():
        media = {"video": record["origin"], "cover": record["covering"]}
        yield "faceswap", "video_task_history", record, media
    for record in dataset.succeeded_chanjing():
        media = {"video": record["video_url"], "preview": record["preview_url"]}
        yield "chanjing", "chanjing_lip_sync", record, media


def build_archive(root: Path, tasks: int, *, sidecars: bool) -> None:
    """The manifest of `tasks` archived tasks, and an empty file at each media path."""
    root.mkdir(parents=True)
    manifest = ManifestStore.open(root / "manifest.sqlite3")
    run_id = manifest.begin_run("bench")
    batch: list[tuple[str, Seen, Outcome]] = []
    for source, source_type, record, media in synthetic_items(tasks):
        item_id = str(record["id"])
        created = record.get("createdAt") or record.get("create_time")
        moment = datetime.fromtimestamp(int(created or 0), UTC)
        folder = f"{source}/{moment:%Y/%m}/{item_id}"
        (root / folder).mkdir(parents=True)
        files = []
        for role, url in media.items():
            name = f"{role}.{url.rsplit('/', 1)[-1].rsplit('.', 1)[-1]}"
            os.close(os.open(root / folder / name, os.O_WRONLY | os.O_CREAT, 0o644))
            files.append(FileRow(name, role, f"{folder}/{name}", url, 500, "0" * 64, None))
        if sidecars:
            _write_sidecar(root / folder, source, source_type, record, moment)
        catalog = describe_item(source_type, "task", record, {})
        seen = Seen("task", item_id, folder, f"{moment:%Y-%m-%dT%H:%M:%SZ}")
        outcome = Outcome(source, "task", item_id, "0" * 64, tuple(files), None, catalog)
        batch.append((source, seen, outcome))
        if len(batch) == BATCH:
            _commit(manifest, run_id, batch)
    _commit(manifest, run_id, batch)
    manifest.finish_run(run_id, 0, {})
    manifest.close()


def _commit(manifest: ManifestStore, run_id: int, batch: list[tuple[str, Seen, Outcome]]) -> None:
    for source in {source for source, _, _ in batch}:
        manifest.mark_seen(source, run_id, [seen for s, seen, _ in batch if s == source])
    manifest.record(run_id, [outcome for _, _, outcome in batch])
    batch.clear()


def _write_sidecar(
    folder: Path, source: str, source_type: str, record: dict[str, Any], moment: datetime
) -> None:
    document: dict[str, Any] = {"source": source, "type": source_type, "kind": "task"}
    document["id"] = str(record["id"])
    document |= {"created_at": f"{moment:%Y-%m-%dT%H:%M:%SZ}", "record": record, "missing": {}}
    (folder / "metadata.json").write_text(json.dumps(document, indent=2), encoding="utf-8")


def forget_descriptions(root: Path) -> None:
    """The manifest as schema version 2 left it: no item described, no `catalog` columns."""
    import sqlite3

    db = sqlite3.connect(root / "manifest.sqlite3")
    with db:
        db.execute("ALTER TABLE items DROP COLUMN catalog")
        db.execute("ALTER TABLE items DROP COLUMN catalog_texts")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.close()


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.catalog", description=__doc__)
    parser.add_argument("--tasks", type=int, default=200_000, help="tasks (default 200,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--workdir", type=Path, help="where to build it (default: a temp folder)")
    parser.add_argument(
        "--sidecars",
        action="store_true",
        help="also time the first catalog "
        "of a version 2 manifest, every item described from its sidecar",
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        help="also open the catalog in headless Chromium: time to the first card painted",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-catalog-", dir=args.workdir))
    root = work / "archive"
    try:
        print(f"{os.cpu_count()} cores, {platform.machine()}, load {os.getloadavg()[0]:.1f}")
        took = timed(lambda: build_archive(root, args.tasks, sidecars=args.sidecars))
        print(f"built a manifest of {args.tasks:,} tasks in {took:.0f} s")
        if args.sidecars:
            forget_descriptions(root)
            first = timed(lambda: write_catalog(root))
            print(f"first catalog of the version 2 manifest, from every sidecar: {first:.2f} s")
        walls = [timed(lambda: write_catalog(root)) for _ in range(args.rounds)]
        print(
            f"write_catalog: median {statistics.median(walls):.2f} s "
            f"({', '.join(f'{w:.2f}' for w in walls)})"
        )
        config = work / "config.yaml"
        source = {"type": "video_task_history", "base_url": "http://127.0.0.1:9", "token": "-"}
        config.write_text(json.dumps({"archive_dir": str(root), "sources": {"faceswap": source}}))
        env = archiver_environment(REPO)
        index = [
            run_measured([sys.executable, "-m", "archiver", "index", "-c", config], env=env)
            for _ in range(args.rounds)
        ]
        print(
            f"archiver index: median {statistics.median(m.wall for m in index):.2f} s, "
            f"peak RSS {max(m.max_rss for m in index) / 1e6:.0f} MB"
        )
        size = (root / "index-data.js").stat().st_size
        print(f"index-data.js: {size / 1e6:.0f} MB")
        if args.browser:
            for line in browser_lines(root / "index.html", args.rounds):
                print(line)
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
