"""`archiver verify`: re-hash every archived file against the manifest, and check the sidecars.

The work is one pass over the archived items in folder order: each item's files are hashed and
its sidecar parsed right after, so the folder is read while its directory entries are cached.
The manifest is read with one query as plain tuples (`archived_for_verify`), and files are
opened, read and hashed with `os` calls on plain strings (`store.hashing`): at thousands of
small files, pathlib objects, buffered file objects and per-file dataclasses cost more than the
hashing itself (sha256 runs at over 1 GB/s).

Items are checked in chunks; a chunk with many bytes (large files) goes to a worker thread, where
reads and hashing of large blocks run without the GIL, side by side. A problem is reported by
task; the task is sent back to `pending` so the next run fetches it again, and a changed file is
first moved to `.archiver/quarantine/<UTC time>/<its path>` (kept, never deleted) so the next
run cannot take the damaged bytes for a finished download. Then one walk of the payload names
the files the manifest does not know (see `payload`); they are left in place.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archiver.config.settings import Config
from archiver.errors import ArchiverError, UsageError
from archiver.reporting.console import byte_bar, human_bytes
from archiver.store.hashing import open_for_hashing, sha256_file
from archiver.store.lock import ArchiveLock
from archiver.store.manifest import MANIFEST, ManifestStore
from archiver.store.paths import safe_name, within
from archiver.store.payload import Payload, find_strays, quarantine
from archiver.store.queries import VerifyItem
from archiver.store.sidecar import SIDECAR

log = logging.getLogger("archiver")
SIDECAR_READ = 1 << 16  # a sidecar is a few KiB: a 1 MiB buffer for each costs more than a read
CHUNK = 64  # items checked as one unit of work
# A unit of work with at least this many bytes goes to a worker thread. Smaller ones are
# checked on the calling thread: for small files the GIL handed back and forth at every read
# costs more than the threads win (and more again when other work shares the cores), while a
# large file's reads and hashing run without the GIL for a long time.
POOL_BYTES = 16 << 20


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


# What checking some items found: (problems, files checked, bytes checked).
_Checked = tuple[list[Problem], int, int]


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
    items = manifest.archived_for_verify(sources)
    result = VerifyResult(items=len(items))
    base = f"{root}/"
    threads = workers or min(4, os.cpu_count() or 1)
    pool: ThreadPoolExecutor | None = None
    # Results are taken in the order of the items, so problems are reported in folder order.
    queue: deque[Future[_Checked] | _Checked] = deque()
    try:
        for chunk, size in _chunks(items):
            if quick or threads < 2 or size < POOL_BYTES:
                queue.append(_check_items(base, chunk, quick))
            else:
                pool = pool or ThreadPoolExecutor(max_workers=threads)
                queue.append(pool.submit(_check_items, base, chunk, quick))
            # Hands on what is done; waits only to bound what is in flight.
            while queue and (len(queue) > 2 * threads or _ready(queue[0])):
                _take(result, queue.popleft(), progress)
        while queue:
            _take(result, queue.popleft(), progress)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return result


def _chunks(items: list[VerifyItem]) -> Iterator[tuple[list[VerifyItem], int]]:
    """Runs of items, up to CHUNK items or POOL_BYTES of files, with their size."""
    chunk: list[VerifyItem] = []
    size = 0
    for item in items:
        chunk.append(item)
        size += sum(f[2] for f in item[4])
        if len(chunk) >= CHUNK or size >= POOL_BYTES:
            yield chunk, size
            chunk, size = [], 0
    if chunk:
        yield chunk, size


def _ready(entry: Future[_Checked] | _Checked) -> bool:
    return not isinstance(entry, Future) or entry.done()


def _take(
    result: VerifyResult, entry: Future[_Checked] | _Checked, progress: Callable[[int], None]
) -> None:
    problems, files, size = entry.result() if isinstance(entry, Future) else entry
    result.problems.extend(problems)
    result.files += files
    result.bytes += size
    progress(size)


def _check_items(base: str, items: list[VerifyItem], quick: bool) -> _Checked:
    problems: list[Problem] = []
    count = 0
    total = 0
    for source, kind, item_id, folder, files in items:
        current: dict[str, str] = {}
        for name, path, size, sha256, is_current in files:
            what, seen = _check_file(base, path, size, sha256, quick)
            total += seen
            if what is not None:
                problems.append(Problem(source, kind, item_id, f"{name}: {what}"))
            if is_current:
                current[name] = sha256
        count += len(files)
        what = _check_sidecar(base, folder, current)
        if what is not None:
            problems.append(Problem(source, kind, item_id, f"{SIDECAR}: {what}"))
    return problems, count, total


def _check_file(
    base: str, path: str, expected: int, sha256: str, quick: bool
) -> tuple[str | None, int]:
    try:
        fd = open_for_hashing(within(base, path))
    except FileNotFoundError:
        return "missing", 0
    except OSError as exc:
        return _unreadable(exc), 0
    except ValueError as exc:
        return f"unreadable ({exc})", 0
    try:
        if quick:
            size = os.fstat(fd).st_size
            if size != expected:
                return f"size {size}, expected {expected}", 0
            return None, size
        # One byte past the expected end, so a longer file is caught by the same reads that
        # hash it.
        hashed = sha256_file(fd, limit=expected + 1)
        size = hashed.size
        if size != expected:
            return f"size {os.fstat(fd).st_size}, expected {expected}", 0
    except OSError as exc:
        return f"unreadable ({exc})", 0
    finally:
        os.close(fd)
    if hashed.hexdigest() != sha256:
        return "content changed (sha256 differs)", size
    return None, size


def _unreadable(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link, not followed"
    return f"unreadable ({exc.strerror})"


def _check_sidecar(base: str, folder: str, current: dict[str, str]) -> str | None:
    try:
        fd = open_for_hashing(within(base, folder) + "/" + SIDECAR)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return _unreadable(exc)
    except ValueError as exc:
        return f"unreadable ({exc})"
    try:
        blocks = []
        while block := os.read(fd, SIDECAR_READ):
            blocks.append(block)
    except OSError as exc:
        return f"unreadable ({exc})"
    finally:
        os.close(fd)
    return sidecar_problem(b"".join(blocks), current)


def sidecar_problem(data: bytes, current: dict[str, str]) -> str | None:
    """What is wrong with a sidecar's bytes, given the manifest's current files; None if ok."""
    try:
        text = data.decode("utf-8")
    except ValueError as exc:
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


def mark_for_refetch(
    manifest: ManifestStore, root: Path, problems: list[Problem], *, quarantined: bool = False
) -> None:
    """Send each damaged item back to be fetched again by the next run.

    Damaged bytes go to the quarantine first, so the next run cannot take them for a finished
    download. An item whose bytes cannot be moved there (a link in the way) is named and left
    as it is, for the next `verify` to find again. `quarantined`: they are kept already (a
    bucket's, copied by the store).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    damaged_files: dict[tuple[str, str, str], list[str]] = {}
    stuck: set[tuple[str, str, str]] = set()
    for p in problems:
        name, _, what = p.what.partition(": ")
        key = (p.source, p.kind, p.item_id)
        if name != SIDECAR:
            damaged_files.setdefault(key, []).append(name)
            if quarantined or what == "missing":
                continue
            if not _move_aside(manifest, root, p, name, stamp):
                stuck.add(key)
    keys = {(p.source, p.kind, p.item_id) for p in problems} - stuck
    manifest.forget_files({key: names for key, names in damaged_files.items() if key not in stuck})
    manifest.mark_pending(keys, "verify found damage")


def _move_aside(
    manifest: ManifestStore, root: Path, problem: Problem, name: str, stamp: str
) -> bool:
    """Quarantine one damaged file; False (and a line saying why) if it cannot be moved."""
    path = manifest.file_path(problem.source, problem.kind, problem.item_id, name)
    if path is None:
        return True
    try:
        moved = quarantine(root, path, stamp)
    except (ArchiverError, ValueError) as exc:
        log.error("%s: cannot quarantine %s: %s", problem.line(), path, exc)
        return False
    if moved is not None:
        log.info("%s: damaged bytes kept in %s", path, moved)
    return True


def run_verify(
    config: Config, sources: tuple[str, ...], *, quick: bool, interactive: bool, verbosity: int
) -> int:
    """`archiver verify`: 0 if every file and sidecar checks out and nothing is stray, else 1."""
    unknown = set(sources) - {s.name for s in config.sources}
    if unknown:
        raise UsageError(f"no source named {sorted(unknown)[0]!r} in {config.path}")
    if config.s3 is not None:
        from archiver.commands.verify_bucket import run_bucket_verify

        return run_bucket_verify(
            config, config.s3, sources, quick=quick, interactive=interactive, verbosity=verbosity
        )
    path = config.archive_dir / MANIFEST
    if not path.exists():
        raise UsageError(f"{config.archive_dir}: no archive here: nothing has been archived yet")
    with ArchiveLock(config.archive_dir):
        manifest = ManifestStore.open(path)
        # The walk for strays runs beside the hashing (its system calls leave the GIL free).
        # What the quarantine moves meanwhile is known to the manifest, so it is never stray.
        walker = ThreadPoolExecutor(max_workers=1)
        try:
            folders = tuple(safe_name(source) for source in sources)
            walk = walker.submit(
                find_strays, config.archive_dir, manifest.file_paths(sources), folders
            )
            result = _checked(manifest, config.archive_dir, sources, quick, interactive, verbosity)
            if result.problems:
                mark_for_refetch(manifest, config.archive_dir, result.problems)
            payload = walk.result()
        finally:
            walker.shutdown(wait=True)
            manifest.close()
    _tell(result, payload, interactive=interactive, verbosity=verbosity)
    return 1 if result.problems or payload.strays else 0


def _checked(
    manifest: ManifestStore,
    root: Path,
    sources: tuple[str, ...],
    quick: bool,
    interactive: bool,
    verbosity: int,
) -> VerifyResult:
    """`verify_archive`, with a progress bar on a terminal."""
    bar = None
    if interactive and verbosity >= 0:
        bar = byte_bar("verified")
    try:
        return verify_archive(
            manifest,
            root,
            sources=sources,
            quick=quick,
            progress=bar.update if bar is not None else lambda n: None,
        )
    finally:
        if bar is not None:
            bar.close()


def _tell(result: VerifyResult, payload: Payload, *, interactive: bool, verbosity: int) -> None:
    """One line per problem and per stray file, then the verdict."""
    out = sys.stderr if verbosity < 0 else sys.stdout
    for problem in result.problems:
        print(problem.line(), file=out)
    for stray in payload.strays:
        print(f"{stray}: not in the manifest (a stray file, left in place)", file=out)
    if verbosity > 0:
        for part in payload.in_progress:
            print(f"{part}: in progress (the next run resumes or replaces it)", file=out)
    news = result.problems or payload.strays
    if verbosity < 0 or not (interactive or news or verbosity > 0):
        return
    damaged = len({(p.source, p.kind, p.item_id) for p in result.problems})
    verdicts = [f"{damaged} items damaged; the next run fetches them again"] if damaged else []
    if payload.strays:
        verdicts.append(f"{len(payload.strays)} stray files the manifest does not know")
    if payload.in_progress:
        verdicts.append(f"{len(payload.in_progress)} files in progress")
    print(
        f"verified {result.files} files ({human_bytes(result.bytes)}) of "
        f"{result.items} items: {'; '.join(verdicts) or 'all good'}",
        file=sys.stderr,
    )
