"""The catalog's data script, `index-data.js`: every archived item as the page shows it.

Written as the manifest is read, one item at a time (one query: one snapshot of the manifest;
only the templates and the per-source counts are kept in memory). What an item shows of its
record comes from the manifest too (`items.catalog`, see `describe`); what this module adds is
where things are, as links, and whether each file is in the archive, which the caller says
(a local archive looks, a bucket's objects are what the manifest lists).

Every link is relative and percent-encoded per segment, so the archive can be moved and
nothing can point outside it; a path that could leave the archive is not linked at all. The
script escapes every `<`, so no text from a record can close a script tag.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO
from urllib.parse import quote

from archiver.catalog.describe import Description
from archiver.sources import source_types
from archiver.store.queries import CatalogItem

if TYPE_CHECKING:
    from archiver.catalog.first import FirstScreen

DATA_FORMAT = 1
SIDECAR_NAME = "metadata.json"
UNREADABLE = "sidecar unreadable: metadata.json is missing or not valid JSON"
# A path of unreserved URL characters only, none of its parts `.` or `..`, is already a
# relative URL as it stands: one match, where checking part by part costs more than the rest.
_PLAIN_PATH = re.compile(r"(?!\.\.?(?:/|\Z))[\w.~-]+(?:/(?!\.\.?(?:/|\Z))[\w.~-]+)*", re.ASCII)
# ASCII-only JSON is valid JS and cannot carry U+2028 or lone surrogates into the file.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
# A string as `_ENCODER` writes it (json's own C function): entries are written by hand, a
# few times faster than encoding a dict per item, which counts at 200,000 items.
_string = json.encoder.encode_basestring_ascii
_BOOL = ("false", "true")

# Whether a file, by its path from the archive root, is in the archive.
Present = Callable[[str], bool]
# The description of an item the manifest does not describe (None: its sidecar is unreadable).
Fallback = Callable[[CatalogItem], Description | None]


class Card(NamedTuple):
    """How a card uses the item's files (`items.catalog`, parsed)."""

    type: str | None
    picture: bool
    video_roles: tuple[str, ...]
    image_roles: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]  # (role, why)


# An item that is not described: the roles a plain record view plays and shows.
_UNKNOWN = Card(None, False, ("video",), ("cover", "preview", "thumb"), ())


def write_data(
    items: Iterable[CatalogItem],
    out: TextIO,
    build: tuple[str, str],
    present: Present,
    fallback: Fallback,
    first: FirstScreen | None = None,
) -> dict[str, int]:
    """Write the data script of `items` into `out`; return the counts the page shows.

    `build` is the (token, time) of this build, which the page checks it was given. `first`,
    if given, is offered every entry written, for the first script (`first.write_first`).
    """
    token, built_at = build
    sources: dict[str, dict[str, Any]] = {}
    templates: list[str] = []
    out.write("/* The archiver catalog's data, rebuilt from the manifest. Do not edit. */\n")
    out.write(f'window.ARCHIVER_CATALOG = {{"format": {DATA_FORMAT}, ')
    out.write(f'"token": {js(token)}, "built": {js(built_at)},\n"tasks": [\n')
    separator = ""
    for item in items:
        entry, type_name = _entry(item, present, fallback)
        totals = sources.get(item.source)
        if totals is None:
            totals = sources[item.source] = {"type": None, "tasks": 0, "templates": 0, "bytes": 0}
        if totals["type"] is None and type_name is not None:
            totals["type"] = type_name
            totals["label"] = _label(type_name)
        totals["bytes"] += sum(int(row[4] or 0) for row in item.files)
        if item.kind == "template":
            totals["templates"] += 1
            templates.append(entry)
            if first is not None:
                first.template(item, entry)
            continue
        totals["tasks"] += 1
        if first is not None:
            first.task(item, entry)
        out.write(separator + entry)
        separator = ",\n"
    out.write('\n],\n"templates": [\n' + ",\n".join(templates))
    out.write(f'\n],\n"sources": {js(sources)}\n}};\n')
    if first is not None:
        first.sources = js(sources)
    return {
        "tasks": sum(totals["tasks"] for totals in sources.values()),
        "templates": len(templates),
        "bytes": sum(totals["bytes"] for totals in sources.values()),
    }


