"""What every source is: a class with one async generator of pages.

A source holds its whole page loop and its stop condition. It knows nothing of files, the
manifest or retries: it asks `HttpClient.call_api`, which retries, and turns each API record
into a typed `Listed` value.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from archiver.limits import RequestRateLimiter
from archiver.records import Page
from archiver.settings import SourceSettings

if TYPE_CHECKING:
    from archiver.http import HttpClient

T = TypeVar("T")


class SourceContext:
    """What sources of one run share: rate limiters per API host, tokens per account."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._shared: dict[tuple[str, ...], Any] = {}

    def limiter(self, host_key: str, rate: float) -> RequestRateLimiter:
        """The limiter of one API host: every source that talks to it shares its budget."""
        limiter: RequestRateLimiter = self.shared(
            ("limiter", host_key), lambda: RequestRateLimiter(rate)
        )
        return limiter

    def shared(self, key: tuple[str, ...], create: Callable[[], T]) -> T:
        """One object per `key` for the whole run, made by `create` on first use."""
        if key not in self._shared:
            self._shared[key] = create()
        value: T = self._shared[key]
        return value


class Source(ABC):
    """A configured account on one service."""

    type_name: ClassVar[str] = ""
    settings_type: ClassVar[type[SourceSettings]] = SourceSettings
    default_base_url: ClassVar[str] = ""

    def __init__(self, name: str, settings: SourceSettings, context: SourceContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context
        self.http = context.http

    @classmethod
    def check_settings(cls, settings: SourceSettings, where: str) -> None:
        """Raise `ConfigError` for settings that are wrong together (each is already typed)."""
        return

    @abstractmethod
    def pages(self) -> AsyncGenerator[Page, None]:
        """Every page of the account's task list, first to last."""

    def endpoint(self, path: str) -> str:
        """The full URL of an API path under `base_url`."""
        return self.settings.base_url.rstrip("/") + path
