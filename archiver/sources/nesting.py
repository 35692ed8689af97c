"""API answers nested too deeply or too large, met without recursion.

Python's JSON decoder, the record's fingerprint and the sidecar writer all recurse: a record
nested some hundreds deep raises `RecursionError` in one of them, and one such record would stop
its whole source every night. So a page is decoded with its deepest values cut off
(`loads_bounded`), and each record is measured (`record_problem`) and rejected when it is too
deep or too large to archive, while the rest of its page is archived as usual.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Far beyond any real record (the documented ones nest 2 deep) and far within what the
# fingerprint and the sidecar's indented JSON manage under Python's default recursion limit.
MAX_RECORD_DEPTH = 64
MAX_RECORD_SIZE = 1024 * 1024  # characters of JSON, about: its keys and strings, and 4 a value
# In an answer too deep to decode, a value nested deeper than this is decoded as null. Deeper
# than any record may be (with the page around it), so a record cut here is still rejected.
CUT_DEPTH = 200
# A JSON string (escapes included), or a bracket: what nesting is made of.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def loads_bounded(body: bytes | bytearray) -> Any:
    """`json.loads`, but a value nested deeper than `CUT_DEPTH` is decoded as null.

    Raises `ValueError` for what is not JSON, as `json.loads` does. Only an answer that is too
    deep for the decoder pays for the second, slower pass.
    """
    try:
        return json.loads(body)
    except RecursionError:
        text = _cut_deep(body.decode(json.detect_encoding(body), "surrogatepass"))
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise  # not JSON at all
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    try:
        return json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        return json.loads(_cut_deep(text), parse_int=_bounded_int)


class TooLongNumber:
    """Stands for an integer with more digits than Python converts (4,300 by default).

    No record needs one, and neither `int()` nor the sidecar's JSON writer takes it, so the
    record that holds one is rejected (`record_problem`) and the rest of its page is kept.
    """


TOO_LONG_NUMBER = TooLongNumber()


def _bounded_int(digits: str) -> int | TooLongNumber:
    try:
        return int(digits)
    except ValueError:
        return TOO_LONG_NUMBER


def _cut_deep(text: str) -> str:
    """`text` with each value that opens deeper than `CUT_DEPTH` replaced by `null`."""
    parts: list[str] = []
    depth, kept, cut_from = 0, 0, -1
    for match in _TOKENS.finditer(text):
        bracket = match.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth == CUT_DEPTH + 1:
                cut_from = match.start()
        elif bracket in ("]", "}"):
            if depth == CUT_DEPTH + 1 and cut_from >= 0:
                parts += (text[kept:cut_from], "null")
                kept, cut_from = match.end(), -1
            depth -= 1
    # A value still open at the end is cut too: the answer stays broken, and is refused as such.
    parts.append(text[kept:] if cut_from < 0 else text[kept:cut_from] + "null")
    return "".join(parts)


def record_problem(record: dict[str, Any]) -> str | None:
    """Why `record` is too deeply nested or too large to archive, or None if it is neither.

    A level at a time, without recursion; every listed record comes through here, so the
    loop is kept plain (JSON's keys are text, its containers plain dicts and lists).
    """
    level: list[Any] = [record]
    size = depth = 0
    while level:
        depth += 1
        if depth > MAX_RECORD_DEPTH:
            return f"record nested too deeply (more than {MAX_RECORD_DEPTH} levels)"
        nested: list[Any] = []
        for container in level:
            values = container
            if type(container) is dict:
                size += sum(map(len, container))
                values = container.values()
            size += 4 * len(values)
            for value in values:
                kind = type(value)
                if kind is str:
                    size += len(value)
                elif kind is dict or kind is list:
                    nested.append(value)
                elif kind is TooLongNumber:
                    return "record holds a number too long to keep"
        if size > MAX_RECORD_SIZE:
            return f"record too large (more than {MAX_RECORD_SIZE // 1024**2} MiB of JSON)"
        level = nested
    return None