def _entry(item: CatalogItem, present: Present, fallback: Fallback) -> tuple[str, str | None]:
    """One item as the page reads it, in JSON; and its source type, if known.

    What the page needs: the item's texts, relative links, and the state of its files. Keys
    come in a fixed order and those without a value are left out.
    """
    folder = href(item.folder, folder=True)
    # A folder that could lead out of the archive is neither read...
    described = None if folder is None else _description(item, fallback)
    card = _card(described[0]) if described else _UNKNOWN
    files, shown, gone = _files(item, present)
    parts = ['{"source":', _string(item.source), ',"id":', _string(item.id)]
    if item.created_at is not None:
        parts += [',"created":', _string(item.created_at)]
    if item.archived_at is not None:
        parts += [',"archived":', _string(item.archived_at)]
    if folder is not None:  # ...nor linked
        parts += [',"folder":', _string(folder), ',"sidecar":', _string(folder + SIDECAR_NAME)]
    video = None if card.picture else _first(shown, card.video_roles)
    if video is not None:
        parts += [',"video":', _string(video)]
    image = _first(shown, card.image_roles)
    if image is not None:
        parts += [',"image":', _string(image)]
    if card.picture:
        parts.append(',"picture":true')
    parts += [',"files":[', ",".join(files), "]"]
    if described is not None and described[1] != "{}":
        parts += [",", described[1][1:-1]]  # the texts, encoded when the item was described
    state, level, problems = _health(described is not None, card, gone)
    parts += [',"state":', _string(state), ',"level":', _string(level)]
    parts += [',"problems":[', ",".join(map(_string, problems)), "]}"]
    # '<' only ever occurs inside strings, where \u003c means the same.
    return "".join(parts).replace("<", "\\u003c"), card.type


def _description(item: CatalogItem, fallback: Fallback) -> Description | None:
    if item.catalog is None or item.catalog_texts is None:
        return fallback(item)
    return item.catalog, item.catalog_texts


def _files(item: CatalogItem, present: Present) -> tuple[list[str], dict[str, str], list[str]]:
    """Each file's entry; the links of the current files there, by role; the names of those not.

    Whether a file is there is looked up so that a card offers no player for a file that is not.
    """
    files: list[str] = []
    shown: dict[str, str] = {}
    gone: list[str] = []
    # The manifest's columns are text (SQLite makes them so), `bytes` an integer.
    for role, name, path, url, size, current in item.files:
        link = href(path)
        here = link is not None and present(path)
        if current and here and link is not None:  # (`here` says there is a link)
            shown[role] = link
        elif current:
            gone.append(name)
        files.append(
            f'{{"role":{_string(role)},"name":{_string(name)},'
            f'"href":{"null" if link is None else _string(link)},"bytes":{_number(size)},'
            f'"url":{_string(url)},"current":{_BOOL[bool(current)]},"present":{_BOOL[here]}}}'
        )
    return files, shown, gone


def _number(value: Any) -> str:
    # An int, as the column is; anything else SQLite may hold, as JSON has it.
    return str(value) if type(value) is int else _ENCODER.encode(value)


@functools.lru_cache(maxsize=1024)
def _card(text: str) -> Card:
    """`items.catalog` parsed; the same few texts recur in thousands of items."""
    card = json.loads(text)
    return Card(
        card.get("type"),
        bool(card.get("picture")),
        tuple(card["video"]),
        tuple(card["image"]),
        tuple(card["missing"].items()),
    )


def _first(shown: dict[str, str], roles: tuple[str, ...]) -> str | None:
    for role in roles:
        if role in shown:
            return shown[role]
    return None


def _health(described: bool, card: Card, gone: list[str]) -> tuple[str, str, list[str]]:
    """The state a card shows, its level (ok, warn, error) and every problem in words."""
    problems = [f"{name} is missing from the archive folder" for name in gone]
    if not described:
        return "sidecar unreadable", "error", [UNREADABLE, *problems]
    problems += [f"{role} not archived: {reason}" for role, reason in card.missing]
    if gone:
        return "file missing on disk", "error", problems
    if card.missing:
        return " and ".join(role for role, _ in card.missing) + " missing", "warn", problems
    return "complete", "ok", problems


def _label(type_name: str) -> str | None:
    """What the catalog calls the work of a source type (None for a type it does not know)."""
    source_type = source_types().get(type_name)
    return source_type.label or None if source_type is not None else None


def href(path: str, *, folder: bool = False) -> str | None:
    """A relative URL for a path from the archive root, or None if it could leave the archive."""
    if _PLAIN_PATH.fullmatch(path):  # the usual case, and 400,000 quote() calls are not free
        return path + "/" if folder else path
    parts = path.split("/")
    if "\\" in path or any(part in ("", ".", "..") for part in parts):
        return None
    # quote(safe="") also encodes ':', so no segment can turn into a scheme like javascript:
    return "/".join(quote(part, safe="") for part in parts) + ("/" if folder else "")


def js(value: Any) -> str:
    """`value` as JSON that is also safe inside an HTML script element."""
    # '<' only ever occurs inside strings, where \u003c means the same.
    return _ENCODER.encode(value).replace("<", "\\u003c")
