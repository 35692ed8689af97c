"""What a range answer says, and whether to trust it: the checks a resumed download rests on.

A download resumed from a `.part` asks for the rest with `Range` and `If-Range` tied to the
validator saved with it (`range_validator`, `range_headers`). The 206 that answers must start
where it was asked to, say the file's size, agree with the size announced before and with its
own Content-Length (`read_range`); a 416 may say the `.part` is the whole file already
(`whole_file`). Used by the download into a folder and by the upload into a bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archiver.net.http import MediaResponse
from archiver.net.partfile import Resume

CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")


@dataclass(frozen=True, slots=True)
class Span:
    """Where one answer's body lies in the file."""

    start: int
    end: int | None  # where the body ends (exclusive), when the host said so
    total: int | None  # the whole file's size, when the host said so


def range_headers(resume: Resume) -> dict[str, str]:
    if resume.offset and resume.validator:
        return {"Range": f"bytes={resume.offset}-", "If-Range": resume.validator}
    return {}


def read_range(header: str, asked: int, known: int | None, length: int | None) -> Span | str:
    """The span a 206's Content-Range gives, or why it cannot be trusted.

    `asked` is where the range was asked to start (0 for a plain GET); `known`, the file's
    size as announced before, if it was.
    """
    match = CONTENT_RANGE.fullmatch(header)
    if match is None:
        return f"Content-Range {header[:60]!r} is not a byte range"
    first, last = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if first != asked:
        return f"asked for the bytes from {asked}, got {header}"
    if total is not None and known is not None and total != known:
        return f"{header} disagrees with the file's size announced before ({known} bytes)"
    size = known if total is None else total
    if size is None:
        return f"{header} does not say the file's size"
    if last < first or last >= size:
        return f"{header} is not a range of the file of {size} bytes"
    if length is not None and length != last + 1 - first:
        return f"{header} disagrees with its Content-Length ({length})"
    return Span(first, last + 1, size)


def content_length(response: MediaResponse) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isascii() and length.isdigit() else None


def whole_file(response: MediaResponse, resume: Resume) -> bool:
    """Whether a 416 says the file is exactly the `.part`'s length (`bytes */<offset>`)."""
    match = UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    offset = resume.offset
    if offset == 0 or match is None or int(match.group(1)) != offset:
        return False
    return resume.total is None or resume.total == offset


def range_validator(response: MediaResponse) -> str | None:
    """What ties a range request to one version of the file: a strong ETag, or Last-Modified."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):  # a weak ETag cannot guard a byte range
        return etag
    return response.headers.get("Last-Modified") or None
