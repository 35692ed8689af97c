"""A symbolic link planted inside the archive never makes a run write outside it.

Each test plants a real link at a place where a run writes, pointing at a real file or folder
outside the archive, runs the real CLI, and checks that the outside target kept its bytes and
its mtime, and that the error line names the link. A link at `archive_dir` itself is the
user's choice and is followed.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from archiver.sources.records import ArchiveItem
from archiver.sources.video_task_history import parse_task
from archiver.standin import StandIn
from archiver.store.paths import item_folder
from tests.support import config_dict, manifest_problems, run_cli, task_ids, write_config

LAYOUT = "{year}/{month}/{id}"


class Outside:
    """A file and a folder outside the archive, and what they were before the run."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "outside"
        self.folder.mkdir()
        self.file = self.folder / "victim.txt"
        self.file.write_bytes(b"precious bytes that must stay as they are\n")
        past = 1_600_000_000_000_000_000
        os.utime(self.file, ns=(past, past))
        self.before = self.state()

    def state(self) -> tuple[bytes, int, list[str]]:
        return (
            self.file.read_bytes(),
            self.file.stat().st_mtime_ns,
            sorted(p.name for p in self.folder.iterdir()),
        )

    def untouched(self) -> bool:
        return self.state() == self.before


def vth_folder(archive: Path, record: dict[str, object]) -> Path:
    """Where a correct run puts this face-swap task record."""
    item = parse_task(record)
    assert isinstance(item, ArchiveItem)
    return archive / str(item_folder("faceswap", item, LAYOUT))


def last_run(archive: Path) -> tuple[int | None, str | None]:
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        row = db.execute("SELECT exit_status, finished_at FROM runs ORDER BY id DESC").fetchone()
    finally:
        db.close()
    return row[0], row[1]


def reports(archive: Path) -> list[dict[str, object]]:
    runs = archive / ".archiver" / "runs"
    return [json.loads(p.read_text()) for p in sorted(runs.glob("*.json"))]


async def test_a_link_at_a_task_folder_fails_that_task_only(
    standin: StandIn, tmp_path: Path
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin))
    archive = tmp_path / "archive"
    record = standin.dataset.succeeded_vth()[3]
    link = vth_folder(archive, record)
    link.parent.mkdir(parents=True)
    link.symlink_to(outside.folder, target_is_directory=True)

    result = await run_cli("run", "-c", config)
    assert result.code == 1, result.output
    assert f"{link}: a symbolic link inside the archive; not followed" in result.output
    assert outside.untouched()
    assert link.is_symlink()
    others = {str(r["id"]) for r in standin.dataset.succeeded_vth()} - {str(record["id"])}
    assert task_ids(archive, "faceswap") == others
    assert manifest_problems(archive) == []
    assert last_run(archive)[0] == 1
    assert reports(archive)[-1]["exit_status"] == 1


async def test_a_link_at_a_source_folder_fails_that_source_and_its_checksums(
    standin: StandIn, tmp_path: Path
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin))
    archive = tmp_path / "archive"
    archive.mkdir()
    link = archive / "faceswap"
    link.symlink_to(outside.folder, target_is_directory=True)

    result = await run_cli("run", "-c", config)
    assert result.code == 1, result.output
    assert f"{link}: a symbolic link inside the archive; not followed" in result.output
    assert outside.untouched()
    assert task_ids(archive, "chanjing") == {r["id"] for r in standin.dataset.succeeded_chanjing()}
    assert (archive / "chanjing" / "SHA256SUMS").is_file()
    assert last_run(archive)[0] == 1
    assert reports(archive)[-1]["exit_status"] == 1


async def test_a_link_at_the_templates_folder_fails_the_templates_only(
    standin: StandIn, tmp_path: Path
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    (archive / "faceswap").mkdir(parents=True)
    link = archive / "faceswap" / "templates"
    link.symlink_to(outside.folder, target_is_directory=True)

    result = await run_cli("run", "-c", config)
    assert result.code == 1, result.output
    assert f"{link}: a symbolic link inside the archive; not followed" in result.output
    assert outside.untouched()
    assert task_ids(archive, "faceswap") == {str(r["id"]) for r in standin.dataset.succeeded_vth()}


@pytest.mark.parametrize("name", ["metadata.json.tmp", "SHA256SUMS.tmp"])
async def test_links_at_the_old_temporary_names_are_never_written_through(
    standin: StandIn, tmp_path: Path, name: str
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    record = standin.dataset.succeeded_vth()[0]
    folder = vth_folder(archive, record) if name.startswith("metadata") else archive / "faceswap"
    folder.mkdir(parents=True)
    (folder / name).symlink_to(outside.file)

    result = await run_cli("run", "-c", config)
    assert result.code == 0, result.output
    assert outside.untouched()
    assert (folder / name).is_symlink()
    assert (folder / name.removesuffix(".tmp")).is_file()
    assert not (folder / name.removesuffix(".tmp")).is_symlink()
    assert manifest_problems(archive) == []


@pytest.mark.parametrize("name", ["SHA256SUMS", "index.html", "index-data.js", "index-first.js"])
async def test_a_link_at_a_file_the_run_replaces_is_replaced_not_followed(
    standin: StandIn, tmp_path: Path, name: str
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin, only="faceswap", catalog=True))
    archive = tmp_path / "archive"
    folder = archive / "faceswap" if name == "SHA256SUMS" else archive
    folder.mkdir(parents=True)
    (folder / name).symlink_to(outside.file)

    result = await run_cli("run", "-c", config)
    assert result.code == 0, result.output
    assert outside.untouched()
    assert (folder / name).is_file() and not (folder / name).is_symlink()


@pytest.mark.parametrize(
    "where", [".archiver", ".archiver/lock", "manifest.sqlite3", "manifest.sqlite3-wal"]
)
async def test_a_link_at_the_lock_or_the_manifest_stops_the_run_before_anything(
    standin: StandIn, tmp_path: Path, where: str
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin))
    archive = tmp_path / "archive"
    link = archive / where
    link.parent.mkdir(parents=True, exist_ok=True)
    target = outside.folder if where == ".archiver" else outside.file
    link.symlink_to(target)

    standin.stats.reset()
    result = await run_cli("run", "-c", config)
    assert result.code == 2, result.output
    assert f"{link}: a symbolic link inside the archive; not followed" in result.output
    assert "Traceback" not in result.output
    assert outside.untouched()
    assert standin.stats.media_requests == []


