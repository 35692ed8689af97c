"""The browsable catalog: `<archive_dir>/index.html` and its data script `index-data.js`.

The catalog is rebuilt from scratch from the manifest and the sidecars (after each run, and by
`archiver index`), so it is never out of step with the archive. It is a static page that opens
from the file system: a `file://` page cannot fetch JSON, so the data rides in a sibling script
that assigns one object, and the page's own CSS and JS are inlined from `archiver/catalog/assets`.

Three rules keep the page safe to open whatever the APIs sent:

- every path in it is relative and percent-encoded per segment, so the archive can be moved and
  nothing can point outside it; original media URLs are data shown as text, never links;
- the data script escapes every `<` (so no record can close a script tag), and the page script
  puts text into the DOM only through `textContent` and attributes, never as HTML;
- a Content-Security-Policy allows nothing but the page's own nonce'd scripts and local media.

Both files are written by the archive's one atomic writer (`archivefs.atomic_file`: a new
temporary file, fsync, rename): the data script first, then the page, which names the build
it expects and says so if they differ.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from archiver.errors import ArchiverError, ArchiveWriteError, ManifestError
from archiver.sources import Source, source_types
from archiver.sources.base import RecordView
from archiver.store.archivefs import Folder, atomic_file, open_root, remove_leftovers
from archiver.store.manifest import MANIFEST, ManifestStore
from archiver.store.queries import CatalogItem

INDEX_NAME = "index.html"
DATA_NAME = "index-data.js"
SIDECAR_NAME = "metadata.json"
DATA_FORMAT = 1

# Long texts are cut: a card shows two lines, and 20,000 full prompts would bloat the data.
_TITLE_LIMIT = 300
_PROMPT_LIMIT = 2000
# A path of unreserved URL characters only is already a relative URL as it stands.
_PLAIN_PATH = re.compile(r"[\w.~-]+(?:/[\w.~-]+)*", re.ASCII)


def write_catalog(archive_dir: Path, *, locked: bool = False) -> Path:
    """Rebuild `index.html` and `index-data.js` in `archive_dir`; return the page's path.

    Reads the manifest through a read-only connection, so it works while a run writes it.
    `locked` says the caller holds the archive's lock: only then are the temporary files of a
    killed earlier write deleted (without it, they may be another process's writes under way).
    Raises `ManifestError` when the manifest is missing or unreadable and `ArchiveWriteError`
    when the files cannot be written.
    """
    path = archive_dir / MANIFEST
    if not path.is_file():
        raise ManifestError(f"cannot build the catalog: no manifest at {path}")
    token = secrets.token_hex(8)
    built_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Read-only: never takes a write lock; in WAL mode a reader sees the last commit and waits
    # for nobody.
    manifest = ManifestStore.open(path, readonly=True)
    try:
        root = open_root(archive_dir)
    except ArchiverError:
        manifest.close()
        raise
    try:
        if locked:
            remove_leftovers(root, (DATA_NAME, INDEX_NAME))
        with _atomic_text(root, DATA_NAME) as out:  # one query: one snapshot of the manifest
            counts = _write_data(manifest, archive_dir, out, token, built_at)
        with _atomic_text(root, INDEX_NAME) as out:
            out.write(_render_page(token, built_at, counts))
    finally:
        manifest.close()
        os.close(root.fd)
    return archive_dir / INDEX_NAME


def _write_data(
    manifest: ManifestStore, archive_dir: Path, out: TextIO, token: str, built_at: str
) -> dict[str, Any]:
    """Stream every task into `out` as it is read; keep only templates and counts in memory."""
    sources: dict[str, dict[str, Any]] = {}
    templates: list[dict[str, Any]] = []
    out.write("/* The archiver catalog's data, rebuilt from the manifest. Do not edit. */\n")
    out.write(f'window.ARCHIVER_CATALOG = {{"format": {DATA_FORMAT}, ')
    out.write(f'"token": {_js(token)}, "built": {_js(built_at)},\n"tasks": [\n')
    separator = ""
    for item in manifest.catalog_items():
        entry = _entry(archive_dir, item)
        totals = sources.setdefault(
            item.source, {"type": None, "tasks": 0, "templates": 0, "bytes": 0}
        )
        totals["type"] = totals["type"] or entry.get("type")
        if "label" not in totals and entry.get("type"):
            totals["label"] = _label(entry["type"])
        totals["bytes"] += sum(int(row[4] or 0) for row in item.files)
        if item.kind == "template":
            totals["templates"] += 1
            templates.append(entry)
            continue
        totals["tasks"] += 1
        out.write(separator + _js(entry))
        separator = ",\n"
    out.write('\n],\n"templates": [\n' + ",\n".join(_js(entry) for entry in templates))
    out.write(f'\n],\n"sources": {_js(sources)}\n}};\n')
    return {
        "tasks": sum(totals["tasks"] for totals in sources.values()),
        "templates": len(templates),
        "bytes": sum(totals["bytes"] for totals in sources.values()),
    }


def _entry(archive_dir: Path, item: CatalogItem) -> dict[str, Any]:
    """What the page needs of one item: its texts, relative links and the state of its files."""
    # Plain strings, not Path: pathlib's parsing alone would cost a second at 20,000 items.
    root = os.fspath(archive_dir)
    folder = _href(item.folder, folder=True)
    # A folder that could lead out of the archive is neither read nor linked.
    sidecar = _read_sidecar(f"{root}/{item.folder}/{SIDECAR_NAME}") if folder else None
    files = [_file_entry(root, row) for row in item.files]
    present = {f["role"]: f["href"] for f in files if f["current"] and f["present"]}
    view = _view(item.kind, sidecar)
    entry: dict[str, Any] = {
        "source": item.source,
        "id": item.id,
        "created": item.created_at,
        "archived": item.archived_at,
        "folder": folder,
        "sidecar": _href(f"{item.folder}/{SIDECAR_NAME}") if folder else None,
        "video": None if view.picture else _first(present, view.video_roles),
        "image": _first(present, view.image_roles),
        "picture": True if view.picture else None,
        "files": files,
    }
    if sidecar is not None:
        entry.update(_describe(item.kind, sidecar, view))
    state, level, problems = _health(sidecar, files)
    entry.update(state=state, level=level, problems=problems)
    return {key: value for key, value in entry.items() if value is not None}


def _first(present: dict[str, str], roles: tuple[str, ...]) -> str | None:
    return next((present[role] for role in roles if role in present), None)


def _view(kind: str, sidecar: dict[str, Any] | None) -> RecordView:
    """How the item's own source type shows its record (a plain view if the type is unknown)."""
    sidecar = sidecar or {}
    record = sidecar.get("record")
    record = record if isinstance(record, dict) else {}
    # Every view takes a dict of any content; the catalog checks the values it returns.
    return source_types().get(str(sidecar.get("type")), Source).view(kind, record)


def _health(
    sidecar: dict[str, Any] | None, files: list[dict[str, Any]]
) -> tuple[str, str, list[str]]:
    """The state a card shows, its level (ok, warn, error) and every problem in words."""
    gone = [f["name"] for f in files if f["current"] and not f["present"]]
    problems = [f"{name} is missing from the archive folder" for name in gone]
    if sidecar is None:
        problems.insert(0, "sidecar unreadable: metadata.json is missing or not valid JSON")
        return "sidecar unreadable", "error", problems
    missing = sidecar.get("missing")
    missing = missing if isinstance(missing, dict) else {}
    problems += [f"{role} not archived: {reason}" for role, reason in missing.items()]
    if gone:
        return "file missing on disk", "error", problems
    if missing:
        return " and ".join(str(role) for role in missing) + " missing", "warn", problems
    return "complete", "ok", problems


def _file_entry(root: str, row: tuple[Any, ...]) -> dict[str, Any]:
    role, name, path, url, size, current = row
    href = _href(str(path))
    # A stat per file is cheap next to the sidecar read, and it keeps broken players off cards.
    present = href is not None and os.path.isfile(f"{root}/{path}")  # noqa: PTH113
    return {
        "role": str(role),
        "name": str(name),
        "href": href,
        "bytes": size,
        "url": str(url),
        "current": bool(current),
        "present": present,
    }


def _read_sidecar(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as sidecar:
            value = json.loads(sidecar.read())
    except (OSError, ValueError):  # ValueError covers bad JSON and bad UTF-8 alike
        return None
    return value if isinstance(value, dict) else None


def _describe(kind: str, sidecar: dict[str, Any], view: RecordView) -> dict[str, Any]:
    """Texts shown on a card, as the source reads its record (any shape at all)."""
    return {
        "type": _text(sidecar.get("type"), 100),
        "title": _text(view.title, _TITLE_LIMIT),
        "prompt": _text(view.prompt, _PROMPT_LIMIT),
        "author": _text(view.author, _TITLE_LIMIT),
        "template": _ident(view.template),
        "duration": view.duration if _is_duration(view.duration) else None,
    }


def _label(type_name: str) -> str | None:
    """What the catalog calls the work of a source type (None for a type it does not know)."""
    source_type = source_types().get(type_name)
    return source_type.label or None if source_type is not None else None


def _is_duration(value: Any) -> bool:
    # bool is an int, and json.loads accepts NaN and Infinity: none of them is a length.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _ident(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value)


def _href(path: str, *, folder: bool = False) -> str | None:
    """A relative URL for a path from the archive root, or None if it could leave the archive."""
    parts = path.split("/")
    if "\\" in path or any(part in ("", ".", "..") for part in parts):
        return None
    if _PLAIN_PATH.fullmatch(path):  # the usual case, and 80,000 quote() calls are not free
        return path + ("/" if folder else "")
    # quote(safe="") also encodes ':', so no segment can turn into a scheme like javascript:
    return "/".join(quote(part, safe="") for part in parts) + ("/" if folder else "")


def _js(value: Any) -> str:
    # ASCII-only JSON is valid JS and cannot carry U+2028 or lone surrogates into the file;
    # '<' only ever occurs inside strings, where \u003c means the same.
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _render_page(token: str, built_at: str, counts: dict[str, Any]) -> str:
    assets = resources.files("archiver.catalog.assets")
    script = assets.joinpath("catalog.js").read_text(encoding="utf-8")
    style = assets.joinpath("catalog.css").read_text(encoding="utf-8")
    if "</" in script or "</" in style:  # they are inlined: such text would end the element
        raise ArchiveWriteError("catalog assets must not contain '</'")
    summary = f"{counts['tasks']:,} videos · {counts['templates']:,} templates"
    values = {
        "nonce": secrets.token_urlsafe(18),
        "token": token,
        "built": built_at,
        "data": DATA_NAME,
        "summary": html.escape(summary),
        "style": style,
        "script": script,
    }
    page = assets.joinpath("catalog.html").read_text(encoding="utf-8")
    # One pass, so text inserted for one placeholder is never scanned for another.
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], page)


@contextmanager
def _atomic_text(folder: Folder, name: str) -> Iterator[TextIO]:
    """Text written to `folder/name` through the archive's one atomic writer, flushed."""
    with atomic_file(folder, name, durable=True) as raw:
        out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        try:
            yield out
            out.flush()
        finally:
            out.detach()  # the writer closes the file itself
