"""Telling someone: healthchecks.io-style pings and Apprise notifications, to a loopback server.

A real aiohttp server records what it is sent; a real child process gets SIGTERM. A notifier
that cannot be reached changes nothing but a warning, and costs little time.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from archiver.standin import StandIn
from tests.support import config_dict, run_cli, spawn_cli, write_config

PASSWORD = "apprise-secret-pw"


@dataclass
class Received:
    """One request the notification server got."""

    method: str
    path: str
    body: str
    authorization: str | None


@dataclass
class NotifyServer:
    """A loopback server that records every request and answers 200."""

    url: str
    received: list[Received] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    def at(self, path: str) -> Received:
        return next(r for r in self.received if r.path == path)


@pytest.fixture
async def notify_server() -> AsyncIterator[NotifyServer]:
    server = NotifyServer(url="")

    async def record(request: web.Request) -> web.Response:
        body = await request.text()
        auth = request.headers.get("Authorization")
        server.received.append(Received(request.method, request.path, body, auth))
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens: a connection is refused at once."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    yield port


def _reports(tmp_path: Path) -> list[dict[str, Any]]:
    folder = tmp_path / "archive" / ".archiver" / "runs"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


async def test_a_good_run_pings_start_then_success(
    standin: StandIn, notify_server: NotifyServer, tmp_path: Path
) -> None:
    ping = f"{notify_server.url}/ping/check-1"
    config = write_config(tmp_path, config_dict(standin, notify={"ping_url": ping}))
    result = await run_cli("run", "-c", config)
    assert result.code == 0, result.output
    assert notify_server.paths() == ["/ping/check-1/start", "/ping/check-1"]
    done = notify_server.at("/ping/check-1")
    assert done.method == "POST"
    assert f"archive: {tmp_path / 'archive'}" in done.body
    assert "archived" in done.body and "faceswap: listed" in done.body
    assert _reports(tmp_path)[-1]["warnings"] == []


async def test_a_failed_run_pings_fail_with_what_failed_and_why(
    standin: StandIn, notify_server: NotifyServer, tmp_path: Path
) -> None:
    ping = f"{notify_server.url}/ping/check-2"
    config = write_config(
        tmp_path,
        config_dict(standin, vth={"token": "revoked-token-123"}, notify={"ping_url": ping}),
    )
    result = await run_cli("run", "-c", config)
    assert result.code == 3
    assert notify_server.paths() == ["/ping/check-2/start", "/ping/check-2/fail"]
    body = notify_server.at("/ping/check-2/fail").body
    assert "faceswap" in body and "credentials rejected" in body
    assert "revoked-token-123" not in body


async def test_an_error_before_the_run_pings_fail(
    standin: StandIn, notify_server: NotifyServer, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    ping = f"{notify_server.url}/ping/check-3"
    config = write_config(
        tmp_path, config_dict(standin, archive_dir="file/archive", notify={"ping_url": ping})
    )
    assert (await run_cli("run", "-c", config)).code == 2
    assert notify_server.paths() == ["/ping/check-3/start", "/ping/check-3/fail"]
    assert "not a folder" in notify_server.at("/ping/check-3/fail").body


async def test_sigterm_pings_fail(
    standin: StandIn, notify_server: NotifyServer, tmp_path: Path
) -> None:
    # Slow downloads keep the run going until the signal comes.
    ping = f"{notify_server.url}/ping/check-4"
    cfg = config_dict(standin, bandwidth_limit=20_000, notify={"ping_url": ping})
    config = write_config(tmp_path, cfg)
    child = await spawn_cli("run", "-c", config, output=tmp_path / "child.log")
    try:
        while "/ping/check-4/start" not in notify_server.paths():
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        child.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(child.wait(), 30)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert code == 130, (tmp_path / "child.log").read_text()
    assert notify_server.paths() == ["/ping/check-4/start", "/ping/check-4/fail"]
    assert "interrupted" in notify_server.at("/ping/check-4/fail").body


@pytest.mark.parametrize(
    ("when", "token", "sent"),
    [
        ("failure", None, False),
        ("failure", "wrong-token", True),
        ("news", None, True),
        ("always", None, True),
    ],
)
async def test_apprise_notifications_follow_when(
    standin: StandIn,
    notify_server: NotifyServer,
    tmp_path: Path,
    when: str,
    token: str | None,
    sent: bool,
) -> None:
    port = notify_server.url.rsplit(":", 1)[1]
    url = f"json://archiver:{PASSWORD}@127.0.0.1:{port}/apprise"
    vth = {"token": token} if token else None
    config = write_config(
        tmp_path, config_dict(standin, vth=vth, notify={"urls": [url], "when": when})
    )
    result = await run_cli("run", "-c", config)
    assert result.code == (3 if token else 0)
    if not sent:
        assert notify_server.received == []
        return
    (message,) = notify_server.received
    assert message.path == "/apprise" and message.authorization is not None
    payload = json.loads(message.body)
    archive = tmp_path / "archive"
    assert payload["title"].startswith(f"archiver {archive}: exit {result.code}")
    assert f"archive: {archive}" in payload["message"]
    assert "archived" in payload["message"]
    if token:
        assert "credentials rejected" in payload["message"]
        assert token not in payload["message"]
    assert PASSWORD not in result.output


async def test_news_without_news_sends_nothing(
    standin: StandIn, notify_server: NotifyServer, tmp_path: Path
) -> None:
    port = notify_server.url.rsplit(":", 1)[1]
    url = f"json://127.0.0.1:{port}/apprise"
    config = write_config(tmp_path, config_dict(standin, notify={"urls": [url], "when": "news"}))
    assert (await run_cli("run", "-c", config)).code == 0
    assert len(notify_server.received) == 1
    assert (await run_cli("run", "-c", config)).code == 0  # nothing new the second time
    assert len(notify_server.received) == 1


async def test_an_unreachable_notifier_is_a_warning_and_costs_little(
    standin: StandIn, tmp_path: Path, closed_port: int
) -> None:
    ping = f"http://127.0.0.1:{closed_port}/ping/check-5"
    url = f"json://archiver:{PASSWORD}@127.0.0.1:{closed_port}/apprise"
    plain = write_config(tmp_path, config_dict(standin))
    started = time.monotonic()
    assert (await run_cli("run", "-c", plain)).code == 0
    baseline = time.monotonic() - started
    notify = {"ping_url": ping, "urls": [url], "when": "always"}
    config = write_config(tmp_path, config_dict(standin, notify=notify))
    started = time.monotonic()
    result = await run_cli("run", "-c", config, "--full")
    elapsed = time.monotonic() - started
    assert result.code == 0, result.output
    assert elapsed - baseline < 5, (elapsed, baseline)
    where = f"127.0.0.1:{closed_port}"
    assert f"notify: ping http://{where}/start failed" in result.output
    assert f"notify: ping http://{where} (success) failed" in result.output
    assert f"notify.urls[0] (json://{where}): could not deliver" in result.output
    warnings = _reports(tmp_path)[-1]["warnings"]
    assert len(warnings) == 3
    texts = [result.output, *(p.read_text() for p in (tmp_path / "archive").rglob("*.json"))]
    assert not any(PASSWORD in text for text in texts)


async def test_urls_without_apprise_are_a_config_error(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if it were not installed
    config = write_config(tmp_path, config_dict(standin, notify={"urls": ["ntfy://alerts"]}))
    result = await run_cli("run", "-c", config)
    assert result.code == 2
    assert "pip install 'archiver[notify]'" in result.output
    assert not (tmp_path / "archive").exists()
    # Commands that notify nobody do not need it.
    assert "not installed" not in (await run_cli("status", "-c", config)).output
