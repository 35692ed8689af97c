"""`archiver verify`: re-hash every archived file against the manifest, and check the sidecars.

Hashing runs in a few worker threads (hashlib and file reads release the GIL, so they really
run side by side), each taking files in batches so a small file costs no thread hop of its own.
A problem is reported by task; the task is sent back to `pending` so the next run fetches it
again, and a changed file is first moved aside to `<name>.corrupt` so the next run cannot take
the damaged bytes for a finished download.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archiver.errors import UsageError
from archiver.lock import ArchiveLock
from archiver.manifest import MANIFEST, ManifestStore
from archiver.output import human_bytes
from archiver.paths import inside
from archiver.settings import Config
from archiver.sidecar import SIDECAR

BATCH = 32
log = logging.getLogger("archiver")
READ_SIZE = 1 << 20


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one item."""

    source: str
    kind: str
    item_id: str
    what: str  # e.g. "video.mp4: missing", "metadata.json: not valid JSON"

    def line(self) -> str:
        return f"{self.source} {self.kind} {self.item_id}: {self.what}"


@dataclass
class VerifyResult:
    """What `verify_archive` found."""

    files: int = 0
    bytes: int = 0
    items: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _FileCheck:
    source: str
    kind: str
    item_id: str
    name: str
    path: str
    bytes: int
    sha256: str
    current: bool