async def test_a_link_at_the_reports_folder_costs_the_report_only(
    standin: StandIn, tmp_path: Path
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin))
    archive = tmp_path / "archive"
    (archive / ".archiver").mkdir(parents=True)
    link = archive / ".archiver" / "runs"
    link.symlink_to(outside.folder, target_is_directory=True)

    result = await run_cli("run", "-c", config)
    assert result.code == 1, result.output
    errors = [line for line in result.output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.output
    assert errors[0].endswith(
        f"cannot write the run report: {link}: a symbolic link inside the archive; not followed"
    )
    assert outside.untouched()
    assert task_ids(archive, "faceswap") == {str(r["id"]) for r in standin.dataset.succeeded_vth()}
    assert manifest_problems(archive) == []
    status, finished = last_run(archive)
    assert status == 1 and finished is not None


async def test_a_link_at_archive_dir_itself_is_followed(standin: StandIn, tmp_path: Path) -> None:
    real = tmp_path / "real-archive"
    real.mkdir()
    (tmp_path / "archive").symlink_to(real, target_is_directory=True)
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    result = await run_cli("run", "-c", config)
    assert result.code == 0, result.output
    assert task_ids(real, "chanjing") == {r["id"] for r in standin.dataset.succeeded_chanjing()}
    assert (await run_cli("verify", "-c", config)).code == 0


async def test_a_forged_part_link_is_never_written_through(
    standin: StandIn, tmp_path: Path
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    archive = tmp_path / "archive"
    record = standin.dataset.succeeded_vth()[0]
    folder = vth_folder(archive, record)
    folder.mkdir(parents=True)
    (folder / "video.part").symlink_to(outside.file)
    media = standin.dataset.media_file(standin.dataset.media_path(str(record["origin"])))
    assert media is not None
    (folder / "video.part.json").write_text(json.dumps({"validator": media.etag}))

    result = await run_cli("run", "-c", config)
    assert result.code == 1, result.output
    link = folder / "video.part"
    assert f"{link}: a symbolic link inside the archive; not followed" in result.output
    assert outside.untouched()
    assert link.is_symlink()


async def test_a_link_at_the_quarantine_keeps_the_damage_where_it_is(
    standin: StandIn, tmp_path: Path
) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    archive = tmp_path / "archive"
    assert (await run_cli("run", "-c", config)).code == 0
    link = archive / ".archiver" / "quarantine"
    link.symlink_to(outside.folder, target_is_directory=True)
    video = next(archive.glob("chanjing/*/*/*/video.mp4"))
    good = video.read_bytes()
    damaged = bytes([good[0] ^ 0xFF]) + good[1:]
    video.write_bytes(damaged)

    for _ in range(2):  # not moved, so not sent back: the next verify finds it again
        result = await run_cli("verify", "-c", config)
        assert result.code == 1, result.output
        assert f"{link}: a symbolic link inside the archive; not followed" in result.output
        assert outside.untouched()
        assert video.read_bytes() == damaged
    assert (await run_cli("run", "-c", config)).code == 0
    assert video.read_bytes() == damaged  # never taken for a finished download, never replaced


async def test_a_hard_link_at_the_lock_is_refused(standin: StandIn, tmp_path: Path) -> None:
    # The lock is the one file a run changes in place: a hard link would let it reach outside.
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin))
    lock = tmp_path / "archive" / ".archiver" / "lock"
    lock.parent.mkdir(parents=True)
    os.link(outside.file, lock)
    result = await run_cli("run", "-c", config)
    assert result.code == 2, result.output
    assert f"{lock}: not a plain file of its own; not used" in result.output
    assert outside.untouched()


async def test_a_link_at_the_log_file_is_not_followed(standin: StandIn, tmp_path: Path) -> None:
    outside = Outside(tmp_path)
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    log = tmp_path / "archive" / ".archiver" / "archiver.log"
    log.parent.mkdir(parents=True)
    log.symlink_to(outside.file)

    result = await run_cli("run", "-c", config, "--log-file", log)
    assert result.code == 2, result.output
    assert result.output.strip() == (
        f"error: cannot open the log file {log}: a symbolic link; not followed"
    )
    assert outside.untouched()
    assert standin.stats.media_requests == []
