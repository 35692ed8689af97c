"""What every source is: a class with one async generator of pages.

A source holds its whole page loop and its stop condition. It knows nothing of files, the
manifest or retries: it asks `HttpClient.call_api`, which retries, and turns each API record
into a typed `Listed` value. It also says how its records are shown (`view`), so that the
catalog never needs to know a service's field names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from archiver.config.settings import SourceSettings
from archiver.net.limits import RequestRateLimiter
from archiver.sources.records import Page

if TYPE_CHECKING:
    from archiver.net.http import HttpClient

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


@dataclass(frozen=True)
class RecordView:
    """What the catalog shows of one archived record, as its source reads it.

    Values come from the record as the service sent it, of any type at all: the catalog keeps
    only texts that are text and durations that are numbers. `duration` is in seconds.
    """

    title: Any = None
    prompt: Any = None
    duration: Any = None
    author: Any = None
    template: Any = None  # the id of the template a task was made from
    picture: bool = False  # a still picture: nothing to play
    video_roles: tuple[str, ...] = ("video",)  # the first one archived is played
    image_roles: tuple[str, ...] = ("cover", "preview", "thumb")  # the first one is shown


class Source(ABC):
    """A configured account on one service."""

    type_name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # what the catalog calls this kind of work
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

    @classmethod
    def view(cls, kind: str, record: dict[str, Any]) -> RecordView:
        """How an archived `record` of this type (a `task` or a `template`) is shown."""
        return RecordView(title=record.get("title"), prompt=record.get("prompt"))

    @abstractmethod
    def pages(self) -> AsyncGenerator[Page, None]:
        """Every page of the account's task list, first to last."""

    def endpoint(self, path: str) -> str:
        """The full URL of an API path under `base_url`."""
        return self.settings.base_url.rstrip("/") + path
