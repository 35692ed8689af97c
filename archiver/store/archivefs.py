"""Writing inside the archive without ever going through a link the run did not make.

The archive may be written by a more privileged account than the other users of its folders,
so a symbolic link planted inside it must never redirect a write. Two functions carry every
write of a run:

- `open_folder` opens a folder of the archive part by part, each part relative to the one
  before with `O_NOFOLLOW | O_DIRECTORY`, making the missing ones. A link or a file met on the
  way is an `ArchivePathError` that names it. The archive folder itself is opened normally: a
  link there is the user's choice.
- `atomic_file` writes a file into such an open folder: a temporary file of unpredictable name,
  created with `O_CREAT | O_EXCL | O_NOFOLLOW`, renamed over the final name once written. A
  rename replaces a link rather than following it, so whatever was at the name stays untouched.

An `OSError` becomes an `ArchiveWriteError` (the run stops) only when the whole archive is at
fault: a full disk, a file size limit, a read-only or failing file system. Anything else fails
only what went through the path, as an `ArchivePathError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from archiver.errors import ArchivePathError, ArchiverError, ArchiveWriteError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
# The temporary name `atomic_file` gives: `.<name>.<12 hex digits>.tmp`.
TEMP_NAME = re.compile(r"\.(.+)\.[0-9a-f]{12}\.tmp")
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
# Errors that are the archive's as a whole, not one path's: going on would only fail again.
ARCHIVE_WIDE = frozenset(
    code
    for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG, errno.EROFS, errno.EIO)
    if code is not None
)


class Folder(NamedTuple):
    """An open folder of the archive: its descriptor, and its path for messages and downloads."""

    fd: int
    path: str


def path_error(path: str, exc: OSError) -> ArchiverError:
    """The error to raise for `exc` met at `path`: the run's if archive-wide, else the path's."""
    if exc.errno in ARCHIVE_WIDE:
        return ArchiveWriteError(f"cannot write {path}: {exc.strerror}")
    if exc.errno == errno.ELOOP:
        return ArchivePathError(f"{path}: a symbolic link inside the archive; not followed")
    return ArchivePathError(f"cannot use {path}: {exc.strerror}")


def archive_wide(exc: BaseException) -> bool:
    """Whether `exc` (an `OSError`, or an error raised while handling one) ends the run."""
    if isinstance(exc, ArchiveWriteError):
        cause = exc.__cause__ or exc.__context__
        # Without an OSError behind it (the manifest's SQLite error), it is the archive's.
        return not isinstance(cause, OSError) or cause.errno in ARCHIVE_WIDE
    return isinstance(exc, OSError) and exc.errno in ARCHIVE_WIDE


def open_root(root: str | Path) -> Folder:
    """Open the archive folder itself, following a link there (the user's choice)."""
    path = os.fspath(root)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError as exc:
        raise path_error(path, exc) from exc
    return Folder(fd, path)


def open_folder(parent: Folder, relative: str, *, create: bool = True) -> tuple[Folder, bool]:
    """Open `relative` under `parent`, part by part, never through a link; make what is missing.

    Returns the folder (the caller closes it) and whether its last part was made just now.
    """
    fd = os.dup(parent.fd)
    path = parent.path
    made = False
    try:
        for part in relative.split("/") if relative else ():
            if part in ("", ".", ".."):
                raise ArchivePathError(f"{path}/{relative}: not a path inside the archive")
            path = f"{path}/{part}"
            inner, made = _open_part(fd, part, path, create)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return Folder(fd, path), made


def _open_part(parent: int, name: str, path: str, create: bool) -> tuple[int, bool]:
    # Open first: the folder is usually there, and then one call is all it costs.
    made = False
    try:
        try:
            return os.open(name, FOLDER_FLAGS, dir_fd=parent), made
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):  # made meanwhile, or a link: see below
                os.mkdir(name, 0o777, dir_fd=parent)
                made = True
            return os.open(name, FOLDER_FLAGS, dir_fd=parent), made
    except OSError as exc:
        raise _folder_error(parent, name, path, exc) from exc


