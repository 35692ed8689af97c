"""Archiving both services end to end against the stand-in."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from archiver.standin import StandIn
from tests.support import config_dict, run_cli, sidecars, task_ids, write_config


async def test_archives_every_succeeded_task_of_both_services(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0, result.output
    archive = tmp_path / "archive"
    vth = {str(r["id"]) for r in standin.dataset.succeeded_vth()}
    chanjing = {r["id"] for r in standin.dataset.succeeded_chanjing()}
    assert vth and chanjing
    assert task_ids(archive, "faceswap") == vth
    assert task_ids(archive, "chanjing") == chanjing
    # Nothing that did not succeed was archived.
    all_vth = {str(r["id"]) for r in standin.dataset.vth_tasks() if isinstance(r, dict)}
    assert len(all_vth) > len(vth)


async def test_sidecar_keeps_the_record_verbatim_and_files_match_served_bytes(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    archive = tmp_path / "archive"
    docs = sidecars(archive)
    records = {("faceswap", str(r["id"])): r for r in standin.dataset.succeeded_vth()}
    records |= {("chanjing", r["id"]): r for r in standin.dataset.succeeded_chanjing()}
    checked = 0
    for (source, kind, item_id), doc in docs.items():
        if kind != "task":
            continue
        assert doc["record"] == records[(source, item_id)]
        assert doc["type"] in ("video_task_history", "chanjing_lip_sync")
        assert doc["created_at"].endswith("Z")
        folder = next(
            p.parent
            for p in archive.rglob("metadata.json")
            if json.loads(p.read_text())["id"] == item_id
        )
        for role, entry in doc["files"].items():
            data = (folder / entry["name"]).read_bytes()
            served = standin.dataset.media_bytes(standin.dataset.media_path(entry["url"]))
            assert data == served, (item_id, role)
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
            assert entry["bytes"] == len(data)
            checked += 1
    assert checked >= 2 * len(records)
    # UTF-8 and indented all the way down, as a person reading one expects.
    for path in archive.rglob("metadata.json"):
        text = path.read_text(encoding="utf-8")
        assert text == json.dumps(json.loads(text), ensure_ascii=False, indent=2) + "\n", path


async def test_layout_is_source_year_month_id(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    archive = tmp_path / "archive"
    for (source, kind, item_id), doc in sidecars(archive).items():
        if kind == "template":
            assert (archive / source / "templates" / item_id / "metadata.json").exists()
            continue
        year, month = doc["created_at"][:4], doc["created_at"][5:7]
        folder = archive / source / year / month / item_id
        assert (folder / "metadata.json").exists(), folder
        assert (folder / "video.mp4").exists()
    assert not list(archive.rglob("*.part"))


async def test_templates_are_archived_once_each_with_versioned_names(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin, only="faceswap"))
    assert (await run_cli("run", "-c", config)).code == 0
    archive = tmp_path / "archive"
    used = {r["videoTemp"]["id"] for r in standin.dataset.succeeded_vth()}
    folders = {p.name for p in (archive / "faceswap" / "templates").iterdir()}
    assert folders == {str(t) for t in used}
    for folder in (archive / "faceswap" / "templates").iterdir():
        names = {p.name for p in folder.iterdir()}
        assert {"thumb.v1.png", "cover.v1.webp", "video.v2.mp4", "metadata.json"} <= names
    # Each template's media was fetched once, not once per task.
    template_requests = [r for r in standin.stats.media_requests if "/facewap/" in r.path]
    assert len(template_requests) == 3 * len(used)


async def test_rerun_downloads_nothing_and_exits_zero(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    assert standin.stats.media_bytes_sent > 0
    standin.stats.reset()
    second = await run_cli("run", "-c", config, "--no-progress")
    assert second.code == 0
    assert standin.stats.media_bytes_sent == 0
    assert standin.stats.media_requests == []
    assert second.output == ""  # quiet when there is nothing new (not a terminal)


async def test_a_new_task_is_archived_by_the_next_run(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    added = standin.dataset.add_vth_task()
    standin.stats.reset()
    result = await run_cli("run", "-c", config, "--no-progress")
    assert result.code == 0
    assert str(added["id"]) in task_ids(tmp_path / "archive", "faceswap")
    assert "1 new tasks" in result.output
    fetched = {r.path for r in standin.stats.media_requests}
    assert len(fetched) == 2  # its video and cover, nothing else


async def test_a_deleted_file_is_fetched_again(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin, only="chanjing"))
    assert (await run_cli("run", "-c", config)).code == 0
    video = next((tmp_path / "archive" / "chanjing").rglob("video.mp4"))
    original = video.read_bytes()
    video.unlink()
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert video.read_bytes() == original
    assert len(standin.stats.media_requests) == 1


async def test_manifest_records_files_with_sizes_and_hashes(
    standin: StandIn, tmp_path: Path
) -> None:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    archive = tmp_path / "archive"
    db = sqlite3.connect(archive / "manifest.sqlite3")
    states = dict(db.execute("SELECT state, count(*) FROM items GROUP BY state").fetchall())
    assert set(states) == {"archived"}
    for path, size, digest in db.execute("SELECT path, bytes, sha256 FROM files"):
        data = (archive / path).read_bytes()
        assert len(data) == size
        assert hashlib.sha256(data).hexdigest() == digest
    runs = db.execute("SELECT exit_status FROM runs").fetchall()
    assert runs == [(0,)]
