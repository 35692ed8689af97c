"""What the catalog keeps of an item's record, worked out once and kept in the manifest.

A card shows texts its source type reads from the record (title, prompt, author, template,
duration), whether the item is a picture, which of its files to play and to show, and why a
file is missing. All of it is fixed once the item is archived, so it is worked out when the
item is recorded (`describe_item`, from the record as listed) and kept in the manifest, in two
columns of `items`, so that building the catalog reads the manifest only:

- `catalog`: how the card uses the item's files, as JSON: the source type, `picture`, the
  roles it plays (`video`) and shows (`image`), first found first, and `missing` (role: why);
- `catalog_texts`: the card's texts as the page reads them, a JSON object already encoded as
  the data script holds it (ASCII, `<` escaped), which the catalog copies without parsing it.

Items archived before the manifest kept these are described once from their sidecar
(`describe_sidecar`), which holds the same record.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from archiver.sources import Source, source_types
from archiver.sources.base import RecordView

# Long texts are cut: a card shows two lines, and 20,000 full prompts would bloat the data.
_TITLE_LIMIT = 300
_PROMPT_LIMIT = 2000


# (`items.catalog`, `items.catalog_texts`) of one item.
Description = tuple[str, str]


def describe_item(
    source_type: str, kind: str, record: Any, missing: Mapping[str, str]
) -> Description:
    """The catalog's description of one item, as the manifest keeps it.

    Takes what its sidecar is written from: the source type, the record exactly as listed
    and why each missing file is missing.
    """
    return _description(source_type, kind, record, missing)


def describe_sidecar(kind: str, sidecar: bytes) -> Description | None:
    """The description of an item from its sidecar's bytes; None if it cannot be read."""
    try:
        document = json.loads(sidecar)
    except ValueError:  # bad JSON and bad UTF-8 alike
        return None
    if not isinstance(document, dict):
        return None
    missing = document.get("missing")
    return _description(
        document.get("type"),
        kind,
        document.get("record"),
        missing if isinstance(missing, dict) else {},
    )


def _description(
    source_type: Any, kind: str, record: Any, missing: Mapping[Any, Any]
) -> Description:
    view = _view(source_type, kind, record)
    type_name = _text(source_type, 100)
    card = {
        "type": type_name,
        "picture": True if view.picture else None,
        "video": list(view.video_roles),
        "image": list(view.image_roles),
        # As the card words them: whatever the sidecar held, a role and a reason are text.
        "missing": {str(role): f"{reason}" for role, reason in missing.items()},
    }
    # In the order the page's entries have always had them.
    texts = {
        "type": type_name,
        "title": _text(view.title, _TITLE_LIMIT),
        "prompt": _text(view.prompt, _PROMPT_LIMIT),
        "author": _text(view.author, _TITLE_LIMIT),
        "template": _ident(view.template),
        "duration": view.duration if _is_duration(view.duration) else None,
    }
    return _encode(card), _encode(texts)


def _view(source_type: Any, kind: str, record: Any) -> RecordView:
    """How the item's own source type shows its record (a plain view if the type is unknown)."""
    record = record if isinstance(record, dict) else {}
    # Every view takes a dict of any content; the values it returns are checked above.
    return source_types().get(str(source_type), Source).view(kind, record)


def _encode(values: dict[str, Any]) -> str:
    """Compact JSON of the values that are not None, as the data script writes it."""
    # ASCII, as the data script is (and a lone surrogate from a record, which has no UTF-8
    # form, is stored as its escape); '<' only ever occurs inside strings.
    text = json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"))
    return text.replace("<", "\\u003c")


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
