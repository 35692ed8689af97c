"""Where things go in the archive, and making API data safe as path parts.

Every path part that comes from API data passes through `safe_name`, which keeps plain names as
they are and percent-encodes anything else reversibly (`..` becomes `%2E.`, `a/b` becomes
`a%2Fb`), so nothing can land outside `archive_dir`; `inside` checks the result anyway. An item
folder part that would be a name the archive uses itself (`RESERVED`) is encoded too.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from archiver.net.mediatype import allowed_extensions, bare_type
from archiver.sources.records import ArchiveItem, MediaRef

# Names the archive uses for itself, compared without case (an archive copied to a disk that
# ignores case must not mix them up either). No item folder part may be one of them; names
# starting with a dot (`.archiver`, temporary files) are already out of reach of `safe_name`.
# Year and month folders need no place here: one layout puts them at depths where no id is.
RESERVED = frozenset(
    name.lower()
    for name in (
        "SHA256SUMS",
        "templates",
        "undated",
        "index.html",
        "index-data.js",
        "index-first.js",
        "metadata.json",
        "manifest.sqlite3",
        "manifest.sqlite3-wal",
        "manifest.sqlite3-shm",
        "manifest.sqlite3-journal",
    )
)
PLAIN = re.compile(r"[A-Za-z0-9_.\-]")
PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
MAX_NAME = 120
EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})$")

# The types these services serve; an extension is only ever taken from a role's allow-list.
CONTENT_TYPE_EXTENSIONS = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "video/x-m4v": ".m4v",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
    "application/json": ".json",
    "text/json": ".json",
}


def safe_name(value: str) -> str:
    """A folder or file name for `value`: itself when plain, else percent-encoded."""
    if len(value) <= MAX_NAME and PLAIN_NAME.fullmatch(value) and value[0] != ".":
        return value  # the usual id: one regex instead of one per character
    out = []
    for index, char in enumerate(value):
        if PLAIN.fullmatch(char) and not (char == "." and index == 0):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    name = "".join(out) or "%00"
    if len(name) > MAX_NAME:
        # Too long for some file systems: keep a readable head and a digest of the whole.
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        head = name[:80].rsplit("%", 1)[0] if "%" in name[77:80] else name[:80]
        name = f"{head}~{digest}"
    return name


def item_folder(source: str, item: ArchiveItem, layout: str) -> PurePosixPath:
    """The item's folder, relative to the archive root; never a name the archive uses itself."""
    ident = safe_name(item.id)
    if item.kind == "template":
        return PurePosixPath(safe_name(source), "templates", unreserved(ident, ident))
    return PurePosixPath(safe_name(source), *date_parts(item.created_at, layout, ident))


def unreserved(part: str, ident: str) -> str:
    """`part` (a path part holding the encoded id `ident`), encoded further if it is reserved.

    The id's first character is percent-encoded, which changes the part, stays reversible
    (`urllib.parse.unquote`) and cannot meet another id's name, since `safe_name` encodes every `%`.
    """
    if part.lower() not in RESERVED:
        return part
    if ident and ident in part and ident[0] != "%":
        head = "".join(f"%{byte:02X}" for byte in ident[0].encode("utf-8"))
        return part.replace(ident, head + ident[1:], 1)
    return "".join(f"%{byte:02X}" for byte in part[0].encode("utf-8")) + part[1:]


def date_parts(created: datetime | None, layout: str, ident: str) -> tuple[str, ...]:
    """The layout's parts for one task: `2025/09/<id>` by default, `undated/<id>` if no date."""
    if created is None:
        return ("undated", unreserved(ident, ident))
    text = layout.format(
        year=f"{created.year:04d}",
        month=f"{created.month:02d}",
        day=f"{created.day:02d}",
        id="\0",
    )
    parts = [p for p in text.split("/") if p and p != "."]
    return tuple(
        unreserved(ident if p == "\0" else safe_name(p).replace("%00", ident), ident) for p in parts
    )


def file_stem(ref: MediaRef) -> str:
    """A media file's name without extension: its role, and its version if it has one."""
    if ref.version is None:
        return ref.role
    return f"{ref.role}.v{safe_name(ref.version)}"


def extension_for(url: str, content_type: str | None, role: str, expects: str | None = None) -> str:
    """The file extension: from the URL path, else the Content-Type, if `role` allows it.

    Anything else is `.bin`: a name the archive writes never makes a browser or a shell run
    what a host sent (`.html`, `.svg`, `.sh`). `expects` is the `MediaRef`'s.
    """
    allowed = allowed_extensions(role, expects)
    ext = _url_extension(url)
    if ext in allowed:
        return ext
    ext = CONTENT_TYPE_EXTENSIONS.get(bare_type(content_type), "")
    return ext if ext in allowed else ".bin"


def _url_extension(url: str) -> str:
    if "?" in url or "#" in url or "%" in url:
        path = unquote(urlsplit(url).path)
    else:  # the usual plain URL: its path is what follows the host, as urlsplit has it
        host = url.find("//")
        slash = url.find("/", host + 2) if host >= 0 else -1
        path = url[slash:] if slash >= 0 else ""
    match = EXTENSION.search(path.rsplit("/", 1)[-1])
    return "." + match.group(1).lower() if match else ""


def within(prefix: str, relative: str) -> str:
    """`prefix + relative`, refusing a `relative` that would leave the archive.

    `prefix` is the archive's path and a slash, or
    nothing for a path taken relative to the archive (or to an open descriptor of it).
    """
    # The substring test first: it spares splitting every path of a rerun.
    if relative.startswith("/") or (".." in relative and ".." in relative.split("/")):
        raise ValueError(f"path {relative!r} would leave the archive")
    return prefix + relative
