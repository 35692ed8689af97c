"""Rebuilding a local archive's lost `manifest.sqlite3` from its sidecars and files.

A run that finds no manifest but sidecars under its sources' folders calls `rebuild_manifest`
before it lists anything: `FolderSidecars` walks those folders, and each file a sidecar names
is hashed (`hashing.sha256_file`, in worker threads, a few items at once) against the sidecar's
size and sha256; `rebuild.adopt_sidecars` records the items whose files all check out. A file
that does not is moved to the quarantine (`.archiver/quarantine/<UTC time>/`), as `verify`
does: left in place, the download would take it for a finished file that a killed run left,
and its damaged bytes would be archived as good. Its item is then fetched again by the run.

Nothing is read through a link: folders are opened part by part (`archivefs.open_folder`)
and files with `O_NOFOLLOW`. A run whose manifest is there never walks the archive: it asks the
manifest whether a rebuild was cut short (`rebuild_due`), and only then goes on with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from archiver.errors import ArchiverError
from archiver.store.archivefs import open_folder, open_root
from archiver.store.hashing import open_for_hashing, sha256_file
from archiver.store.manifest import FileRow, ManifestStore
from archiver.store.paths import safe_name
from archiver.store.payload import quarantine
from archiver.store.rebuild import MAX_SIDECAR, Adoption, adopt_sidecars
from archiver.store.sidecar import SIDECAR

log = logging.getLogger("archiver")
UNFINISHED = "rebuild_unfinished"  # a note in `meta`: "1" while a rebuild runs
QUARANTINES_TOLD = 5  # damaged files named in a warning each; the rest at -v


def rebuild_due(manifest: ManifestStore) -> bool:
    """Whether a rebuild of this manifest began and did not end (its run was killed).

    Then the manifest lists only part of the archive: the rebuild goes on. A manifest with no
    run at all was made by a run killed before it began one. One query of `meta`, one of `runs`.
    """
    return manifest.note(UNFINISHED) == "1" or not manifest.recent_runs(1)


def rebuild_manifest(root: Path, sources: Sequence[str], manifest: ManifestStore) -> Adoption:
    """Record in the new `manifest` every item of `sources` whose sidecar and files check out.

    An archive with none of the sources' folders (a new one) costs a `stat` per source.
    """
    if not any((root / safe_name(name)).is_dir() for name in sources):
        return Adoption()
    manifest.set_note(UNFINISHED, "1")
    run_id = manifest.begin_run("rebuild")
    reader = FolderSidecars(root, sources)
    adoption = Adoption()
    status = 0
    try:
        adoption = asyncio.run(adopt_sidecars(reader, manifest, run_id))
        manifest.set_note(UNFINISHED, "0")
    except BaseException as exc:
        # What was recorded by then stays (whole items only); the next run goes on from there.
        status = 130 if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError) else 1
        raise
    finally:
        reader.close()
        summary = {
            "sidecars": adoption.sidecars,
            "adopted": adoption.adopted,
            "refused": adoption.refused,
            "skipped": adoption.skipped,
            "quarantined": reader.quarantined,
        }
        manifest.finish_run(run_id, status, summary)
    return adoption


class FolderSidecars:
    """The sidecars under the sources' folders of a local archive, and their files' checks."""

    def __init__(self, root: Path, sources: Sequence[str]) -> None:
        self.root = os.fspath(root)
        self.sources = [safe_name(name) for name in dict.fromkeys(sources)]
        self.top = open_root(root)
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.quarantined = 0
        self._counting = threading.Lock()  # checks run in several threads

    def close(self) -> None:
        os.close(self.top.fd)

    async def sidecars(self) -> AsyncIterator[tuple[str, bytes | None]]:
        for source in self.sources:
            # The walk and each sidecar's read are small system calls: done here, between the
            # checks, which hash in threads meanwhile.
            for folder in _folders_with_sidecar(f"{self.root}/{source}", source):
                yield folder, self._read_sidecar(folder)

    def _read_sidecar(self, relative: str) -> bytes | None:
        try:
            folder, _ = open_folder(self.top, relative, create=False)
        except ArchiverError:
            return None
        try:
            fd = open_for_hashing(SIDECAR, dir_fd=folder.fd)
        except OSError:
            return None
        finally:
            os.close(folder.fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = bytearray()
            while len(data) <= MAX_SIDECAR and (block := os.read(fd, 1 << 16)):
                data += block
        except OSError:
            return None
        finally:
            os.close(fd)
        return bytes(data) if len(data) <= MAX_SIDECAR else None

    async def holds(self, row: FileRow) -> bool:
        return await asyncio.to_thread(self._check, row)

    def _check(self, row: FileRow) -> bool:
        """Hash the file (in a worker thread); quarantine it if it is there but not as said."""
        parent, _, name = row.path.rpartition("/")
        try:
            folder, _ = open_folder(self.top, parent, create=False)
        except ArchiverError:
            return False  # gone, or a link in the way
        try:
            fd = open_for_hashing(name, dir_fd=folder.fd)
        except OSError:
            return False
        finally:
            os.close(folder.fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            # One byte past the size, so a longer file is told by the same reads.
            hashed = sha256_file(fd, limit=row.bytes + 1)
        except OSError:
            return False
        finally:
            os.close(fd)
        if hashed.size == row.bytes and hashed.hexdigest() == row.sha256:
            return True
        self._set_aside(row.path)
        return False

    def _set_aside(self, relative: str) -> None:
        try:
            moved = quarantine(Path(self.root), relative, self.stamp)
        except (ArchiverError, ValueError) as exc:
            log.error("%s/%s: damaged, and cannot be quarantined: %s", self.root, relative, exc)
            return
        if moved is None:
            return
        with self._counting:
            self.quarantined += 1
            told = self.quarantined <= QUARANTINES_TOLD
        # The run's one warning counts them all; the first few are named.
        (log.warning if told else log.info)(
            "%s/%s: not as its sidecar says; kept in %s", self.root, relative, moved
        )


def _folders_with_sidecar(top: str, relative: str) -> Iterator[str]:
    """Every folder under `top` (`relative` from the archive root) that holds a sidecar.

    Links are not followed, and dot-named folders (none of the archive's) are passed over.
    """
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    if any(e.name == SIDECAR for e in entries):
        yield relative
    for entry in entries:
        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            yield from _folders_with_sidecar(entry.path, f"{relative}/{entry.name}")
