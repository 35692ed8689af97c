"""Turning one API task record into a `Listed` value, for any service.

Every service describes a task the same way: an object with an id, a state whose one value
means "succeeded", a creation time and a few media URLs (some in a list). A service names its
fields in `TaskFields`; `parse_task` does the rest, so every source rejects malformed records
by the same rules. `parse_later` puts the parsing of a succeeded task off (`Unparsed`), for the
listing to do only where the record is not the one the manifest holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archiver.sources.fields import media_url, record_id, task_state, unix_time
from archiver.sources.nesting import record_problem
from archiver.sources.records import (
    ArchiveItem,
    Listed,
    MediaRef,
    Parsed,
    Rejected,
    Unfinished,
    Unparsed,
)


@dataclass(frozen=True)
class TaskFields:
    """Where one service keeps a task's id, state, creation time and media URLs."""

    state_key: str
    succeeded: int | str
    state_names: Mapping[int | str, str]
    created_key: str
    media: tuple[tuple[str, str], ...]  # (role, record key)
    # The role a succeeded task cannot be archived without; None: any one usable file will do.
    required: str | None
    id_key: str = "id"
    # (role prefix, record key) of an array of URLs: roles `<prefix>-1`, `<prefix>-2`, ...
    media_list: tuple[str, str] | None = None
    # (role, record key) of files a task may not have: absent or "" means none, not a problem.
    optional: tuple[tuple[str, str], ...] = ()


def parse_later(row: Any, fields: TaskFields, parse: Callable[[Any], Parsed]) -> Listed:
    """A succeeded task with a usable id as `Unparsed`; any other record as `parse` has it.

    `parse` is `parse_task` with these `fields` (and what a source adds to it). Only the id
    and the state are read here: whatever `parse_task` would reject the record for (its
    shape, its size, its URLs) is found when the listing parses it, as it must once for any
    record the manifest has not seen as it is.
    """
    if type(row) is dict:
        task_id = record_id(row.get(fields.id_key))
        state = row.get(fields.state_key)
        # `type(...) is`: a bool is an int to isinstance, and parse_task rejects it.
        succeeded = type(state) is type(fields.succeeded) and state == fields.succeeded
        if task_id is not None and succeeded:
            return Unparsed(task_id, row, parse)
    return parse(row)


def parse_task(row: Any, fields: TaskFields) -> Parsed:
    """One task record as an `ArchiveItem`, `Unfinished` or `Rejected`."""
    if not isinstance(row, dict):
        return Rejected(None, f"record is a {type(row).__name__}, not an object")
    task_id = record_id(row.get(fields.id_key))
    if task_id is None:
        return Rejected(None, "record has no usable id")
    too_much = record_problem(row)
    if too_much is not None:  # the fingerprint and the sidecar could not take it
        return Rejected(task_id, too_much)
    given_state = row.get(fields.state_key)
    state = task_state(given_state, fields.succeeded)
    if state is None:
        kind = "text" if isinstance(fields.succeeded, str) else "a number"
        return Rejected(task_id, f"{fields.state_key} is not {kind}: {str(given_state)[:40]!r}")
    if state != fields.succeeded:
        return Unfinished(task_id, fields.state_names.get(state, f"{fields.state_key} {state}"))
    given = tuple((role, key) for role, key in fields.optional if row.get(key) not in (None, ""))
    media, problems = media_refs(row, fields.media + given)
    if fields.media_list is not None:
        listed, list_problems = list_refs(row, *fields.media_list)
        media, problems = media + listed, problems + list_problems
    why = _unusable(media, problems, fields.required)
    if why is not None:
        return Rejected(task_id, why)
    # Positional: every listed task comes through here.
    created = unix_time(row.get(fields.created_key))
    return ArchiveItem("task", task_id, created, media, row, problems)


def _unusable(
    media: tuple[MediaRef, ...], problems: tuple[tuple[str, str], ...], required: str | None
) -> str | None:
    """Why a succeeded task cannot be archived, or None when it can."""
    if required is None:
        if media:
            return None
        return "succeeded task without a usable URL: " + "; ".join(p for _, p in problems)
    # The required role comes first: when it is usable, it is `media[0]`.
    if (media and media[0].role == required) or any(r.role == required for r in media):
        return None
    return f"succeeded task without a usable {required} URL: {dict(problems)[required]}"


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


def list_refs(
    row: dict[str, Any], prefix: str, key: str
) -> tuple[tuple[MediaRef, ...], tuple[tuple[str, str], ...]]:
    """The usable URLs of the array `row[key]` as roles `<prefix>-<n>`, and why others are not.

    Numbers follow the array's order, bad entries included, so a file keeps its number
    whatever becomes of the entries before it.
    """
    values = row.get(key)
    if values is None or values == []:
        return (), ((f"{prefix}-1", f"{key}: no URL given"),)
    if not isinstance(values, list):
        return (), ((f"{prefix}-1", f"{key}: a {type(values).__name__}, not a list"),)
    media: list[MediaRef] = []
    problems: list[tuple[str, str]] = []
    for number, value in enumerate(values, start=1):
        url, problem = media_url(value)
        role = f"{prefix}-{number}"
        if url is not None:
            media.append(MediaRef(role, url))
        else:
            problems.append((role, f"{key}[{number - 1}]: {problem}"))
    return tuple(media), tuple(problems)
