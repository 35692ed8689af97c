"""`StandIn`: both services and their media host, running on loopback ports of their own.

The API site and the media site are two aiohttp applications on two ports, so media URLs are
on a different host:port from the API, as S3 is from the real APIs: a client that leaks its
credential to the media host is caught by `stats.media_header_names`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiohttp import web

from archiver.standin.api import ApiSite
from archiver.standin.dataset import Dataset, DatasetSpec
from archiver.standin.faults import Faults
from archiver.standin.media import MediaSite
from archiver.standin.stats import Stats

# Public demo credentials: what `archiver demo` configures, and the tests' defaults.
DEMO_VTH_TOKEN = "demo-faceswap-token"  # noqa: S105
DEMO_CHANJING_APP_ID = "demo-app"
DEMO_CHANJING_SECRET_KEY = "demo-secret"  # noqa: S105
DEMO_CHANJING_ACCESS_TOKEN = "demo-chanjing-token"  # noqa: S105

# Handlers still running when the stand-in stops (a stalled body, a slow answer) are
# cancelled after this long, so that a test never waits on its own server.
_SHUTDOWN_TIMEOUT = 0.5


class StandIn:
    """The stand-in of both services: `async with StandIn() as s:` serves until the block ends."""

    def __init__(
        self,
        spec: DatasetSpec | None = None,
        *,
        vth_token: str = DEMO_VTH_TOKEN,
        chanjing_app_id: str = DEMO_CHANJING_APP_ID,
        chanjing_secret_key: str = DEMO_CHANJING_SECRET_KEY,
        chanjing_access_token: str | None = DEMO_CHANJING_ACCESS_TOKEN,
        host: str = "127.0.0.1",
        media_base_url: str | None = None,
        qps_limit: int = 10,
        record_requests: bool = True,
        api_port: int = 0,
        media_port: int = 0,
    ) -> None:
        self.spec = spec or DatasetSpec()
        self.host = host
        self.dataset = Dataset(self.spec, media_base_url or "http://media.invalid")
        self.faults = Faults()
        self.stats = Stats(record_requests=record_requests)
        self._media_base_url = media_base_url
        self._ports = (api_port, media_port)
        self._closing = asyncio.Event()
        self.api = ApiSite(
            self.dataset,
            self.faults,
            self.stats,
            self._closing,
            vth_token=vth_token,
            chanjing_apps={chanjing_app_id: chanjing_secret_key},
            chanjing_access_token=chanjing_access_token,
            qps_limit=qps_limit,
        )
        self.media = MediaSite(self.dataset, self.faults, self.stats, self._closing)
        self._runners: list[web.AppRunner] = []
        self._urls: list[str] = []

    @property
    def api_url(self) -> str:
        """The base URL of both APIs, e.g. `http://127.0.0.1:41234`."""
        return self._url(0)

    @property
    def media_url(self) -> str:
        """The base URL of the media host (the records' media URLs start with it by default)."""
        return self._url(1)

    def expire_chanjing_tokens(self) -> None:
        """Let every Chanjing token expire now, the ready one included (code 10400 follows)."""
        self.api.expire_tokens()

    @property
    def chanjing_tokens(self) -> dict[str, str]:
        """The one valid token per Chanjing app id."""
        return dict(self.api.current_tokens)

    async def start(self) -> None:
        """Start both sites on their ports (0: any free port)."""
        if self._runners:
            raise RuntimeError("this stand-in is already running")
        self._closing.clear()
        try:
            for app, port in zip((self.api.app(), self.media.app()), self._ports, strict=True):
                runner = web.AppRunner(
                    app,
                    access_log=None,
                    handler_cancellation=True,
                    shutdown_timeout=_SHUTDOWN_TIMEOUT,
                )
                await runner.setup()
                self._runners.append(runner)
                site = web.TCPSite(runner, self.host, port)
                await site.start()
                bound = runner.addresses[0][1]
                self._urls.append(f"http://{_url_host(self.host)}:{bound}")
        except BaseException:
            await self.close()
            raise
        if self._media_base_url is None:
            self.dataset.media_base_url = self.media_url

    async def close(self) -> None:
        """Stop both sites; stalled answers are let go first."""
        self._closing.set()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        self._urls.clear()

    async def __aenter__(self) -> StandIn:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _url(self, index: int) -> str:
        if len(self._urls) <= index:
            raise RuntimeError("the stand-in is not running: use `async with StandIn()`")
        return self._urls[index]


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
