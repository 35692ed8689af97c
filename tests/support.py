"""Helpers the tests share: a config file for a running stand-in, and the CLI run in-process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import io
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archiver.cli import main
from archiver.standin import DatasetSpec, StandIn
from archiver.standin.dataset import Service
from archiver.standin.server import (
    DEMO_CHANJING_APP_ID,
    DEMO_CHANJING_SECRET_KEY,
    DEMO_VTH_TOKEN,
)

FAST_HTTP = {"retries": 4, "backoff_base": 0.01, "backoff_max": 0.05, "read_timeout": 5}
# The other lists of the Chanjing account: source name -> (source type, the stand-in's list).
CHANJING_LISTS: dict[str, tuple[str, Service]] = {
    "cjvideo": ("chanjing_video", "cj_video"),
    "cjavatar": ("chanjing_avatar", "cj_avatar"),
    "cjai": ("chanjing_ai_creation", "cj_ai"),
}
WHOLE_CHANJING = ("chanjing", *CHANJING_LISTS)


def config_dict(
    standin: StandIn,
    *,
    vth: dict[str, Any] | None = None,
    chanjing: dict[str, Any] | None = None,
    only: str | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A config for both sources of `standin`, with fast retries; overrides merged in.

    `only` may also name one of `CHANJING_LISTS`: that list alone, with `chanjing`'s settings.
    """
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
    if only in CHANJING_LISTS:  # another list of the account, with `chanjing`'s settings
        sources = {only: {**sources["chanjing"], "type": CHANJING_LISTS[only][0]}}
    elif only is not None:
        sources = {only: sources[only]}
    return {
        "archive_dir": "archive",
        "concurrency": 4,
        "catalog": False,
        "http": dict(FAST_HTTP),
        "sources": sources,
        **top,
    }


