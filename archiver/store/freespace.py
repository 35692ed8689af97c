"""Keeping `min_free_space` free on the archive's file system.

A backup that fills the disk takes the user's other programs down with it, and a file cut by
ENOSPC is only resumed once someone makes room. So no download starts, and none goes on (checked
per file and per block written, one `statvfs` each), below `min_free_space`: `DiskSpaceLow`
stops the run, which records what it finished.

A run that finds the disk short at its start first deletes its own partial downloads (`.part`
files and their `.part.json`, in the configured sources' folders), largest first, until there
is room: they are only ever its own leftovers, refetched when needed. It deletes nothing else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from stat import S_ISREG

from archiver.errors import ArchiveWriteError, DiskSpaceLow
from archiver.reporting.console import human_bytes

log = logging.getLogger("archiver")

PART_SUFFIX = ".part"


class FreeSpace:
    """The free space the archive at `root` must keep; `minimum` 0 disables every check."""

    __slots__ = ("minimum", "root")

    def __init__(self, root: str, minimum: int) -> None:
        self.root = root
        self.minimum = minimum

    def free(self) -> int:
        """Bytes an unprivileged process may still write on the archive's file system."""
        try:
            info = os.statvfs(self.root)
        except OSError as exc:
            raise ArchiveWriteError(f"cannot read the free space of {self.root}: {exc}") from exc
        return info.f_bavail * info.f_frsize

    def check(self) -> None:
        """Raise `DiskSpaceLow` if less than `minimum` is free."""
        if self.minimum > 0:
            free = self.free()
            if free < self.minimum:
                raise DiskSpaceLow(self.shortage(free))

    def shortage(self, free: int) -> str:
        """The one line that says the disk is short, naming the folder."""
        return (
            f"only {human_bytes(free)} free on {self.root} "
            f"(min_free_space is {human_bytes(self.minimum)}); stopped"
        )

    def make_room(self, sources: Iterable[str]) -> None:
        """Delete the run's own `.part` files, largest first, until `minimum` is free.

        Only in the folders of `sources` (the configured source names); raises `DiskSpaceLow`
        if there is still too little room once they are all gone.
        """
        if self.minimum <= 0:
            return
        free = self.free()
        if free >= self.minimum:
            return
        for path, size in sorted(_parts(self.root, sources), key=lambda p: -p[1]):
            try:
                Path(path).unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("could not delete %s to make room: %s", path, exc.strerror)
                continue
            _remove_meta(path + ".json")
            log.warning(
                "deleted the partial download %s (%s) to keep min_free_space free",
                path,
                human_bytes(size),
            )
            free = self.free()
            if free >= self.minimum:
                return
        raise DiskSpaceLow(self.shortage(free))


def _parts(root: str, sources: Iterable[str]) -> list[tuple[str, int]]:
    """Every regular `.part` file in the sources' folders, with its size; links are skipped."""
    found: list[tuple[str, int]] = []
    for name in sources:
        top = f"{root}/{name}"
        # os.walk follows no link to a folder, but would start down one: nothing outside the
        # archive is looked at.
        if Path(top).is_symlink():
            continue
        for folder, _, files in os.walk(top):
            for file in files:
                if not file.endswith(PART_SUFFIX):
                    continue
                path = f"{folder}/{file}"
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if S_ISREG(info.st_mode):
                    found.append((path, info.st_blocks * 512))
    return found


def _remove_meta(path: str) -> None:
    meta = Path(path)
    try:
        if S_ISREG(meta.lstat().st_mode):
            meta.unlink()
    except OSError:
        pass  # gone already; without its .part it is dropped by the next run anyway
