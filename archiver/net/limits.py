"""Named limits on how fast we ask: requests a second, and bytes a second; and the slowest
transfer we wait for.

`RequestRateLimiter` keeps a sliding log of send times so that no window of one second ever
holds more than `rate` requests; a token bucket would allow a burst of twice that across a
window boundary, which a strict server (Chanjing answers 40001) counts as a violation.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from archiver.errors import RetryableError


class RequestRateLimiter:
    """At most `rate` requests in any window of `period` seconds.

    A request holds its place in the window from when it is sent until its answer has come:
    the server counts arrivals, and an arrival can only lie between the two. Counting from the
    send alone let event-loop lag on a busy machine put eleven arrivals in one second.
    """

    # Arrival times at the server differ from ours by network jitter, so the window we keep is
    # a little longer than the one the server enforces.
    MARGIN = 0.05

    def __init__(self, rate: float, period: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        # A fractional rate (0.5 a second) is a whole number of requests over a longer window.
        self.count = max(1, math.floor(rate * period)) if rate >= 1 else 1
        self.window = (self.count / rate) + self.MARGIN
        self._held: list[list[float]] = []  # one cell a request: when it last held its place
        self._lock = asyncio.Lock()

    async def acquire(self) -> Callable[[], None]:
        """Wait until one more request fits in the window, and claim it.

        Returns what to call once the request's answer has come (or it failed).
        """
        async with self._lock:
            while True:
                now = time.monotonic()
                self._held = [cell for cell in self._held if now - cell[0] < self.window]
                if len(self._held) < self.count:
                    cell = [now]
                    self._held.append(cell)
                    return lambda: cell.__setitem__(0, time.monotonic())
                await asyncio.sleep(min(cell[0] for cell in self._held) + self.window - now)


class BandwidthLimiter:
    """A token bucket over bytes, shared by every download; `rate` 0 means unlimited."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._allowance = float(rate)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def consume(self, amount: int) -> None:
        """Account for `amount` bytes received, sleeping if they came too fast."""
        if self.rate <= 0:
            return
        async with self._lock:  # waiting here is throttling too: the others are sleeping
            now = time.monotonic()
            self._allowance = min(
                float(self.rate), self._allowance + (now - self._stamp) * self.rate
            )
            self._stamp = now
            self._allowance -= amount
            if self._allowance < 0:
                await asyncio.sleep(-self._allowance / self.rate)


class SpeedFloor:
    """Cuts a transfer slower than `limit` bytes a second over the last `window` seconds.

    curl's `--speed-limit`/`--speed-time`. `feed` runs once per chunk received, so it costs a
    clock read and a comparison; the window is kept as a few (time, bytes so far) marks, taken
    at most `MARKS` times per window. A transfer that sends nothing at all never calls `feed`:
    the read timeout (no longer than `window`) cuts that one.
    """

    MARKS = 8

    __slots__ = ("_marks", "_next", "_step", "limit", "total", "window")

    def __init__(self, limit: int, window: float) -> None:
        now = time.monotonic()
        self.limit = limit
        self.window = window
        self.total = 0
        self._marks: deque[tuple[float, int]] = deque([(now, 0)])
        self._step = window / self.MARKS
        self._next = now + self._step

    def feed(self, count: int) -> None:
        """Count `count` bytes just received; raises `RetryableError` if the pace is too slow."""
        self.total += count
        now = time.monotonic()
        if now >= self._next:
            self._check(now)

    def held(self, seconds: float) -> None:
        """Leave out `seconds` in which the transfer was held back by the run's own limit.

        A `bandwidth_limit` shared by many downloads may hold each below the floor; that pace
        is ours, not the server's, and must not cut the transfer. The window slides past them.
        """
        self._marks = deque((at + seconds, count) for at, count in self._marks)
        self._next += seconds

    def _check(self, now: float) -> None:
        marks = self._marks
        marks.append((now, self.total))
        horizon = now - self.window
        while len(marks) > 1 and marks[1][0] <= horizon:
            marks.popleft()
        since, before = marks[0]
        span = now - since
        if span >= self.window and self.total - before < self.limit * span:
            raise RetryableError(too_slow((self.total - before) / span, self.window))
        self._next = now + self._step


def too_slow(rate: float, window: float) -> str:
    """The reason a transfer was cut: `too slow: 12 B/s over 60 s`."""
    return f"too slow: {rate:.0f} B/s over {window:g} s"
