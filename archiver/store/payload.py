"""The payload of the archive: what `verify` holds to exactly what the manifest lists.

The payload is every file of the archive except the archive's own: `.archiver/`, the manifest
and its journals, the catalog (`index.html`, `index-data.js`), each source's `SHA256SUMS`, and
each item's `metadata.json` (checked by `verify` on its own). Two kinds of file are the next
run's business and are counted as in progress, not as strays: a download's `.part` and
`.part.json` (its resume state), and the dot-named temporary file of a write that a killed
run left (`.<name>.<random>.tmp`).

Damaged bytes are never deleted: `quarantine` moves them under
`.archiver/quarantine/<UTC time>/<their path in the archive>`.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from archiver.store.archivefs import folder_at, open_folder, open_root, path_error
from archiver.store.manifest import JOURNALS, MANIFEST
from archiver.store.paths import within

QUARANTINE = ".archiver/quarantine"
# At the archive's root: what the archive keeps for itself.
OWN_AT_ROOT = frozenset(
    {
        ".archiver",
        "index.html",
        "index-data.js",
        "index-first.js",
        *(MANIFEST + end for end in JOURNALS),
    }
)
OWN_ANYWHERE = frozenset({"SHA256SUMS", "metadata.json"})
IN_PROGRESS = (".part", ".part.json")


@dataclass
class Payload:
    """What a walk of the payload found besides the files the manifest lists."""

    strays: list[str] = field(default_factory=list)  # paths from the archive root
    in_progress: list[str] = field(default_factory=list)


def find_strays(root: Path, known: Container[str], folders: tuple[str, ...] = ()) -> Payload:
    """Walk the payload (under `folders` only, if given) for files `known` does not hold.

    One pass of `scandir`, whose entries already say file or folder: no call per file.
    Links are not followed; a link is a stray like any file the manifest does not know.
    """
    found = Payload()
    base = os.fspath(root)
    tops = [(f"{base}/{f}", f"{f}/") for f in folders] if folders else [(base, "")]
    for top, prefix in tops:
        for relative, name in _files(top, prefix, at_root=not prefix):
            if relative in known or name in OWN_ANYWHERE:
                continue
            if name.endswith(IN_PROGRESS) or (name.startswith(".") and name.endswith(".tmp")):
                found.in_progress.append(relative)
            else:
                found.strays.append(relative)
    found.strays.sort()
    found.in_progress.sort()
    return found


def _files(folder: str, prefix: str, *, at_root: bool) -> Iterator[tuple[str, str]]:
    """(path from the archive root, name) of every file under `folder`, links included."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if at_root and entry.name in OWN_AT_ROOT:
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _files(entry.path, f"{prefix}{entry.name}/", at_root=False)
        else:
            yield f"{prefix}{entry.name}", entry.name


def quarantine(root: Path, relative: str, stamp: str) -> str | None:
    """Move the file at `relative` to the quarantine of `stamp`; its new path, or None if gone.

    A rename in the one file system: the bytes are kept as they were, never copied or deleted.
    Both folders are opened without following links, so nothing outside the archive is moved.
    """
    parent, _, name = within("", relative).rpartition("/")
    target = f"{QUARANTINE}/{stamp}/{parent}".rstrip("/")
    top = open_root(root)
    try:
        here, _ = open_folder(top, parent, create=False)
        try:
            with folder_at(top, target) as there:
                os.rename(name, name, src_dir_fd=here.fd, dst_dir_fd=there.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise path_error(f"{root}/{relative}", exc) from exc
        finally:
            os.close(here.fd)
    finally:
        os.close(top.fd)
    return f"{target}/{name}"
