"""Reading single fields of API records, defensively.

The services document their fields loosely; these helpers accept every plausible answer (an id
as a number or a string, a time in seconds or milliseconds) and return None, or a reason, for
anything that cannot be used safely.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import yarl

MAX_ID_LENGTH = 512
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# An ordinary URL: lowercase scheme, a plain host name or IPv4 address, maybe a port.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9][A-Za-z0-9.\-]*(?::(\d{1,5}))?(?=[/?#]|\Z)")
_MAX_PORT = 65535
# The same, followed by nothing but printable ASCII: a URL `media_url` takes as it is. Checked
# first, as one match, since nearly every URL a service sends is one.
_ORDINARY_URL = re.compile(
    r"https?://[A-Za-z0-9][A-Za-z0-9.\-]*(?::(\d{1,5}))?(?:[/?#][\x21-\x7e]*)?", re.ASCII
)
# Earliest and latest creation times taken as real; anything else is "undated".
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(2200, 1, 1, tzinfo=UTC).timestamp()


def record_id(value: object) -> str | None:
    """A record's identity as a string, or None if it has no usable one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= MAX_ID_LENGTH:
        # A lone surrogate (JSON can carry `"\ud800"`) has no UTF-8 form: no file name, no
        # manifest key, no log line can hold it.
        return value if _encodable(value) else None
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def task_state(value: object, like: int | str) -> int | str | None:
    """A task's state as the kind of value `like` is, or None if it cannot be one.

    A number may come as its decimal text (`"30"`), and a word in another case or with spaces
    around it (`"success "`): neither is documented, both are plausible, and refusing them
    would leave a finished task out of the archive.
    """
    if isinstance(value, bool):
        return None
    if isinstance(like, int):
        if isinstance(value, int):
            return value
        text = value.strip() if isinstance(value, str) else ""
        digits = text[1:] if text[:1] in "+-" else text
        # isdigit() alone also takes digits of other scripts, which int() refuses.
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(text)
        return None
    if isinstance(value, str):
        word = value.strip()
        return like if word.casefold() == like.casefold() else word
    return None


def unix_time(value: object) -> datetime | None:
    """A creation time from Unix seconds (or milliseconds), or None if unusable."""
    # isdigit() alone also takes digits of other scripts (`²`, `١٢٣`), which int() refuses.
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        try:
            value = int(value.strip())
        except ValueError:  # more digits than Python converts: no time at all
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        return None
    if not math.isfinite(seconds):
        return None
    if seconds > LATEST:  # a millisecond timestamp is the usual reason for a huge number
        seconds /= 1000
    if not EARLIEST <= seconds < LATEST:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def duration_seconds(value: object, *, per_second: int) -> float | None:
    """A length in seconds from a number counted `per_second` times a second, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = value / per_second
    except OverflowError:  # an int too large for a float
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def media_url(value: object) -> tuple[str | None, str | None]:
    """`(url, None)` for a fetchable http(s) URL, else `(None, reason)`."""
    if isinstance(value, str):
        ordinary = _ORDINARY_URL.fullmatch(value)
        if ordinary and int(ordinary.group(1) or 0) <= _MAX_PORT:
            return value, None
    if value is None or value == "":
        return None, "no URL given"
    if not isinstance(value, str):
        return None, f"URL is a {type(value).__name__}, not text"
    url = value.strip()
    if _SPACE_OR_CONTROL.search(url):
        return None, "URL contains spaces or control characters"
    if not url.isascii() and not _encodable(url):
        return None, "URL is not valid Unicode"
    plain = _PLAIN_URL.match(url)
    if plain and int(plain.group(1) or 0) <= _MAX_PORT:
        return url, None  # what urlsplit would accept, without parsing the host part thrice
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None, "URL cannot be parsed"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme.lower() or "no scheme"
        return None, f"URL is not http(s) ({scheme[:20]})"
    if not parts.hostname:
        return None, "URL has no host"
    try:
        # As the HTTP client will read it: a host that IDNA cannot encode, a broken IPv6
        # literal, are refused here with a reason rather than there with an exception.
        yarl.URL(url)
    except (ValueError, UnicodeError):
        return None, "URL cannot be parsed"
    return url, None


def url_version(url: str) -> str | None:
    """The `v` query parameter that versions a template's media, if any."""
    values = parse_qs(urlsplit(url).query).get("v")
    return values[-1] if values else None
