"""Chanjing access tokens: minted once per run per app id, shared by every source using it.

Minting a token invalidates the one before, so two sources with one app id must share one
token, and concurrent page requests that all see code 10400 must cause one new mint, not many.
A token minted because the one before was refused is not renewed again when it is refused too:
the credential itself is wrong, for every source that uses it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from archiver.errors import CredentialsRejected, MalformedResponse
from archiver.net.apiprofile import ApiProfile

if TYPE_CHECKING:
    from archiver.net.http import HttpClient
from archiver.reporting.redact import REDACT

# Mint a new token when the current one has less than this many seconds left.
EXPIRY_MARGIN = 300
T = TypeVar("T")


class ChanjingToken:
    """The access token of one Chanjing app id (or a ready token), for the whole run."""

    def __init__(
        self,
        http: HttpClient,
        profile: ApiProfile,
        url: str,
        *,
        app_id: str | None,
        secret_key: str | None,
        ready_token: str | None,
    ) -> None:
        self._http = http
        self._profile = profile
        self._url = url
        self._app_id = app_id
        self._secret_key = secret_key
        self._token = ready_token
        self._expires_at: float | None = None
        self._lock = asyncio.Lock()
        self._renewals: set[str] = set()  # tokens minted because the one before was refused
        self.mints = 0

    @property
    def can_mint(self) -> bool:
        """Whether an app id and secret key are configured, so a new token can be asked for."""
        return bool(self._app_id and self._secret_key)

    async def get(self) -> str:
        """The current token, minting one if there is none or it is about to expire."""
        async with self._lock:
            if self._token is None or self._expiring():
                await self._mint()
            assert self._token is not None
            return self._token

    async def call(self, request: Callable[[str], Awaitable[T]]) -> T:
        """`request(token)`, once more with a new token if the first is refused.

        Raises `CredentialsRejected` when no token can be minted, or when the refused token
        was itself minted after a refusal.
        """
        current = await self.get()
        try:
            return await request(current)
        except CredentialsRejected:
            if not self.can_mint or current in self._renewals:
                raise
            return await request(await self.renew(current))

    async def renew(self, rejected: str) -> str:
        """A new token after `rejected` was refused, unless another caller already renewed it."""
        async with self._lock:
            if self._token == rejected:
                await self._mint()
                assert self._token is not None
                self._renewals.add(self._token)
            assert self._token is not None
            return self._token

    def _expiring(self) -> bool:
        return self._expires_at is not None and time.time() > self._expires_at - EXPIRY_MARGIN

    async def _mint(self) -> None:
        self.mints += 1
        token, expires_at = await self._http.call_api(
            self._profile,
            self._url,
            parse=_token_data,
            headers={},
            json_body={"app_id": self._app_id, "secret_key": self._secret_key},
        )
        REDACT.add([token])
        self._token = token
        self._expires_at = expires_at


def _token_data(doc: dict[str, Any]) -> tuple[str, float | None]:
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MalformedResponse("token answer without a `data` object")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise MalformedResponse("token answer without an access_token")
    expire = data.get("expire_in")
    expires_at = None
    # A number, and a plausible one: float() of a huge JSON integer would overflow.
    if isinstance(expire, int | float) and not isinstance(expire, bool) and 0 < expire < 1e15:
        expires_at = float(expire)
    # `expire_in` is documented as a Unix time; a small number is more likely a lifetime.
    if expires_at is not None and expires_at < 10**9:
        expires_at += time.time()
    return token, expires_at
