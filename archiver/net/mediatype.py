"""What a media file may be: the extensions each role allows, and telling a document from media.

A media URL that answers with a login page or a proxy's error page still answers 200, and used
to be archived as `video.mp4`. A picture or video role refuses an HTML, JSON or XML document,
known by its Content-Type, or by its first bytes when the type is missing or says nothing
(`application/octet-stream`); a `subtitles` role expects JSON and takes it.

Extensions come from a short allow-list per role, so no `.html`, `.svg` or `.sh` is ever
written into the archive: anything else is `.bin`.
"""

from __future__ import annotations

import re

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".webm", ".mkv", ".m4v"})
PICTURE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif"})
SUBTITLE_EXTENSIONS = frozenset({".json"})
PICTURE_ROLES = frozenset({"cover", "preview", "thumb"})
# A role whose kind is not known (an `output-1` that does not say what it expects) may be a
# picture or a video; still nothing a browser or a shell would run.
OTHER_EXTENSIONS = VIDEO_EXTENSIONS | PICTURE_EXTENSIONS

# Types that say nothing about the body: what it is, its first bytes tell.
GENERIC_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/binary",
        "application/unknown",
        "application/download",
        "application/force-download",
        "application/x-download",
        "text/plain",
    }
)
WEB_PAGE = "a web page"
JSON_DOCUMENT = "a JSON document"
XML_DOCUMENT = "an XML document"
SNIFF_BYTES = 512  # as much as a browser looks at; ample for a page's first tag

_HTML_START = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|script|iframe|title|style|div|table|h1|p|br|a|b|font|!--)"
    rb"[\s>/]",
    re.IGNORECASE,
)
_JSON_START = re.compile(rb'(?:\{\s*(?:"|\})|\[\s*(?:[\[{"\]\-0-9]|true|false|null))')
_SPACE = b" \t\r\n\x0c"
_BOM = b"\xef\xbb\xbf"


def allowed_extensions(role: str, expects: str | None = None) -> frozenset[str]:
    """The file extensions a file of `role` may have (with the dot).

    `expects` (`picture` or `video`) says it where the role's name does not (`output-1`).
    """
    if expects == "video" or role == "video":
        return VIDEO_EXTENSIONS
    if expects == "picture":
        return PICTURE_EXTENSIONS
    if role == "subtitles":
        return SUBTITLE_EXTENSIONS
    if role in PICTURE_ROLES:
        return PICTURE_EXTENSIONS
    return OTHER_EXTENSIONS


def declared_document(role: str, content_type: str | None) -> str | None:
    """What kind of document the Content-Type declares, if `role` must refuse it."""
    kind = _document_type(bare_type(content_type))
    return None if kind is None or _accepts(role, kind) else kind


def needs_sniffing(content_type: str | None) -> bool:
    """Whether the body's first bytes must say what it is: the type says nothing."""
    return bare_type(content_type) in GENERIC_TYPES


def sniffed_document(role: str, head: bytes) -> str | None:
    """What kind of document `head` (a body's first bytes) starts, if `role` must refuse it."""
    text = head.removeprefix(_BOM).lstrip(_SPACE)
    kind = None
    if text.startswith(b"<?xml") or text[:9].lower() == b"<!doctype":
        kind = WEB_PAGE if _HTML_START.match(text) else XML_DOCUMENT
    elif _HTML_START.match(text):
        kind = WEB_PAGE
    elif _JSON_START.match(text):
        kind = JSON_DOCUMENT
    return None if kind is None or _accepts(role, kind) else kind


def bare_type(content_type: str | None) -> str:
    """`video/mp4` of `Video/MP4; codecs=...`; empty when there is none."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _document_type(kind: str) -> str | None:
    if kind in ("text/html", "application/xhtml+xml"):
        return WEB_PAGE
    if kind in ("application/json", "text/json") or kind.endswith("+json"):
        return JSON_DOCUMENT
    if kind in ("application/xml", "text/xml") or kind.endswith("+xml"):
        return XML_DOCUMENT
    return None


def _accepts(role: str, kind: str) -> bool:
    return role == "subtitles" and kind == JSON_DOCUMENT
