"""Chanjing's lip-sync video list (`POST /open/v1/video_lip_sync/list`).

The first page tells `total_page`, so pages 2..N are requested concurrently (a few at a time,
within the host's rate limit, 10 a second by default) and handed on in order. Without a usable
`page_info` the list is read like any other: until an empty or short page.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from archiver.apiprofile import ApiProfile
from archiver.errors import ConfigError, CredentialsRejected, MalformedResponse
from archiver.records import Listed, Page
from archiver.settings import SourceSettings, secret
from archiver.sources.base import Source
from archiver.sources.chanjing_token import ChanjingToken
from archiver.sources.parse import TaskFields
from archiver.sources.parse import parse_task as parse_record

TASK_FIELDS = TaskFields(
    state_key="status",
    succeeded=20,
    state_names={0: "queued", 10: "generating", 30: "failed"},
    created_key="create_time",
    media=(("video", "video_url"), ("preview", "preview_url")),
)
DEFAULT_QPS = 10.0
MAX_PAGES = 1_000_000


@dataclass(frozen=True, kw_only=True)
class ChanjingSettings(SourceSettings):
    """Settings of a `chanjing_lip_sync` source."""

    access_token: str | None = secret()
    app_id: str | None = None
    secret_key: str | None = secret()
    pages_in_flight: int = 4


@dataclass(frozen=True)
class _PageAnswer:
    rows: list[Any]
    total_pages: int | None
    total_count: int | None = None  # how long the list was when this page was cut from it


class ChanjingLipSync(Source):
    """Lists a Chanjing account's lip-sync videos."""

    type_name = "chanjing_lip_sync"
    settings_type = ChanjingSettings
    default_base_url = "https://open-api.chanjing.cc"
    settings: ChanjingSettings

    @classmethod
    def check_settings(cls, settings: SourceSettings, where: str) -> None:
        assert isinstance(settings, ChanjingSettings)
        if bool(settings.app_id) != bool(settings.secret_key):
            raise ConfigError(f"{where}: app_id and secret_key go together")
        if not settings.access_token and not settings.app_id:
            raise ConfigError(f"{where}.access_token: missing (or give app_id and secret_key)")
        if settings.pages_in_flight < 1:
            raise ConfigError(f"{where}.pages_in_flight: must be at least 1")

    def _profile(self) -> ApiProfile:
        # 10400 from the token endpoint too: a wrong app_id or secret_key is a rejected
        # credential, reported as such, not an unexplained API error.
        rate = self.settings.qps or DEFAULT_QPS
        return ApiProfile(
            service=self.name,
            ok_codes=frozenset({0}),
            retry_codes=frozenset({50000}),
            throttle_codes=frozenset({40001}),
            auth_codes=frozenset({10400}),
            limiter=self.context.limiter(self.settings.base_url, rate),
        )

    def _token(self) -> ChanjingToken:
        s = self.settings
        key = ("chanjing-token", s.base_url, s.app_id or "", s.access_token or "")
        return self.context.shared(
            key,
            lambda: ChanjingToken(
                self.http,
                self._profile(),
                self.endpoint("/open/v1/access_token"),
                app_id=s.app_id,
                secret_key=s.secret_key,
                ready_token=s.access_token,
            ),
        )

    async def pages(self) -> AsyncGenerator[Page, None]:
        token = self._token()
        profile = self._profile()
        fresh_tokens: set[str] = set()

        async def fetch(number: int) -> _PageAnswer:
            current = await token.get()
            try:
                return await self._fetch(profile, number, current)
            except CredentialsRejected:
                # One new token per rejection; a freshly minted token refused means give up.
                if not token.can_mint or current in fresh_tokens:
                    raise
                fresh = await token.renew(current)
                fresh_tokens.add(fresh)
                return await self._fetch(profile, number, fresh)

        first = await fetch(1)
        yield Page(1, tuple(parse_rows(first.rows)))
        if first.total_pages is None:
            async for page in self._sequential(fetch, 2, len(first.rows)):
                yield page
            return
        async for page in self._concurrent(fetch, first.total_pages, first.total_count):
            yield page

    async def _sequential(self, fetch: Any, start: int, last_size: int) -> AsyncIterator[Page]:
        number, size = start, last_size
        while size >= self.settings.page_size and number <= MAX_PAGES:
            answer: _PageAnswer = await fetch(number)
            size = len(answer.rows)
            if size:
                yield Page(number, tuple(parse_rows(answer.rows)))
            number += 1

    async def _concurrent(
        self, fetch: Any, total_pages: int, total_count: int | None
    ) -> AsyncIterator[Page]:
        window: deque[tuple[int, asyncio.Future[_PageAnswer]]] = deque()
        next_number = 2
        try:
            while True:
                while next_number <= min(total_pages, MAX_PAGES) and (
                    len(window) < self.settings.pages_in_flight
                ):
                    window.append((next_number, asyncio.ensure_future(fetch(next_number))))
                    next_number += 1
                if not window:
                    return
                number, future = window.popleft()
                answer = await future
                if _older(answer, total_count):
                    # Cut from the list as it was before the page in front of it: tasks
                    # added at the top since then pushed records from that page onto this
                    # one, which this answer does not hold. Read as the list is now, the
                    # page overlaps its neighbour instead (duplicates are dropped later).
                    answer = await fetch(number)
                if not answer.rows:
                    return  # the list shrank while we read it
                # The list may grow while it is read; follow it to its new end.
                total_pages = max(total_pages, answer.total_pages or 0)
                total_count = answer.total_count if answer.total_count is not None else total_count
                yield Page(number, tuple(parse_rows(answer.rows)))
        finally:
            for _, future in window:
                future.cancel()

    async def _fetch(self, profile: ApiProfile, number: int, token: str) -> _PageAnswer:
        return await self.http.call_api(
            profile,
            self.endpoint("/open/v1/video_lip_sync/list"),
            parse=_page_answer,
            headers={**self.settings.headers, "access_token": token},
            json_body={"page": number, "page_size": self.settings.page_size},
        )


def _page_answer(doc: dict[str, Any]) -> _PageAnswer:
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MalformedResponse(f"`data` is a {type(data).__name__}, not an object")
    rows = data.get("list")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise MalformedResponse(f"`data.list` is a {type(rows).__name__}, not a list")
    info = data.get("page_info")
    if not isinstance(info, dict):
        info = {}
    return _PageAnswer(rows, _count(info.get("total_page")), _count(info.get("total_count")))


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _older(answer: _PageAnswer, total_count: int | None) -> bool:
    """Whether `answer` was cut from a shorter list than the page before it was."""
    if answer.total_count is None or total_count is None:
        return False
    return answer.total_count < total_count


def parse_rows(rows: list[Any]) -> list[Listed]:
    """Every record of one page, parsed."""
    return [parse_task(row) for row in rows]


def parse_task(row: Any) -> Listed:
    """One lip-sync record as an `ArchiveItem`, `Unfinished` or `Rejected`."""
    return parse_record(row, TASK_FIELDS)
