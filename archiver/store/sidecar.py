"""The sidecar `metadata.json` beside each item's files, and the record's fingerprint.

The sidecar keeps the API record exactly as received, so the archive explains itself without
the tool. The fingerprint tells a changed record from an unchanged one while ignoring what
changes on every listing without meaning anything (the signature of a pre-signed URL).
"""

from __future__ import annotations

import functools
import hashlib
import json
import marshal
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from archiver.sources.records import ArchiveItem
from archiver.store.archivefs import Folder, atomic_file
from archiver.store.manifest import FileRow

SIDECAR = "metadata.json"
_NOT_PLAIN = re.compile(r"[?#\s]", re.ASCII)
# Query parameters that sign or expire a URL rather than name a file.
VOLATILE_PARAMS = (
    "x-amz-",
    "x-oss-",
    "signature",
    "expires",
    "awsaccesskeyid",
    "token",
    "policy",
    "key-pair-id",
    "auth_key",
    "sign",
    "t",
)


def url_identity(url: str) -> str:
    """What names the file behind `url`: its path and its lasting query parameters."""
    if url.startswith(("http://", "https://")) and not _NOT_PLAIN.search(url):
        # No query, fragment or oddity: the path is what follows the host (as urlsplit has it).
        slash = url.find("/", url.index("//") + 2)
        return url[slash:] if slash >= 0 else ""
    return _query_identity(url)


@functools.lru_cache(maxsize=4096)
def _query_identity(url: str) -> str:
    # Cached: a template's versioned URLs come again in every task that uses it.
    parts = urlsplit(url)
    params = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(VOLATILE_PARAMS[:2]) and k.lower() not in VOLATILE_PARAMS[2:]
    )
    return parts.path + ("?" + urlencode(params) if params else "")


def fingerprint(record: Any) -> str:
    """A digest of the record that changes only when the record really does."""
    text = json.dumps(_stable(record), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _stable(value: Any) -> Any:
    """The record with each URL reduced to its identity, as `fingerprint` digests it."""
    if isinstance(value, str):
        return url_identity(value) if value.startswith(("http://", "https://")) else value
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


# Change it whenever `fingerprint` changes what it makes of a record: manifests remember each
# listed record's fingerprint under this digest, and a new prefix forgets them all.
_DIGEST_PREFIX = b"fingerprint v1\0"


def record_digest(record: Any) -> bytes | None:
    """A digest of the record exactly as listed, or None for a record it cannot take.

    About ten times cheaper than `fingerprint`, which a rerun would otherwise pay for every
    listed record. Equal digests mean equal records (marshal's version 2 format is a plain
    function of the value: no back-references, no interning), so the fingerprint remembered
    for a digest holds for the record. Not the converse: a record whose URLs were signed anew,
    or whose keys come in another order, gets another digest and is fingerprinted again.
    """
    try:
        data = marshal.dumps(record, 2)
    except ValueError:  # not plain JSON data, or nested too deep
        return None
    # sha256 rather than blake2b: most CPUs hash it in hardware, faster for a record's size.
    return hashlib.sha256(_DIGEST_PREFIX + data).digest()[:16]


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, or None."""
    if moment is None:
        return None
    # Formatted by hand: strftime costs several times as much, twice for every new item.
    m = moment
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def sidecar_document(
    *,
    source: str,
    source_type: str,
    item: ArchiveItem,
    files: Sequence[FileRow],
    missing: Mapping[str, str],
    previous: Sequence[FileRow],
    archived_at: str,
) -> dict[str, Any]:
    """The sidecar's content for one item."""
    document: dict[str, Any] = {
        "source": source,
        "type": source_type,
        "kind": item.kind,
        "id": item.id,
        "created_at": iso(item.created_at),
        "archived_at": archived_at,
        "record": item.record,
        "files": {f.role: _file_entry(f) for f in files},
        "missing": dict(missing),
    }
    if previous:
        document["previous_files"] = [{"role": f.role, **_file_entry(f)} for f in previous]
    return document


def _file_entry(f: FileRow) -> dict[str, Any]:
    return {
        "name": f.name,
        "url": f.url,
        "bytes": f.bytes,
        "sha256": f.sha256,
        "content_type": f.content_type,
    }


# orjson writes the indented form in compiled code, some forty times faster than the standard
# library, whose indenting encoder is pure Python: that was a tenth of a run's time per new task.
# Datetimes and dataclasses go to `default=str`, as the standard library has them.
_FAST_OPTIONS = (
    orjson.OPT_INDENT_2
    | orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def sidecar_bytes(document: dict[str, Any]) -> bytes:
    """The sidecar as written: UTF-8, indented JSON (two spaces), ending in a newline."""
    try:
        data = orjson.dumps(document, default=str, option=_FAST_OPTIONS)
    except orjson.JSONEncodeError:  # a lone surrogate, an integer past 64 bits, a key not text
        return _sidecar_bytes_exactly(document)
    # orjson writes NaN and the infinities (which the API's JSON may carry) as null: the
    # record is kept as received, so such a document takes the standard library's way.
    if b"null" in data and not _all_finite(document):
        return _sidecar_bytes_exactly(document)
    return data


def _all_finite(document: dict[str, Any]) -> bool:
    try:
        json.dumps(document, allow_nan=False, default=str)
    except ValueError:
        return False
    return True


def _sidecar_bytes_exactly(document: dict[str, Any]) -> bytes:
    # A lone surrogate (JSON can carry `"\ud800"`) has no UTF-8 form: written as the JSON
    # escape it came as, the file stays UTF-8 and reads back the same.
    text = json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n"
    return text.encode("utf-8", "backslashreplace")


def write_sidecar(folder: Folder, data: bytes) -> str:
    """Write `metadata.json` (`sidecar_bytes`) atomically into the item's open folder;
    durability comes later.

    Returns its path, for the batch flush. Runs once per item, on the event loop.
    """
    with atomic_file(folder, SIDECAR, durable=False) as out:
        out.write(data)
    return f"{folder.path}/{SIDECAR}"
