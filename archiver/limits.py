"""Named limits on how fast we ask: requests a second, and bytes a second.

`RequestRateLimiter` keeps a sliding log of send times so that no window of one second ever
holds more than `rate` requests; a token bucket would allow a burst of twice that across a
window boundary, which a strict server (Chanjing answers 40001) counts as a violation.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque


class RequestRateLimiter:
    """At most `rate` requests in any window of `period` seconds."""

    # Send times are ours; arrival times at the server differ by network jitter, so the window
    # we keep is a little longer than the one the server enforces.
    MARGIN = 0.05

    def __init__(self, rate: float, period: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        # A fractional rate (0.5 a second) is a whole number of requests over a longer window.
        self.count = max(1, math.floor(rate * period)) if rate >= 1 else 1
        self.window = (self.count / rate) + self.MARGIN
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, and claim it."""
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.count:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self.window - (now - self._sent[0]))


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
        async with self._lock:
            now = time.monotonic()
            self._allowance = min(
                float(self.rate), self._allowance + (now - self._stamp) * self.rate
            )
            self._stamp = now
            self._allowance -= amount
            if self._allowance < 0:
                await asyncio.sleep(-self._allowance / self.rate)
