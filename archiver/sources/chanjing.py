"""What every Chanjing list shares: settings, the token, the rate limit and the page loop.

All Chanjing lists of one account answer on one host with one access token and one budget of
10 requests a second across every endpoint, so the token (minted once per run per app id, and
once more for all of them when refused) and the limiter are shared through `SourceContext`.

A list's first page tells `total_page`, so pages 2..N are requested a few at a time (within
the rate limit) and handed on in order. Without a usable page info the list is read like any
other: until an empty or short page. `video_list` answers with capitalised `List` and
`PageInfo`; both casings are read everywhere.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from archiver.config.settings import SourceSettings, secret
from archiver.errors import ConfigError, MalformedResponse
from archiver.net.apiprofile import ApiProfile
from archiver.sources.base import Source
from archiver.sources.chanjing_token import ChanjingToken
from archiver.sources.parse import TaskFields, parse_later, parse_task
from archiver.sources.records import Listed, Page, Parsed

DEFAULT_QPS = 10.0
MAX_PAGES = 1_000_000
# 10400 and 10401 both mean the token was refused (also by the token endpoint: a wrong app_id
# or secret_key is a rejected credential, reported as such, not an unexplained API error).
AUTH_CODES = frozenset({10400, 10401})

Rows = list[Any]
Fetch = Callable[[int], Awaitable["PageAnswer"]]


@dataclass(frozen=True, kw_only=True)
class ChanjingSettings(SourceSettings):
    """Settings of every Chanjing source type."""

    access_token: str | None = secret()
    app_id: str | None = None
    secret_key: str | None = secret()
    pages_in_flight: int = 4


@dataclass(frozen=True)
class PageAnswer:
    """One page of a Chanjing list: its records and what it says of the whole list."""

    rows: Rows
    total_pages: int | None
    total_count: int | None = None  # how long the list was when this page was cut from it


class ChanjingSource(Source):
    """A Chanjing list: a subclass names its endpoint and its record's fields."""

    settings_type = ChanjingSettings
    default_base_url = "https://open-api.chanjing.cc"
    settings: ChanjingSettings
    list_path: ClassVar[str] = ""
    task_fields: ClassVar[TaskFields]

    @classmethod
    def check_settings(cls, settings: SourceSettings, where: str) -> None:
        assert isinstance(settings, ChanjingSettings)
        if bool(settings.app_id) != bool(settings.secret_key):
            raise ConfigError(f"{where}: app_id and secret_key go together")
        if not settings.access_token and not settings.app_id:
            raise ConfigError(f"{where}.access_token: missing (or give app_id and secret_key)")
        if settings.pages_in_flight < 1:
            raise ConfigError(f"{where}.pages_in_flight: must be at least 1")

    async def pages(self) -> AsyncGenerator[Page, None]:
        async for number, rows in self.read_list(self.list_path, {}):
            yield Page(number, tuple(self.parse_rows(rows)))

    def parse_rows(self, rows: Rows) -> list[Listed]:
        """Every record of one page; a succeeded task's parsing put off (`parse_later`)."""
        fields, parse = self.task_fields, self.parse_row
        return [parse_later(row, fields, parse) for row in rows]

    def parse_row(self, row: Any) -> Parsed:
        """One record as this list's `ArchiveItem`, `Unfinished` or `Rejected`."""
        return parse_task(row, self.task_fields)

    def _profile(self) -> ApiProfile:
        rate = self.settings.qps or DEFAULT_QPS
        return ApiProfile(
            service=self.name,
            ok_codes=frozenset({0}),
            retry_codes=frozenset({50000}),
            throttle_codes=frozenset({40001}),
            auth_codes=AUTH_CODES,
            limiter=self.context.limiter(self.settings.base_url, rate),
        )

    def _token(self) -> ChanjingToken:
        s = self.settings
        # One token per app id: two minting for one app would revoke each other's tokens.
        account = ("app", s.app_id) if s.app_id else ("token", s.access_token or "")
        key = ("chanjing-token", s.base_url, *account)
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

    async def read_list(
        self, path: str, body: dict[str, Any]
    ) -> AsyncGenerator[tuple[int, Rows], None]:
        """Every page of the list at `path`, in order, as (number, raw records)."""
        token, profile, url = self._token(), self._profile(), self.endpoint(path)

        async def fetch(number: int) -> PageAnswer:
            page_body = {**body, "page": number, "page_size": self.settings.page_size}

            async def request(current: str) -> PageAnswer:
                headers = {**self.settings.headers, "access_token": current}
                return await self.http.call_api(
                    profile, url, parse=page_answer, headers=headers, json_body=page_body
                )

            return await token.call(request)

        first = await fetch(1)
        yield 1, first.rows
        if first.total_pages is None:
            pages = self._sequential(fetch, len(first.rows))
        else:
            pages = self._concurrent(fetch, first.total_pages, first.total_count)
        async for number, rows in pages:
            yield number, rows

    async def _sequential(self, fetch: Fetch, last_size: int) -> AsyncIterator[tuple[int, Rows]]:
        number, size = 2, last_size
        while size >= self.settings.page_size and number <= MAX_PAGES:
            answer = await fetch(number)
            size = len(answer.rows)
            if size:
                yield number, answer.rows
            number += 1

    async def _concurrent(
        self, fetch: Fetch, total_pages: int, total_count: int | None
    ) -> AsyncIterator[tuple[int, Rows]]:
        window: deque[tuple[int, asyncio.Future[PageAnswer]]] = deque()
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
                yield number, answer.rows
        finally:
            for _, future in window:
                future.cancel()


def page_answer(doc: dict[str, Any]) -> PageAnswer:
    """The records and page info of one answer, under either casing of their keys."""
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MalformedResponse(f"`data` is a {type(data).__name__}, not an object")
    rows = _either(data, "list", "List")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise MalformedResponse(f"`data.list` is a {type(rows).__name__}, not a list")
    info = _either(data, "page_info", "PageInfo")
    if not isinstance(info, dict):
        info = {}
    return PageAnswer(rows, _count(info.get("total_page")), _count(info.get("total_count")))


def _either(data: dict[str, Any], lower: str, capitalised: str) -> Any:
    value = data.get(lower)
    return data.get(capitalised) if value is None else value


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _older(answer: PageAnswer, total_count: int | None) -> bool:
    """Whether `answer` was cut from a shorter list than the page before it was."""
    if answer.total_count is None or total_count is None:
        return False
    return answer.total_count < total_count
