"""The archive's lock: one run at a time per archive, released even if the process is killed.

An `flock` on `.archiver/lock` is held for the whole run; the kernel drops it when the process
dies, so a run killed with -9 never leaves a stale lock behind. The run's download processes
hold it too, until they have settled their files: a run that finds the lock held although the
run that took it has ended waits a few seconds for them rather than give up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from archiver.errors import ArchiveBusy, ArchiveWriteError

SETTLE_WAIT = 10.0  # seconds to wait for the download processes of a run that has ended


def _gone(pid: str) -> bool:
    """Whether no process has this pid (a run that ended, or was killed)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False


class ArchiveLock:
    """Exclusive use of one archive folder."""

    def __init__(self, archive_dir: Path) -> None:
        self.path = archive_dir / ".archiver" / "lock"
        self._fd: int | None = None

    def __enter__(self) -> ArchiveLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ArchiveWriteError(f"cannot create {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + SETTLE_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                # The run that wrote its pid has ended, yet the lock is held: its download
                # processes are still settling their files. They are done in a moment.
                if _gone(holder) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                os.close(fd)
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise ArchiveBusy(
                    f"another archiver run holds {self.path.parent.parent}{who}"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def fileno(self) -> int:
        """The locked file's descriptor: a child process that keeps it open holds the lock too."""
        if self._fd is None:
            raise RuntimeError("the lock is not held")
        return self._fd

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
