"""Turning one API task record into a `Listed` value, for any service.

Both services describe a task the same way: an object with an id, a state whose one value means
"succeeded", a creation time and a few media URLs. A service names its fields in `TaskFields`;
`parse_task` does the rest, so every source rejects malformed records by the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archiver.nesting import record_problem
from archiver.records import ArchiveItem, Listed, MediaRef, Rejected, Unfinished
from archiver.sources.fields import media_url, record_id, unix_time


@dataclass(frozen=True)
class TaskFields:
    """Where one service keeps a task's state, creation time and media URLs."""

    state_key: str
    succeeded: int
    state_names: Mapping[int, str]
    created_key: str
    media: tuple[tuple[str, str], ...]  # (role, record key); the first role is required


def parse_task(row: Any, fields: TaskFields) -> Listed:
    """One task record as an `ArchiveItem`, `Unfinished` or `Rejected`."""
    if not isinstance(row, dict):
        return Rejected(None, f"record is a {type(row).__name__}, not an object")
    task_id = record_id(row.get("id"))
    if task_id is None:
        return Rejected(None, "record has no usable id")
    too_much = record_problem(row)
    if too_much is not None:  # the fingerprint and the sidecar could not take it
        return Rejected(task_id, too_much)
    state = row.get(fields.state_key)
    if isinstance(state, bool) or not isinstance(state, int):
        return Rejected(task_id, f"{fields.state_key} is not a number: {str(state)[:40]!r}")
    if state != fields.succeeded:
        return Unfinished(task_id, fields.state_names.get(state, f"{fields.state_key} {state}"))
    media, problems = media_refs(row, fields.media)
    required = fields.media[0][0]
    # The required role comes first: when it is usable, it is `media[0]`.
    if (not media or media[0].role != required) and not any(r.role == required for r in media):
        missing = dict(problems)[required]
        return Rejected(task_id, f"succeeded task without a usable {required} URL: {missing}")
    # Positional: every listed task comes through here.
    created = unix_time(row.get(fields.created_key))
    return ArchiveItem("task", task_id, created, media, row, problems)


def media_refs(
    row: dict[str, Any], fields: tuple[tuple[str, str], ...]
) -> tuple[tuple[MediaRef, ...], tuple[tuple[str, str], ...]]:
    """The usable media URLs of a record, and why each unusable one is not."""
    media: list[MediaRef] = []
    problems: list[tuple[str, str]] = []
    for role, key in fields:
        url, problem = media_url(row.get(key))
        if url is not None:
            media.append(MediaRef(role, url))
        else:
            problems.append((role, f"{key}: {problem}"))
    return tuple(media), tuple(problems)