def _folder_error(parent: int, name: str, path: str, exc: OSError) -> ArchiverError:
    """Say what is in the way: a link, or something that is not a folder."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        try:
            mode = os.lstat(name, dir_fd=parent).st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode):
            return ArchivePathError(f"{path}: a symbolic link inside the archive; not followed")
        if mode and not stat.S_ISDIR(mode):
            return ArchivePathError(f"{path}: not a folder")
    return path_error(path, exc)


@contextlib.contextmanager
def folder_at(parent: Folder, relative: str) -> Iterator[Folder]:
    """`open_folder` as a context that closes the folder."""
    folder, _ = open_folder(parent, relative)
    try:
        yield folder
    finally:
        os.close(folder.fd)


@contextlib.contextmanager
def archive_folder(root: str | Path, relative: str) -> Iterator[Folder]:
    """The folder `relative` of the archive at `root`, made if missing, closed after."""
    top = open_root(root)
    try:
        with folder_at(top, relative) as folder:
            yield folder
    finally:
        os.close(top.fd)


@contextlib.contextmanager
def atomic_file(folder: Folder, name: str, *, durable: bool) -> Iterator[BinaryIO]:
    """Yield a new file that replaces `folder/name` once the block ends without error.

    With `durable`, the file and then the folder are flushed to disk; without, durability
    is the caller's (a batch flush). An error leaves `name` as it was and no temporary file.
    """
    path = f"{folder.path}/{name}"
    # A name of our own that nobody can guess, starting with a dot (so no id can take it).
    temp = f".{name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(temp, NEW_FILE_FLAGS, 0o666, dir_fd=folder.fd)
    except OSError as exc:
        raise path_error(path, exc) from exc
    try:
        with open(fd, "wb") as out:
            yield out
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        if durable:
            os.fsync(folder.fd)  # the rename is durable only once its folder is
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=folder.fd)
        if isinstance(exc, OSError):
            raise path_error(path, exc) from exc
        raise


def remove_leftovers(folder: Folder, names: tuple[str, ...] = ()) -> None:
    """Delete the temporary files that killed writes of `names` (of any name if none) left.

    Only a run holding the archive's lock calls this, so no other write of them is under way;
    they are only ever the tool's own half-written copies, whose final file is written anew.
    """
    try:
        entries = os.listdir(folder.fd)  # noqa: PTH208 (a descriptor: no path to follow)
    except OSError as exc:
        raise path_error(folder.path, exc) from exc
    for entry in entries:
        match = TEMP_NAME.fullmatch(entry)
        if match and (not names or match.group(1) in names):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry, dir_fd=folder.fd)


def open_regular(folder: Folder, name: str, flags: int, mode: int = 0o644) -> int:
    """Open a file to change in place (the lock), refusing a link, a non-file or a hard link."""
    path = f"{folder.path}/{name}"
    try:
        fd = os.open(name, flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=folder.fd)
    except OSError as exc:
        raise path_error(path, exc) from exc
    info = os.fstat(fd)
    # A second hard link would let a write in place reach a file outside the archive.
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise ArchivePathError(f"{path}: not a plain file of its own; not used")
    return fd


def refuse_links(folder: str | Path, names: tuple[str, ...]) -> None:
    """Raise `ArchivePathError` if any of `names` in `folder` is a symbolic link."""
    for name in names:
        path = Path(folder, name)
        if path.is_symlink():
            raise ArchivePathError(f"{path}: a symbolic link inside the archive; not followed")


class ItemFolders:
    """Item folders for one run: the folders above them stay open, so an item opens one part.

    Used from the event loop only. `close` releases every descriptor.
    """

    MAX_OPEN = 128  # folders above items kept open (a source, its years, their months)

    def __init__(self, root: str | Path) -> None:
        self.root = os.fspath(root)
        self._open: dict[str, Folder] = {}

    def open(self, relative: str) -> tuple[Folder, bool]:
        """Open (or make) the item folder `relative`; the caller closes it. True if made now."""
        above, _, name = relative.rpartition("/")
        return open_folder(self._above(above), name)

    def _above(self, relative: str) -> Folder:
        folder = self._open.get(relative)
        if folder is None:
            if len(self._open) >= self.MAX_OPEN:
                self.close()
            top = self._open.get("")
            if top is None:
                top = self._open[""] = open_root(self.root)
            folder = open_folder(top, relative)[0] if relative else top
            self._open[relative] = folder
        return folder

    def close(self) -> None:
        for folder in self._open.values():
            os.close(folder.fd)
        self._open.clear()
