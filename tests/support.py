"""Helpers the tests share: a config file for a running stand-in, and the CLI run in-process."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archiver.cli import main
from archiver.standin import StandIn
from archiver.standin.server import (
    DEMO_CHANJING_APP_ID,
    DEMO_CHANJING_SECRET_KEY,
    DEMO_VTH_TOKEN,
)

FAST_HTTP = {"retries": 4, "backoff_base": 0.01, "backoff_max": 0.05, "read_timeout": 5}


def config_dict(
    standin: StandIn,
    *,
    vth: dict[str, Any] | None = None,
    chanjing: dict[str, Any] | None = None,
    only: str | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A config for both sources of `standin`, with fast retries; overrides merged in."""
    sources: dict[str, Any] = {
        "faceswap": {
            "type": "video_task_history",
            "base_url": standin.api_url,
            "token": DEMO_VTH_TOKEN,
            "page_size": 10,
            **(vth or {}),
        },
        "chanjing": {
            "type": "chanjing_lip_sync",
            "base_url": standin.api_url,
            "app_id": DEMO_CHANJING_APP_ID,
            "secret_key": DEMO_CHANJING_SECRET_KEY,
            "page_size": 10,
            **(chanjing or {}),
        },
    }
    if only is not None:
        sources = {only: sources[only]}
    return {
        "archive_dir": "archive",
        "concurrency": 4,
        "catalog": False,
        "http": dict(FAST_HTTP),
        "sources": sources,
        **top,
    }


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    """Write `config` as YAML into `folder/config.yaml`."""
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class CliResult:
    """What one in-process CLI call returned and printed."""

    code: int
    output: str


async def run_cli(*argv: str | Path) -> CliResult:
    """`archiver ARGV...` in this process (in a thread, so the stand-in keeps serving)."""

    def call() -> CliResult:
        buffer = io.StringIO()
        with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(buffer):
            code = main([str(a) for a in argv])
        for handler in logging.getLogger("archiver").handlers:
            handler.flush()
        return CliResult(code, buffer.getvalue())

    return await asyncio.to_thread(call)


def sidecars(archive: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every sidecar in the archive, by (source, kind, id)."""
    found = {}
    for path in archive.rglob("metadata.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        found[(doc["source"], doc["kind"], doc["id"])] = doc
    return found


def task_ids(archive: Path, source: str) -> set[str]:
    """The ids of every task archived for `source`, from the sidecars."""
    return {i for (s, kind, i) in sidecars(archive) if s == source and kind == "task"}
