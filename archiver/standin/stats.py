"""What the stand-in saw: every request, bytes sent, token mints, QPS, for tests to assert on.

Aggregates (counters, header names seen by the media host, Chanjing arrival times) are always
kept. The full request log can be switched off for runs of tens of thousands of tasks, where
keeping every request would cost the test process more memory than the archiver it measures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

Site = Literal["api", "media"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as it arrived."""

    site: Site
    method: str
    path: str  # decoded, without the query
    query: str
    headers: tuple[tuple[str, str], ...]
    body: Any  # the parsed JSON or form body of an API request; None otherwise
    encoding: str | None  # "json", "form", "query", "none" (API only)
    at: float  # time.monotonic() on arrival

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass
class Stats:
    """Counters and logs of one stand-in; `reset()` starts a new phase of a test."""

    record_requests: bool = True
    requests: list[RecordedRequest] = field(default_factory=list)
    path_counts: Counter[str] = field(default_factory=Counter)
    media_bytes_sent: int = 0
    media_header_names: set[str] = field(default_factory=set)
    mints: Counter[str] = field(default_factory=Counter)
    qps_violations: int = 0
    chanjing_arrivals: list[float] = field(default_factory=list)
    vth_encodings: Counter[str] = field(default_factory=Counter)

    def record(self, request: RecordedRequest) -> None:
        """Count a request and, unless switched off, keep it."""
        self.path_counts[request.path] += 1
        if request.site == "media":
            self.media_header_names.update(name.lower() for name, _ in request.headers)
        if self.record_requests:
            self.requests.append(request)

    @property
    def api_requests(self) -> list[RecordedRequest]:
        """The recorded requests to the API site, in arrival order."""
        return [r for r in self.requests if r.site == "api"]

    @property
    def media_requests(self) -> list[RecordedRequest]:
        """The recorded requests to the media site, in arrival order."""
        return [r for r in self.requests if r.site == "media"]

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for exactly `path`."""
        return [r for r in self.requests if r.path == path]

    def max_chanjing_in_window(self, window: float = 1.0) -> int:
        """The most Chanjing requests that arrived within any `window` seconds."""
        times = sorted(self.chanjing_arrivals)
        best = start = 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self) -> None:
        """Forget everything seen so far (the switch for the request log stays)."""
        self.requests.clear()
        self.path_counts.clear()
        self.media_bytes_sent = 0
        self.media_header_names.clear()
        self.mints.clear()
        self.qps_violations = 0
        self.chanjing_arrivals.clear()
        self.vth_encodings.clear()
