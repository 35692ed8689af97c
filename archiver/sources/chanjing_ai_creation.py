"""Chanjing's AI creations, images and videos (`POST /open/v1/ai_creation/task/page`).

The endpoint lists one `type` at a time (3 images, 4 videos), so each kind in `kinds` is its
own list. Their pages are read side by side and their records interleaved, one of each in
turn, into one page per page number: `stop_after_known` then stops only after known records
of every kind still listed, so a run that stops early never skips new work of the other kind.

A task's files are its `output_url` array, in order: roles `output-1`, `output-2`, ...; what
kind of file each role expects (picture or video) follows from the task's `type`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field, replace
from itertools import chain, zip_longest
from typing import Any, Literal

from archiver.config.settings import SourceSettings
from archiver.errors import ConfigError
from archiver.sources.base import RecordView
from archiver.sources.chanjing import ChanjingSettings, ChanjingSource, Rows
from archiver.sources.fields import duration_seconds
from archiver.sources.parse import TaskFields, parse_later
from archiver.sources.records import ArchiveItem, Listed, Page, Parsed

Kind = Literal["image", "video"]
TYPES: dict[Kind, int] = {"image": 3, "video": 4}
OUTPUT_ROLE = "output"
EXPECTS: dict[Kind, Literal["picture", "video"]] = {"image": "picture", "video": "video"}


@dataclass(frozen=True, kw_only=True)
class AiCreationSettings(ChanjingSettings):
    """Settings of a `chanjing_ai_creation` source."""

    kinds: tuple[Kind, ...] = field(default=("image", "video"))


class ChanjingAiCreation(ChanjingSource):
    """Lists a Chanjing account's AI-created images and videos."""

    type_name = "chanjing_ai_creation"
    label = "AI creation"
    settings_type = AiCreationSettings
    settings: AiCreationSettings
    list_path = "/open/v1/ai_creation/task/page"
    task_fields = TaskFields(
        id_key="unique_id",  # `id` is a row number
        state_key="progress_desc",
        succeeded="Success",
        state_names={
            "Queued": "queued",
            "Ready": "queued",
            "Generating": "generating",
            "Error": "failed",
            "Fail": "failed",
        },
        created_key="create_time",
        media=(),
        media_list=(OUTPUT_ROLE, "output_url"),
        required=None,
    )

    @classmethod
    def check_settings(cls, settings: SourceSettings, where: str) -> None:
        super().check_settings(settings, where)
        assert isinstance(settings, AiCreationSettings)
        if not settings.kinds:
            raise ConfigError(f"{where}.kinds: name at least one of image, video")
        if settings.page_size > 50:
            raise ConfigError(f"{where}.page_size: this list gives at most 50 a page")

    async def pages(self) -> AsyncGenerator[Page, None]:
        kinds = list(dict.fromkeys(self.settings.kinds))  # each once, in the order given
        lists = [self.read_list(self.list_path, {"type": TYPES[kind]}) for kind in kinds]
        try:
            async for number, pages in _side_by_side(kinds, lists):
                parsed = [self._parse_kind(rows, EXPECTS[kind]) for kind, rows in pages]
                merged = chain.from_iterable(zip_longest(*parsed, fillvalue=None))
                yield Page(number, tuple(listed for listed in merged if listed is not None))
        finally:
            for pages_of_kind in lists:
                await pages_of_kind.aclose()

    def _parse_kind(self, rows: Rows, expects: Literal["picture", "video"]) -> list[Listed]:
        """The records of one kind's page; each file says what it must be."""

        def parse(row: Any) -> Parsed:
            return _expecting(self.parse_row(row), expects)

        return [parse_later(row, self.task_fields, parse) for row in rows]

    @classmethod
    def view(cls, kind: str, record: dict[str, Any]) -> RecordView:
        photo, motion = record.get("photo_info"), record.get("motion_info")
        photo = photo if isinstance(photo, dict) else {}
        motion = motion if isinstance(motion, dict) else {}
        urls = record.get("output_url")
        roles = (
            tuple(f"{OUTPUT_ROLE}-{n}" for n in range(1, len(urls) + 1))
            if isinstance(urls, list)
            else ()
        )
        # The record's own `type` tells; the list it came from said the same when archived.
        picture = record.get("type") == TYPES["image"]
        return RecordView(
            title=record.get("title") or record.get("model_name"),
            prompt=photo.get("ref_prompt") or motion.get("prompt") or record.get("prompt"),
            duration=duration_seconds(motion.get("video_duration"), per_second=1),
            picture=picture,
            video_roles=() if picture else roles,
            image_roles=roles if picture else (),
        )


def _expecting(listed: Parsed, expects: Literal["picture", "video"]) -> Parsed:
    """`listed` with each file saying what it must be: the list it came from tells."""
    if not isinstance(listed, ArchiveItem):
        return listed
    return replace(listed, media=tuple(replace(ref, expects=expects) for ref in listed.media))


async def _side_by_side(
    kinds: list[Kind], lists: list[AsyncGenerator[tuple[int, Rows], None]]
) -> AsyncIterator[tuple[int, list[tuple[Kind, Rows]]]]:
    """Page 1 of every list, then page 2 of every list still going, and so on."""
    going = list(zip(kinds, lists, strict=True))
    number = 0
    while going:
        number += 1
        pages: list[tuple[Kind, Rows]] = []
        for kind, pages_of_kind in list(going):
            try:
                _, rows = await anext(pages_of_kind)
            except StopAsyncIteration:
                going.remove((kind, pages_of_kind))
                continue
            pages.append((kind, rows))
        if pages:
            yield number, pages
