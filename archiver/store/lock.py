"""The archive's lock: one run at a time per archive, released even if the process is killed.

An `flock` on `.archiver/lock` is held for the whole run; the kernel drops it when the process
dies, so a run killed with -9 never leaves a stale lock behind. A link at `.archiver` or at
the lock is refused (`ArchivePathError`, exit 2): nothing is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from archiver.errors import ArchiveBusy
from archiver.store.archivefs import archive_folder, open_regular


def busy(where: object, holder: str | None) -> ArchiveBusy:
    """The one line said when another run holds an archive (a folder or a bucket prefix)."""
    who = f" ({holder})" if holder else ""
    return ArchiveBusy(f"another archiver run holds {where}{who}")


class HeldLock:
    """A lock held for a `with` block and let go however the block ends (`release`)."""

    def release(self) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class ArchiveLock(HeldLock):
    """Exclusive use of one archive folder."""

    def __init__(self, archive_dir: Path) -> None:
        self.path = archive_dir / ".archiver" / "lock"
        self._fd: int | None = None

    def __enter__(self) -> ArchiveLock:
        # `.archiver` and the lock file are opened without following links: the lock file is
        # the one file a run changes in place, so it must be a plain file of the archive's own.
        with archive_folder(self.path.parent.parent, ".archiver") as folder:
            fd = open_regular(folder, self.path.name, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            pid = f"pid {holder}" if holder.isdigit() else None
            raise busy(self.path.parent.parent, pid) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
