"""The command line itself: help for every command, the lock, `python -m archiver`, demo."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archiver.cli import main
from archiver.standin import StandIn
from archiver.store.lock import ArchiveLock
from tests.support import config_dict, run_cli, write_config


def _help(monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    """What `archiver ARGV... --help` prints, on a terminal wide enough for one line each."""
    monkeypatch.setenv("COLUMNS", "300")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--help"]) == 0
    return out.getvalue()


def _entries(text: str) -> dict[str, str]:
    """The options and arguments of a help text, each with the help said for it ('' if none)."""
    entries: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("  ") and not line.startswith("   "):  # an option or argument
            name, _, said = line.strip().partition("  ")
            entries[name] = said.strip()
        elif name and line.startswith("   ") and line.strip():  # its help, on the next line
            entries[name] = entries[name] or line.strip()
        elif not line.strip():
            name = ""
    return entries


def test_every_command_has_help_text(monkeypatch: pytest.MonkeyPatch) -> None:
    top = _help(monkeypatch)
    listing = top.split("COMMAND\n", 1)[1].split("\n\n", 1)[0]
    commands = dict(line.split(None, 1) for line in listing.splitlines())
    assert {"run", "verify", "status", "index", "demo"} <= set(commands)
    for name, said in commands.items():
        assert said.strip(), f"{name} has no help"
        text = _help(monkeypatch, name)
        description = text.split("\n\n")[1]
        assert description.strip() and not description.startswith("options:"), name
        for option, help_text in _entries(text).items():
            assert help_text, f"{name} {option} has no help"


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "archiver", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("run", "demo"):
        assert command in result.stdout


async def test_usage_errors_exit_2() -> None:
    assert (await run_cli("frobnicate")).code == 2
    assert (await run_cli("run", "--no-such-flag")).code == 2


async def test_a_second_concurrent_run_exits_4(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    archive = tmp_path / "archive"
    archive.mkdir()
    with ArchiveLock(archive):  # another run holds the archive
        result = await run_cli("run", "-c", config)
    assert result.code == 4
    assert "another archiver run holds" in result.output
    assert standin.stats.requests == []
    # Once released, a run goes ahead.
    assert (await run_cli("run", "-c", config)).code == 0


def test_the_lock_is_held_across_processes(tmp_path: Path) -> None:
    with ArchiveLock(tmp_path):
        code = (
            "import sys; from pathlib import Path; from archiver.store.lock import ArchiveLock\n"
            "from archiver.errors import ArchiveBusy\n"
            "try:\n    ArchiveLock(Path(sys.argv[1])).__enter__()\n"
            "except ArchiveBusy:\n    sys.exit(4)\n"
        )
        busy = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert busy.returncode == 4


async def test_dry_run_downloads_and_writes_nothing(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("run", "-c", config, "--dry-run", "-v")
    assert result.code == 0
    assert "would archive" in result.output
    assert standin.stats.media_bytes_sent == 0
    assert not (tmp_path / "archive").exists()


async def test_demo_archives_and_a_second_demo_finds_nothing_new(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    first = await run_cli("demo", target, "--tasks", "40")
    assert first.code == 0, first.output
    reports = sorted((target / ".archiver" / "runs").glob("*.json"))
    report = json.loads(reports[-1].read_text())
    assert report["totals"]["newly_archived"] > 40
    assert report["totals"]["failed"] == 0
    second = await run_cli("demo", target, "--tasks", "40")
    assert second.code == 0
    report = json.loads(sorted((target / ".archiver" / "runs").glob("*.json"))[-1].read_text())
    assert report["totals"]["newly_archived"] == 0
    assert report["totals"]["bytes"] == 0


@pytest.mark.parametrize("command", ["status", "verify", "index"])
async def test_reading_an_archive_that_does_not_exist_exits_2(
    standin: StandIn, tmp_path: Path, command: str
) -> None:
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli(command, "-c", config)
    assert result.code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert f"{tmp_path / 'archive'}: no archive here" in lines[0]
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("file/archive", "not a folder: {tmp}/file"),
        ("file", "not a folder: {tmp}/file"),
        ("/proc/archiver-test/archive", "cannot create /proc/archiver-test/archive: /proc takes"),
    ],
    ids=["under-a-file", "a-file", "under-proc"],
)
async def test_an_archive_dir_that_cannot_be_made_is_a_config_error(
    standin: StandIn, tmp_path: Path, where: str, reason: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    config = write_config(tmp_path, config_dict(standin, archive_dir=where))
    result = await run_cli("run", "-c", config)
    assert result.code == 2, result.output
    assert reason.format(tmp=tmp_path) in result.output
    assert f"{config}: archive_dir" in result.output
    assert len(result.output.splitlines()) == 1
    assert standin.stats.requests == []


async def test_verbose_output_shows_what_caused_an_error(standin: StandIn, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    config = write_config(tmp_path, config_dict(standin, archive_dir="file"))
    quiet = await run_cli("run", "-c", config)
    verbose = await run_cli("run", "-v", "-c", config)
    assert quiet.code == verbose.code == 2
    assert "FileExistsError" not in quiet.output
    assert "FileExistsError" in verbose.output
    assert "direct cause of the following exception" in verbose.output
    assert "not a folder" in verbose.output


async def test_an_archive_dir_without_permission_is_a_config_error(
    standin: StandIn, tmp_path: Path
) -> None:
    # Root may write anywhere on disk; /sys refuses even root a new folder, with EACCES.
    config = write_config(tmp_path, config_dict(standin, archive_dir="/sys/archiver-test"))
    result = await run_cli("run", "-c", config)
    assert result.code == 2, result.output
    assert "archive_dir: permission denied: /sys/archiver-test" in result.output


async def test_the_demo_says_what_to_try_next_and_its_config_is_not_run(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    demo = await run_cli("demo", target, "--tasks", "5")
    assert demo.code == 0, demo.output
    config = target / ".archiver" / "demo-config.yaml"
    assert f"  archiver status -c {config}" in demo.output
    assert f"  archiver verify -c {config}" in demo.output
    status = await run_cli("status", "-c", config)
    assert status.code == 0 and "recent runs:" in status.output
    verify = await run_cli("verify", "-c", config, "-v")
    assert verify.code == 0 and "all good" in verify.output
    before = sorted((target / ".archiver" / "runs").iterdir())
    started = time.monotonic()
    run = await run_cli("run", "-c", config)
    assert run.code == 2
    assert time.monotonic() - started < 5
    assert len(run.output.splitlines()) == 1
    assert "run only inside `archiver demo`" in run.output
    assert sorted((target / ".archiver" / "runs").iterdir()) == before
    db = sqlite3.connect(target / "manifest.sqlite3")
    try:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    finally:
        db.close()