def chanjing_account(
    standin: StandIn,
    *,
    chanjing: dict[str, Any] | None = None,
    lists: dict[str, dict[str, Any]] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A config of all four Chanjing lists of `standin` (sources `chanjing`, `cjvideo`,
    `cjavatar`, `cjai`): `chanjing` overrides apply to all four, `lists` to one by name."""
    config = config_dict(standin, chanjing=chanjing, only="chanjing", **top)
    for name in CHANJING_LISTS:
        one = config_dict(standin, chanjing=chanjing, only=name)["sources"][name]
        config["sources"][name] = {**one, **(lists or {}).get(name, {})}
    return config


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


def archive_chanjing_account(folder: Path, spec: DatasetSpec) -> dict[str, list[dict[str, Any]]]:
    """Archive the four Chanjing lists of a stand-in of `spec` into `folder/archive`, catalog
    included; returns the succeeded records of each source by name.

    For synchronous tests: it runs in a thread of its own, with its own event loop, so that a
    caller's loop (Playwright's) neither blocks it nor is in its way.
    """

    async def run() -> dict[str, list[dict[str, Any]]]:
        async with StandIn(spec) as standin:
            config = write_config(folder, chanjing_account(standin, catalog=True))
            result = await run_cli("run", "-c", config, "--no-progress")
            assert result.code == 0, result.output
            succeeded = {"chanjing": standin.dataset.succeeded("chanjing")}
            for name, (_, service) in CHANJING_LISTS.items():
                succeeded[name] = standin.dataset.succeeded(service)
            return succeeded

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result()


# -- checking a whole archive -----------------------------------------------------------------

ARCHIVE_NOISE = ("manifest.sqlite3", ".archiver")


def expected_items(standin: StandIn, sources: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """(source, kind, id) of every item a correct run archives from `standin`."""
    wanted: set[tuple[str, str, str]] = set()
    if "faceswap" in sources:
        for record in standin.dataset.succeeded_vth():
            wanted.add(("faceswap", "task", str(record["id"])))
            template = record.get("videoTemp")
            if isinstance(template, dict):
                wanted.add(("faceswap", "template", str(template["id"])))
    if "chanjing" in sources:
        wanted |= {("chanjing", "task", r["id"]) for r in standin.dataset.succeeded_chanjing()}
    for name, (_, service) in CHANJING_LISTS.items():
        if name in sources:
            key = "unique_id" if service == "cj_ai" else "id"
            wanted |= {(name, "task", r[key]) for r in standin.dataset.succeeded(service)}
    return wanted


def assert_archive_exact(
    archive: Path, standin: StandIn, sources: tuple[str, ...] = ("faceswap", "chanjing")
) -> None:
    """Every item archived once, every file the bytes served now, the manifest in agreement."""
    docs = sidecars(archive)
    assert set(docs) == expected_items(standin, sources)
    for path in archive.rglob("metadata.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for role, entry in doc["files"].items():
            data = (path.parent / entry["name"]).read_bytes()
            served = standin.dataset.media_bytes(standin.dataset.media_path(entry["url"]))
            assert data == served, (doc["source"], doc["id"], role)
            assert entry["bytes"] == len(data)
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    leftovers = [p for p in archive.rglob("*") if p.name.endswith((".part", ".part.json", ".tmp"))]
    assert leftovers == []
    assert manifest_problems(archive) == []
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        states = dict(db.execute("SELECT state, count(*) FROM items GROUP BY state").fetchall())
    finally:
        db.close()
    assert set(states) == {"archived"}, states


def manifest_problems(archive: Path) -> list[str]:
    """What is wrong with the items the manifest calls archived: missing, partial, changed."""
    problems: list[str] = []
    db = sqlite3.connect(f"file:{archive / 'manifest.sqlite3'}?mode=ro", uri=True)
    try:
        items = db.execute(
            "SELECT source, kind, item_id, folder FROM items WHERE state = 'archived'"
        )
        for source, kind, item_id, folder in items.fetchall():
            if not (archive / folder / "metadata.json").is_file():
                problems.append(f"{source} {kind} {item_id}: no sidecar")
            rows = db.execute(
                "SELECT path, bytes, sha256 FROM files WHERE source = ? AND kind = ? "
                "AND item_id = ? AND current = 1",
                (source, kind, item_id),
            ).fetchall()
            if not rows:
                problems.append(f"{source} {kind} {item_id}: no files")
            for path, size, digest in rows:
                file = archive / path
                if not file.is_file():
                    problems.append(f"{path}: missing")
                elif file.stat().st_size != size:
                    problems.append(f"{path}: {file.stat().st_size} bytes, not {size}")
                elif hashlib.sha256(file.read_bytes()).hexdigest() != digest:
                    problems.append(f"{path}: sha256 differs")
    finally:
        db.close()
    return problems


def archive_files(archive: Path) -> dict[str, str]:
    """sha256 of every file of the archive by relative path.

    Not the manifest, not `.archiver`; a sidecar stands for itself by name only, since it
    holds the time it was written (compare `comparable_sidecars`).
    """
    found = {}
    for path in archive.rglob("*"):
        relative = path.relative_to(archive)
        if path.is_file() and not relative.parts[0].startswith(ARCHIVE_NOISE):
            sidecar = path.name == "metadata.json"
            digest = "sidecar" if sidecar else hashlib.sha256(path.read_bytes()).hexdigest()
            found[relative.as_posix()] = digest
    return found


def comparable_sidecars(archive: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every sidecar without what differs between two runs of the same data (the time)."""
    docs = sidecars(archive)
    for doc in docs.values():
        doc.pop("archived_at", None)
    return docs


# -- the CLI in a process of its own ----------------------------------------------------------

CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "PYTHONUNBUFFERED": "1"}


async def spawn_cli(
    *argv: str | Path, output: Path, preexec_fn: Callable[[], None] | None = None
) -> asyncio.subprocess.Process:
    """`python -m archiver ARGV...` as a child process, its stdout and stderr into `output`."""
    with output.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "archiver",
            *(str(a) for a in argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=CHILD_ENV,
            preexec_fn=preexec_fn,
        )


async def run_child(
    *argv: str | Path,
    output: Path,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 60,
) -> CliResult:
    """`python -m archiver ARGV...` in a child process, to its end."""
    output.write_bytes(b"")
    child = await spawn_cli(*argv, output=output, preexec_fn=preexec_fn)
    code = await asyncio.wait_for(child.wait(), timeout)
    return CliResult(code, output.read_text(encoding="utf-8", errors="replace"))
