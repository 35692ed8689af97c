"""The face-swap video service's task history (`POST /videoTaskHistory`).

Pages are numbered from 1 and carry no total, so the list ends at an empty page or a page
shorter than `pageSize`. The next page is requested while the current one is handed on, so
listing never waits on the consumer's bookkeeping. Each succeeded task (state 30) also yields
its video template, once per template version per run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from archiver.config.settings import SourceSettings, secret
from archiver.errors import ApiError, ConfigError, MalformedResponse
from archiver.net.apiprofile import ApiProfile
from archiver.sources.base import RecordView, Source
from archiver.sources.fields import record_id, unix_time, url_version
from archiver.sources.parse import TaskFields, media_refs, parse_later
from archiver.sources.parse import parse_task as parse_record
from archiver.sources.records import ArchiveItem, Listed, MediaRef, Page, Parsed

TASK_FIELDS = TaskFields(
    state_key="state",
    succeeded=30,
    state_names={2: "failed", 10: "waiting", 20: "generating"},
    created_key="createdAt",
    media=(("video", "origin"), ("cover", "covering")),
    required="video",
)
TEMPLATE_MEDIA = (("thumb", "thumb"), ("cover", "covering"), ("video", "video"))
MAX_PAGES = 1_000_000
SEND_TURNS = 3  # event-loop turns given to a prefetch so that its request goes out


@dataclass(frozen=True, kw_only=True)
class VideoTaskHistorySettings(SourceSettings):
    """Settings of a `video_task_history` source."""

    token: str | None = secret()  # sent as the Authorization header, exactly as given
    request_encoding: Literal["json", "form"] = "json"
    templates: bool = True


class VideoTaskHistory(Source):
    """Lists a face-swap account's video tasks, page by page."""

    type_name = "video_task_history"
    label = "Face swap"
    settings_type = VideoTaskHistorySettings
    settings: VideoTaskHistorySettings

    @classmethod
    def view(cls, kind: str, record: dict[str, Any]) -> RecordView:
        # A task is titled by its template; a template record is the template itself.
        template = record if kind == "template" else record.get("videoTemp")
        template = template if isinstance(template, dict) else {}
        return RecordView(
            title=template.get("title") or record.get("title"),
            prompt=template.get("prompt") or record.get("prompt"),
            author=template.get("author") if kind == "template" else None,
            template=template.get("id") if kind == "task" else None,
            image_roles=("thumb", "cover") if kind == "template" else ("cover", "preview", "thumb"),
        )

    @classmethod
    def check_settings(cls, settings: SourceSettings, where: str) -> None:
        assert isinstance(settings, VideoTaskHistorySettings)
        if not settings.token:
            raise ConfigError(f"{where}.token: missing (the account's API token)")

    def _profile(self) -> ApiProfile:
        limiter = None
        if self.settings.qps > 0:
            limiter = self.context.limiter(self.settings.base_url, self.settings.qps)
        return ApiProfile(
            service=self.name,
            ok_codes=frozenset({200}),
            retry_codes=frozenset({510}),
            limiter=limiter,
        )

    async def _fetch(self, profile: ApiProfile, page: int) -> list[Any]:
        rows = await self._fetch_once(profile, page)
        if rows is not None:
            return rows
        # A Go back end encodes an empty list as `null`, but a glitch can too, and taking a
        # glitch for the end would silently lose every page after it. A second look catches
        # a one-off; if it is null again, the next page decides: empty too, and this is the
        # end; with tasks on it, this page is read again until it answers a list (the HTTP
        # layer's retries), or the listing fails rather than leave a gap.
        rows = await self._fetch_once(profile, page)
        if rows is not None:
            return rows
        if not await self._fetch_once(profile, page + 1):
            return []
        return await self._fetch_once(profile, page, parse=_page_list) or []

    async def _fetch_once(
        self,
        profile: ApiProfile,
        page: int,
        parse: Callable[[dict[str, Any]], list[Any] | None] | None = None,
    ) -> list[Any] | None:
        size = self.settings.page_size
        headers = {**self.settings.headers, "Authorization": self.settings.token or ""}
        if self.settings.request_encoding == "form":
            return await self.http.call_api(
                profile,
                self.endpoint("/videoTaskHistory"),
                parse=parse or _page_data,
                headers=headers,
                form={"page": str(page), "pageSize": str(size)},
            )
        return await self.http.call_api(
            profile,
            self.endpoint("/videoTaskHistory"),
            parse=parse or _page_data,
            headers=headers,
            json_body={"page": page, "pageSize": size},
        )

    async def pages(self) -> AsyncGenerator[Page, None]:
        profile = self._profile()
        size = self.settings.page_size
        templates_seen: set[tuple[object, ...]] = set()
        previous_ids: list[object] | None = None
        number = 1
        fetch = asyncio.ensure_future(self._fetch(profile, number))
        try:
            while number <= MAX_PAGES:
                rows = await fetch
                full = len(rows) >= size
                ids = [row.get("id") if isinstance(row, dict) else row for row in rows]
                if full and ids == previous_ids:
                    raise ApiError(
                        f"page {number} repeats page {number - 1}; "
                        "the service seems to ignore `page`"
                    )
                previous_ids = ids
                if full:
                    fetch = asyncio.ensure_future(self._fetch(profile, number + 1))
                    # A task runs only when the loop gets control: without these turns, the
                    # request would wait until the consumer next awaits, which a rerun's
                    # bookkeeping of a page need not do at all, and the API would idle while
                    # the page is parsed and sorted. Two turns get a request on a kept-alive
                    # connection onto the wire; one more is spare.
                    for _ in range(SEND_TURNS):
                        await asyncio.sleep(0)
                yield Page(number, tuple(self._parse_rows(rows, templates_seen)))
                if not full:
                    return
                number += 1
        finally:
            fetch.cancel()

    def _parse_rows(self, rows: list[Any], templates_seen: set[tuple[object, ...]]) -> list[Listed]:
        listed: list[Listed] = []
        for row in rows:
            raw = row.get("videoTemp") if self.settings.templates and type(row) is dict else None
            # Most tasks share a few templates: a template already seen in this exact form is
            # not parsed again, and a task without a new template is parsed only if the
            # listing finds its record changed (`parse_later`).
            raw_key = _template_key(raw)
            if not isinstance(raw, dict) or (raw_key is not None and raw_key in templates_seen):
                listed.append(parse_later(row, TASK_FIELDS, parse_task))
                continue
            item = parse_task(row)
            listed.append(item)
            if not isinstance(item, ArchiveItem):
                continue
            if raw_key is not None:
                templates_seen.add(raw_key)
            template = parse_template(raw)
            if template is None:
                continue
            key = (template.id, tuple(ref.url for ref in template.media))
            if key not in templates_seen:
                templates_seen.add(key)
                listed.append(template)
        return listed


