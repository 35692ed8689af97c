"""A local archive whose manifest is lost is rebuilt from its sidecars: nothing fetched again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from archiver.standin import StandIn
from archiver.store.manifest import ManifestStore
from archiver.store.rebuild import Sidecar, parse_sidecar
from archiver.store.rebuildfs import UNFINISHED
from tests.support import assert_archive_exact, config_dict, run_cli, write_config

REBUILT = "no manifest; rebuilt it from"


async def archived(standin: StandIn, tmp_path: Path) -> tuple[Path, Path]:
    config = write_config(tmp_path, config_dict(standin))
    first = await run_cli("run", "-c", config, "--no-progress")
    assert first.code == 0, first.output
    return config, tmp_path / "archive"


def lose_manifest(archive: Path) -> None:
    for end in ("", "-wal", "-shm"):
        (archive / f"manifest.sqlite3{end}").unlink(missing_ok=True)


def task_folders(archive: Path, source: str) -> list[Path]:
    return sorted(p.parent for p in (archive / source).glob("[0-9]*/*/*/metadata.json"))


def last_report(archive: Path) -> dict[str, Any]:
    newest = sorted((archive / ".archiver" / "runs").glob("*.json"))[-1]
    document: dict[str, Any] = json.loads(newest.read_text(encoding="utf-8"))
    return document


def manifest_rows(archive: Path, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(archive / "manifest.sqlite3")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


async def test_a_lost_manifest_is_rebuilt_and_no_media_is_fetched_again(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    sidecar_count = len(list(archive.rglob("metadata.json")))
    lose_manifest(archive)
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert standin.stats.media_bytes_sent == 0
    assert standin.stats.media_requests == []
    line = f"{REBUILT} {sidecar_count} sidecars (0 items whose files did not check out"
    assert line in again.output
    assert any(line in warning for warning in last_report(archive)["warnings"])
    assert_archive_exact(archive, standin)
    verify = await run_cli("verify", "-c", config)
    assert verify.code == 0, verify.output


async def test_a_run_with_its_manifest_does_not_rebuild(standin: StandIn, tmp_path: Path) -> None:
    config, archive = await archived(standin, tmp_path)
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert REBUILT not in again.output
    commands = manifest_rows(archive, "SELECT command FROM runs")
    assert commands == [("run",), ("run",)]  # no rebuild, not even for the new archive


async def test_a_damaged_file_is_not_adopted_and_is_fetched_again(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    video = task_folders(archive, "faceswap")[0] / "video.mp4"
    good = video.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF  # same size: only the hash tells
    video.write_bytes(bytes(damaged))
    lose_manifest(archive)
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert "(1 item whose files did not check out fetched again)" in again.output
    assert video.read_bytes() == good
    # The video again, whole; its cover, still whole, is only confirmed (its last byte).
    assert len(good) <= standin.stats.media_bytes_sent <= len(good) + 8
    kept = list((archive / ".archiver" / "quarantine").rglob("video.mp4"))
    assert [p.read_bytes() for p in kept] == [bytes(damaged)]
    assert_archive_exact(archive, standin)
    verify = await run_cli("verify", "-c", config)
    assert verify.code == 0, verify.output


async def test_a_broken_sidecar_is_skipped_and_its_item_archived_again(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    truncated, malformed, empty = task_folders(archive, "chanjing")[:3]
    sidecar = truncated / "metadata.json"
    sidecar.write_bytes(sidecar.read_bytes()[:100])
    (malformed / "metadata.json").write_text('{"files": [1, 2', encoding="utf-8")
    (empty / "metadata.json").write_bytes(b"")
    lose_manifest(archive)
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert again.output.count("skipped the sidecar") == 3
    assert "not valid JSON" in again.output
    assert "3 unusable sidecars skipped)" in again.output
    assert_archive_exact(archive, standin)  # the three sidecars written anew
    verify = await run_cli("verify", "-c", config)
    assert verify.code == 0, verify.output


async def test_a_sidecar_that_leads_out_of_the_archive_is_refused(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not the archive's")
    first, second, third = task_folders(archive, "faceswap")[:3]
    # A name up and out, and one into another item's folder, with that file's true size and
    # sha256: each would record a path that is not the item's.
    up = json.loads((first / "metadata.json").read_text(encoding="utf-8"))
    up["files"]["video"].update(name="../../../../../outside.bin", bytes=17)
    (first / "metadata.json").write_text(json.dumps(up), encoding="utf-8")
    across = json.loads((second / "metadata.json").read_text(encoding="utf-8"))
    theirs = json.loads((third / "metadata.json").read_text(encoding="utf-8"))["files"]["video"]
    across["files"]["video"] = {**theirs, "name": f"../{third.name}/video.mp4"}
    (second / "metadata.json").write_text(json.dumps(across), encoding="utf-8")
    lose_manifest(archive)
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert again.output.count("a file name that leads out of its folder") == 2
    paths = [path for (path,) in manifest_rows(archive, "SELECT path FROM files")]
    assert not [p for p in paths if ".." in p]
    assert outside.read_bytes() == b"not the archive's"
    assert_archive_exact(archive, standin)
    verify = await run_cli("verify", "-c", config)
    assert verify.code == 0, verify.output


async def test_earlier_versions_of_a_template_are_kept_as_such(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    template_id = standin.dataset.succeeded_vth()[0]["videoTemp"]["id"]
    standin.dataset.set_template_version(template_id, "video", 3)
    assert (await run_cli("run", "-c", config, "--no-progress")).code == 0
    lose_manifest(archive)
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert standin.stats.media_bytes_sent == 0
    query = f"SELECT name, current FROM files WHERE item_id = '{template_id}' AND role = 'video'"
    assert sorted(manifest_rows(archive, query)) == [("video.v2.mp4", 0), ("video.v3.mp4", 1)]
    verify = await run_cli("verify", "-c", config)
    assert verify.code == 0, verify.output


def sidecar_of(folder: str, files: dict[str, Any], **fields: Any) -> bytes:
    document = {"source": "faceswap", "kind": "task", "id": "7", "files": files, **fields}
    return json.dumps(document).encode()


ENTRY = {"name": "video.mp4", "bytes": 3, "sha256": "ab" * 32, "url": "https://x/v.mp4"}


def test_parse_sidecar_refuses_what_it_cannot_use() -> None:
    folder = "faceswap/2025/09/7"
    parsed = parse_sidecar(folder, sidecar_of(folder, {"video": ENTRY}))
    assert isinstance(parsed, Sidecar)
    assert [f.path for f in parsed.files] == [f"{folder}/video.mp4"]
    assert parse_sidecar(folder, None) == "unreadable"
    assert parse_sidecar(folder, b'{"source": "faceswap", "fi') == "not valid JSON"
    assert parse_sidecar(folder, b"[]") == "no files section"
    refused = {
        "..": {**ENTRY, "name": ".."},
        "sub/x": {**ENTRY, "name": "sub/x"},
        ".hidden": {**ENTRY, "name": ".video.mp4.0123456789ab.tmp"},
        "sidecar": {**ENTRY, "name": "metadata.json"},
        "size": {**ENTRY, "bytes": -1},
        "bool size": {**ENTRY, "bytes": True},
        "sha256": {**ENTRY, "sha256": "ab"},
    }
    for why, entry in refused.items():
        assert isinstance(parse_sidecar(folder, sidecar_of(folder, {"video": entry})), str), why
    # A sidecar in another source's folder is not taken for that source's item.
    elsewhere = parse_sidecar("chanjing/2025/09/7", sidecar_of(folder, {"video": ENTRY}))
    assert isinstance(elsewhere, str)


async def test_a_rebuild_cut_short_goes_on_at_the_next_run(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    lose_manifest(archive)
    # What a rebuild killed just after it began leaves: a manifest that lists nothing yet.
    manifest = ManifestStore.open(archive / "manifest.sqlite3")
    manifest.set_note(UNFINISHED, "1")
    manifest.begin_run("rebuild")
    manifest.close()
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert "the manifest's rebuild was cut short; ended it from" in again.output
    assert standin.stats.media_bytes_sent == 0
    assert_archive_exact(archive, standin)


async def test_the_journals_of_a_lost_manifest_are_not_read_into_the_new_one(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    path = archive / "manifest.sqlite3"
    # A write-ahead log with frames of the lost manifest, as a killed run leaves it.
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_autocheckpoint = 0")
    with db:
        db.execute("UPDATE items SET state = 'failed'")
    wal = (archive / "manifest.sqlite3-wal").read_bytes()
    db.close()
    lose_manifest(archive)
    (archive / "manifest.sqlite3-wal").write_bytes(wal)
    standin.stats.reset()
    again = await run_cli("run", "-c", config, "--no-progress")
    assert again.code == 0, again.output
    assert REBUILT in again.output
    assert standin.stats.media_bytes_sent == 0
    assert_archive_exact(archive, standin)
