"""How one service answers its API calls: the `ApiProfile` a source gives the HTTP layer.

Kept apart from `archiver.net.http` so that reading the config (which knows every source type)
does not import the HTTP client: `verify` and `status` never touch the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from archiver.net.limits import RequestRateLimiter

__all__ = ["ApiProfile"]


@dataclass(frozen=True)
class ApiProfile:
    """How one service answers: which `code` values mean success, try again, or bad credential."""

    service: str
    ok_codes: frozenset[int]
    retry_codes: frozenset[int]
    auth_codes: frozenset[int] = frozenset()
    # Codes that mean "too many requests": like HTTP 429 with an implied Retry-After of one
    # rate window, since requests of another process (the last run) may still fill it.
    throttle_codes: frozenset[int] = frozenset()
    limiter: RequestRateLimiter | None = None
