"""What sources yield: typed records of one listing page.

A source turns each API record into exactly one of three things: an `ArchiveItem` (a succeeded
task, or a video template, to be archived), an `Unfinished` task (listed but not succeeded:
counted by state, never archived), or a `Rejected` record (malformed: reported, never fetched).
The raw API record rides along untouched in `ArchiveItem.record`, for the sidecar.

A succeeded task with a usable id may come as `Unparsed` instead, its parsing put off: the
listing parses it into one of the three only if the manifest does not hold that very record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ItemKind = Literal["task", "template"]


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One file of an item: its role (the file's stem, e.g. `video`) and where to fetch it.

    `version` is set when the service versions the URL (`?v=2` on templates): a new version
    is archived as a new file beside the old one, named `<role>.v<version><ext>`.
    `expects` says what kind of file it is where the role's name does not (`output-1` of an AI
    creation is a picture or a video, by the task's type); None: the role's name says.
    """

    role: str
    url: str
    version: str | None = None
    expects: Literal["picture", "video"] | None = None


@dataclass(frozen=True, slots=True)
class ArchiveItem:
    """A succeeded task or a template: a folder of media files plus a sidecar."""

    kind: ItemKind
    id: str
    created_at: datetime | None
    media: tuple[MediaRef, ...]
    record: Any
    # role -> why that file cannot be fetched (bad URL, ...); the sidecar says so.
    problems: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A listed task that has not succeeded (queued, generating, failed)."""

    id: str | None
    state: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be archived safely: wrong type, no id, no usable URL."""

    id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Unparsed:
    """A succeeded task of which only the id and the state are read yet.

    A rerun lists thousands of records it archived before, unchanged; parsing each of them
    (shape, size, URLs, time) cost a rerun more than anything else it did per task. The
    listing calls `parse(record)` for the `ArchiveItem` or `Rejected` the source would have
    yielded, when and only when the manifest does not hold this very record as last listed
    (compared by digest), or when it is to be fetched again.
    """

    id: str
    record: Any
    parse: Callable[[Any], Parsed]
    kind: ItemKind = "task"


Parsed = ArchiveItem | Unfinished | Rejected
Listed = Parsed | Unparsed


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, in the order the service gave it."""

    number: int
    items: tuple[Listed, ...] = field(default_factory=tuple)
