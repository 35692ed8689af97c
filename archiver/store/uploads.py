"""Multipart uploads in progress, kept in the state folder so a run killed with -9 resumes them.

One small JSON file per upload, `.archiver/uploads/<digest of its folder and stem>.json`,
rewritten atomically after each part is in the store: the upload id, the media host's
validator and total (to ask for the rest with `Range` + `If-Range`), and each part's number,
ETag, size and SHA-256 (what `CompleteMultipartUpload` needs). The running hash of the whole
file cannot be saved (a hashlib object has no serial form): a resumed file is hashed once it is
complete, by reading it back from the store, so no byte already uploaded is fetched again from
the media host. A file the next run cannot resume (the upload gone, the file changed upstream)
has its upload aborted and starts over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archiver.store.archivefs import archive_folder, atomic_file

FOLDER = ".archiver/uploads"


@dataclass(frozen=True, slots=True)
class Part:
    """One part in the store: what completing the upload names, and how many bytes it holds."""

    number: int
    etag: str
    checksum: str  # base64 SHA-256, as the store was given it
    size: int


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A multipart upload of one media file, as far as it got."""

    relative: str  # the object's path in the archive
    upload_id: str
    url: str
    validator: str  # ETag or Last-Modified of the media host's answer
    total: int  # the file's size as the host announced it
    content_type: str | None
    parts: tuple[Part, ...] = field(default=())

    @property
    def uploaded(self) -> int:
        return sum(p.size for p in self.parts)


class UploadRecords:
    """The resume records of one archive's uploads, in its state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.folder = state_dir / FOLDER

    @staticmethod
    def _name(folder: str, stem: str) -> str:
        return hashlib.sha256(f"{folder}/{stem}".encode()).hexdigest()[:32] + ".json"

    def load(self, folder: str, stem: str) -> UploadRecord | None:
        try:
            raw = json.loads((self.folder / self._name(folder, stem)).read_bytes())
            parts = tuple(Part(**p) for p in raw.pop("parts"))
            return UploadRecord(**raw, parts=parts)
        except (OSError, ValueError, TypeError, KeyError):
            return None  # none, or unreadable: the upload, if any, is aborted as an orphan

    def save(self, folder: str, stem: str, record: UploadRecord) -> None:
        document: dict[str, Any] = asdict(record)
        with (
            archive_folder(self.state_dir, FOLDER) as where,
            atomic_file(where, self._name(folder, stem), durable=True) as out,
        ):
            out.write(json.dumps(document).encode())

    def remove(self, folder: str, stem: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / self._name(folder, stem))  # noqa: PTH108

    def upload_ids(self) -> set[str]:
        """The upload ids some record still means to resume."""
        found: set[str] = set()
        if not self.folder.is_dir():
            return found
        for path in self.folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                found.add(str(json.loads(path.read_bytes())["upload_id"]))
        return found