def _template_key(value: Any) -> tuple[object, ...] | None:
    """The fields that decide a template's identity and files, if they can key a set."""
    if not isinstance(value, dict):
        return None
    get = value.get
    key = ("raw", get("id"), get("thumb"), get("covering"), get("video"))
    for v in key:
        if v is not None and not isinstance(v, str | int):
            return None
    return key


def _page_data(doc: dict[str, Any]) -> list[Any] | None:
    data = doc.get("data")
    if data is None:
        return None
    if not isinstance(data, list):
        raise MalformedResponse(f"`data` is a {type(data).__name__}, not a list")
    return data


def _page_list(doc: dict[str, Any]) -> list[Any]:
    """Like `_page_data`, for a page known not to be the end: `null` is a glitch there."""
    data = _page_data(doc)
    if data is None:
        raise MalformedResponse("`data` is null in the middle of the list")
    return data


def parse_task(row: Any) -> Parsed:
    """One task record as an `ArchiveItem`, `Unfinished` or `Rejected`."""
    return parse_record(row, TASK_FIELDS)


def parse_template(value: Any) -> ArchiveItem | None:
    """A task's `videoTemp` as an archivable template, or None if it has nothing to keep."""
    if not isinstance(value, dict):
        return None
    template_id = record_id(value.get("id"))
    if template_id is None:
        return None
    media, problems = media_refs(value, TEMPLATE_MEDIA)
    if not media:
        return None
    versioned = tuple(MediaRef(ref.role, ref.url, url_version(ref.url)) for ref in media)
    return ArchiveItem(
        kind="template",
        id=template_id,
        created_at=unix_time(value.get("createdAt")),
        media=versioned,
        record=value,
        problems=problems,
    )