def verify_archive(
    manifest: ManifestStore,
    root: Path,
    *,
    sources: tuple[str, ...] = (),
    quick: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> VerifyResult:
    """Check every archived file (and sidecar) of `sources` (all if empty)."""
    result = VerifyResult()
    items: dict[tuple[str, str, str], tuple[str, dict[str, str]]] = {}
    checks: list[_FileCheck] = []
    for row in manifest.archived_files():
        if sources and row["source"] not in sources:
            continue
        key = (row["source"], row["kind"], row["item_id"])
        _, current = items.setdefault(key, (row["folder"], {}))
        if row["current"]:
            current[row["name"]] = row["sha256"]
        checks.append(
            _FileCheck(
                *key, row["name"], row["path"], row["bytes"], row["sha256"], bool(row["current"])
            )
        )
    for key, folder in _archived_items(manifest, sources):
        items.setdefault(key, (folder, {}))
    result.items = len(items)
    batches = [checks[i : i + BATCH] for i in range(0, len(checks), BATCH)]
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        for found, size in pool.map(lambda b: _check_batch(root, b, quick), batches):
            result.problems.extend(found)
            result.bytes += size
            progress(size)
    result.files = len(checks)
    for (source, kind, item_id), (folder, current) in items.items():
        what = _check_sidecar(root, folder, current)
        if what is not None:
            result.problems.append(Problem(source, kind, item_id, f"{SIDECAR}: {what}"))
    return result


def _archived_items(
    manifest: ManifestStore, sources: tuple[str, ...]
) -> Iterator[tuple[tuple[str, str, str], str]]:
    for row in manifest.db.execute(
        "SELECT source, kind, item_id, folder FROM items WHERE state = 'archived'"
    ):
        if not sources or row["source"] in sources:
            yield (row["source"], row["kind"], row["item_id"]), row["folder"]


def _check_batch(root: Path, batch: list[_FileCheck], quick: bool) -> tuple[list[Problem], int]:
    problems: list[Problem] = []
    total = 0
    for check in batch:
        what, size = _check_file(root, check, quick)
        total += size
        if what is not None:
            problems.append(
                Problem(check.source, check.kind, check.item_id, f"{check.name}: {what}")
            )
    return problems, total


def _check_file(root: Path, check: _FileCheck, quick: bool) -> tuple[str | None, int]:
    try:
        path = inside(root, check.path)
        with path.open("rb") as source:
            size = os.fstat(source.fileno()).st_size
            if size != check.bytes:
                return f"size {size}, expected {check.bytes}", 0
            if quick:
                return None, size
            digest = hashlib.file_digest(source, "sha256").hexdigest()
    except FileNotFoundError:
        return "missing", 0
    except (OSError, ValueError) as exc:
        return f"unreadable ({exc})", 0
    if digest != check.sha256:
        return "content changed (sha256 differs)", size
    return None, size


def _check_sidecar(root: Path, folder: str, current: dict[str, str]) -> str | None:
    try:
        text = inside(root, folder).joinpath(SIDECAR).read_text(encoding="utf-8")
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as exc:
        return f"unreadable ({exc})"
    try:
        document: Any = json.loads(text)
    except ValueError:
        return "not valid JSON"
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        return "no files section"
    recorded = {
        entry.get("name"): entry.get("sha256")
        for entry in files.values()
        if isinstance(entry, dict)
    }
    for name, digest in current.items():
        if recorded.get(name) != digest:
            return f"does not match the manifest for {name}"
    return None


def mark_for_refetch(manifest: ManifestStore, root: Path, problems: list[Problem]) -> None:
    """Send each damaged item back to be fetched again by the next run."""
    damaged_files: dict[tuple[str, str, str], list[str]] = {}
    for p in problems:
        name, _, what = p.what.partition(": ")
        if name != SIDECAR:
            damaged_files.setdefault((p.source, p.kind, p.item_id), []).append(name)
            if what != "missing":
                _move_aside(manifest, root, p, name)
    keys = {(p.source, p.kind, p.item_id) for p in problems}
    with manifest.db:
        for (source, kind, item_id), names in damaged_files.items():
            manifest.db.executemany(
                "DELETE FROM files WHERE source = ? AND kind = ? AND item_id = ? AND name = ?",
                [(source, kind, item_id, n) for n in names],
            )
    manifest.mark_pending(keys, "verify found damage")


def _move_aside(manifest: ManifestStore, root: Path, problem: Problem, name: str) -> None:
    row = manifest.db.execute(
        "SELECT path FROM files WHERE source = ? AND kind = ? AND item_id = ? AND name = ?",
        (problem.source, problem.kind, problem.item_id, name),
    ).fetchone()
    if row is None:
        return
    path = inside(root, row["path"])
    with contextlib.suppress(FileNotFoundError):
        path.replace(path.with_name(path.name + ".corrupt"))


def run_verify(
    config: Config, sources: tuple[str, ...], *, quick: bool, interactive: bool, verbosity: int
) -> int:
    """`archiver verify`: 0 if every file and sidecar checks out, else 1."""
    unknown = set(sources) - {s.name for s in config.sources}
    if unknown:
        raise UsageError(f"no source named {sorted(unknown)[0]!r} in {config.path}")
    path = config.archive_dir / MANIFEST
    if not path.exists():
        log.warning("%s: nothing archived yet", config.archive_dir)
        return 0
    with ArchiveLock(config.archive_dir):
        manifest = ManifestStore.open(path)
        try:
            bar = None
            if interactive and verbosity >= 0:
                from tqdm import tqdm

                bar = tqdm(desc="verified", unit="B", unit_scale=True, unit_divisor=1024)
            try:
                result = verify_archive(
                    manifest,
                    config.archive_dir,
                    sources=sources,
                    quick=quick,
                    progress=bar.update if bar is not None else lambda n: None,
                )
            finally:
                if bar is not None:
                    bar.close()
            if result.problems:
                mark_for_refetch(manifest, config.archive_dir, result.problems)
        finally:
            manifest.close()
    for problem in result.problems:
        print(problem.line(), file=sys.stderr if verbosity < 0 else sys.stdout)
    if verbosity >= 0 and (interactive or result.problems or verbosity > 0):
        damaged = len({(p.source, p.kind, p.item_id) for p in result.problems})
        verdict = (
            f"{damaged} items damaged; the next run fetches them again" if damaged else "all good"
        )
        print(
            f"verified {result.files} files ({human_bytes(result.bytes)}) of "
            f"{result.items} items: {verdict}",
            file=sys.stderr,
        )
    return 1 if result.problems else 0
