"""When and how long to wait before trying a request again.

Exponential backoff with full jitter (the delay is uniform in [0, base * 2**n], capped), so that
many clients that failed together do not come back together; a server's `Retry-After` wins when
it asks for longer, up to a cap, because it knows its own load.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from archiver.errors import RetryableError

T = TypeVar("T")
log = logging.getLogger("archiver.net.http")


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and the backoff between them."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 60.0
    retry_after_cap: float = 600.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th failure in a row.

        A `retry_after` of 0 is our own "try again at once": the failure was a discovery (the
        file changed upstream), not a sign of load.
        """
        if retry_after == 0:
            return 0.0
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (failures - 1)))
        if retry_after is not None:
            return max(backoff, min(retry_after, self.retry_after_cap))
        return backoff

    async def run(
        self,
        operation: Callable[[], Awaitable[T]],
        what: str,
        final: Callable[[RetryableError], Exception],
    ) -> T:
        """Run `operation` until it succeeds, retrying `RetryableError` with backoff.

        When attempts run out, `final(last_error)` is raised from the last error.
        """
        failures = 0
        while True:
            try:
                return await operation()
            except RetryableError as exc:
                failures += 1
                if failures >= self.attempts:
                    raise final(exc) from exc
                pause = self.delay(failures, exc.retry_after)
                log.debug("%s: %s; attempt %d in %.2fs", what, exc, failures + 1, pause)
                await asyncio.sleep(pause)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone takes `²`, which float() refuses
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
