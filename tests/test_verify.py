"""`archiver verify` finds every kind of damage, and the next run repairs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from archiver.commands import verify
from archiver.standin import StandIn
from archiver.store import hashing
from archiver.store.manifest import MANIFEST, ManifestStore
from tests.support import config_dict, run_cli, write_config


async def archived(standin: StandIn, tmp_path: Path) -> tuple[Path, Path]:
    config = write_config(tmp_path, config_dict(standin))
    assert (await run_cli("run", "-c", config)).code == 0
    return config, tmp_path / "archive"


def task_folders(archive: Path, source: str) -> list[Path]:
    return sorted(p.parent for p in (archive / source).glob("[0-9]*/*/*/metadata.json"))


async def test_a_clean_archive_verifies(standin: StandIn, tmp_path: Path) -> None:
    config, _ = await archived(standin, tmp_path)
    result = await run_cli("verify", "-c", config, "-v")
    assert result.code == 0, result.output
    assert "all good" in result.output


async def test_verify_finds_each_damage_and_the_next_run_repairs_it(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    flipped, truncated, deleted, broken = task_folders(archive, "faceswap")[:4]
    video = flipped / "video.mp4"
    data = bytearray(video.read_bytes())
    data[len(data) // 2] ^= 0xFF
    video.write_bytes(bytes(data))
    cover = truncated / "cover.jpg"
    cover.write_bytes(cover.read_bytes()[:-10])
    (deleted / "video.mp4").unlink()
    (broken / "metadata.json").write_text("{ not json")

    result = await run_cli("verify", "-c", config)
    assert result.code == 1
    names = {folder.name for folder in (flipped, truncated, deleted, broken)}
    named = {
        line.split()[2].rstrip(":")
        for line in result.output.splitlines()
        if line.startswith("faceswap task")
    }
    assert named == names
    assert "content changed" in result.output
    assert "missing" in result.output
    assert "not valid JSON" in result.output

    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert len(standin.stats.media_requests) == 3  # the three damaged files, nothing else
    again = await run_cli("verify", "-c", config)
    assert again.code == 0, again.output
    assert json.loads((broken / "metadata.json").read_text())["id"] == broken.name
    assert not (flipped / "video.mp4.corrupt").exists()
    kept = list((archive / ".archiver" / "quarantine").glob("*/faceswap/*/*/*/video.mp4"))
    assert [p.parent.name for p in kept] == [flipped.name]  # the damaged bytes, kept aside


@pytest.mark.parametrize("read_size", [hashing.READ_BLOCK, 97], ids=["one-block", "many-blocks"])
async def test_every_byte_counts_inline_and_in_worker_threads(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_size: int
) -> None:
    _, archive = await archived(standin, tmp_path)
    first, middle, last, grown, shrunk = task_folders(archive, "faceswap")[:5]
    expected = {}
    for folder, at in ((first, 0), (middle, None), (last, -1)):
        video = folder / "video.mp4"
        data = bytearray(video.read_bytes())
        assert len(data) > 3 * 97  # with 97-byte reads: first, middle and last block
        data[len(data) // 2 if at is None else at] ^= 0x01
        video.write_bytes(bytes(data))
        expected[folder.name] = "video.mp4: content changed (sha256 differs)"
    for folder, change in ((grown, 1), (shrunk, -1)):
        video = folder / "video.mp4"
        content = video.read_bytes()
        video.write_bytes(content + b"\0" if change > 0 else content[:-1])
        expected[folder.name] = f"video.mp4: size {len(content) + change}, expected {len(content)}"

    monkeypatch.setattr(hashing, "READ_BLOCK", read_size)
    monkeypatch.setattr(verify, "SIDECAR_READ", min(read_size, verify.SIDECAR_READ))
    manifest = ManifestStore.open(archive / MANIFEST, readonly=True)
    try:
        inline = verify.verify_archive(manifest, archive, workers=1)
        monkeypatch.setattr(verify, "POOL_BYTES", 1)  # every item a unit of work of its own
        pooled = verify.verify_archive(manifest, archive, workers=3)
    finally:
        manifest.close()
    assert {p.item_id: p.what for p in inline.problems} == expected
    assert pooled == inline  # the same problems, in the same order, and the same totals
    assert inline.files > 2 * len(task_folders(archive, "faceswap"))


async def test_quick_checks_sizes_only(standin: StandIn, tmp_path: Path) -> None:
    config, archive = await archived(standin, tmp_path)
    flipped, truncated = task_folders(archive, "chanjing")[:2]
    video = flipped / "video.mp4"
    data = bytearray(video.read_bytes())
    data[0] ^= 0xFF
    video.write_bytes(bytes(data))
    (truncated / "video.mp4").write_bytes(b"short")
    result = await run_cli("verify", "-c", config, "--quick")
    assert result.code == 1
    assert truncated.name in result.output
    assert flipped.name not in result.output


async def test_verify_one_source(standin: StandIn, tmp_path: Path) -> None:
    config, archive = await archived(standin, tmp_path)
    (task_folders(archive, "chanjing")[0] / "video.mp4").unlink()
    assert (await run_cli("verify", "-c", config, "--source", "faceswap")).code == 0
    assert (await run_cli("verify", "-c", config, "--source", "chanjing")).code == 1


async def test_sha256sums_check_with_standard_tools(standin: StandIn, tmp_path: Path) -> None:
    _, archive = await archived(standin, tmp_path)
    for source in ("faceswap", "chanjing"):
        sums = archive / source / "SHA256SUMS"
        lines = sums.read_text().splitlines()
        assert len(lines) >= 2 * len(task_folders(archive, source))
        ok = subprocess.run(
            ["sha256sum", "-c", "--quiet", str(sums.relative_to(archive))],
            cwd=archive,
            capture_output=True,
            check=False,
        )
        assert ok.returncode == 0, ok.stdout
    video = task_folders(archive, "faceswap")[0] / "video.mp4"
    data = bytearray(video.read_bytes())
    data[-1] ^= 0x01
    video.write_bytes(bytes(data))
    bad = subprocess.run(
        ["sha256sum", "-c", "--quiet", "faceswap/SHA256SUMS"],
        cwd=archive,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "video.mp4: FAILED" in bad.stdout


async def test_a_stale_sha256sums_is_brought_back_in_line(standin: StandIn, tmp_path: Path) -> None:
    config, archive = await archived(standin, tmp_path)
    sums = archive / "chanjing" / "SHA256SUMS"
    whole = sums.read_text()
    sums.write_text("".join(whole.splitlines(keepends=True)[1:]))  # as if a run died mid-way
    standin.stats.reset()
    assert (await run_cli("run", "-c", config)).code == 0
    assert standin.stats.media_bytes_sent == 0
    assert sums.read_text() == whole


async def test_damaged_bytes_go_to_the_quarantine_and_the_next_run_repairs(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    folder = task_folders(archive, "chanjing")[2]
    video = folder / "video.mp4"
    good = video.read_bytes()
    damaged = bytes([good[0] ^ 0xFF]) + good[1:]
    video.write_bytes(damaged)
    before = sorted(p.name for p in folder.iterdir())

    result = await run_cli("verify", "-c", config)
    assert result.code == 1, result.output
    relative = video.relative_to(archive).as_posix()
    kept = list((archive / ".archiver" / "quarantine").glob(f"*/{relative}"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    stamp = kept[0].relative_to(archive / ".archiver" / "quarantine").parts[0]
    assert len(stamp) == len("20261130T171500.123456Z") and stamp.endswith("Z")
    assert sorted(p.name for p in folder.iterdir()) == [n for n in before if n != "video.mp4"]

    assert (await run_cli("run", "-c", config)).code == 0
    assert video.read_bytes() == good
    again = await run_cli("verify", "-c", config)
    assert again.code == 0, again.output
    assert kept[0].read_bytes() == damaged  # kept, never deleted


async def test_files_the_manifest_does_not_know_are_named_and_left(
    standin: StandIn, tmp_path: Path
) -> None:
    config, archive = await archived(standin, tmp_path)
    folder = task_folders(archive, "faceswap")[0]
    stray = folder / "notes.txt"
    stray.write_text("mine")
    loose = archive / "faceswap" / "loose.bin"
    loose.write_bytes(b"\0" * 10)
    link = archive / "chanjing" / "elsewhere.mp4"
    link.symlink_to(tmp_path / "config.yaml")
    (folder / "video.part").write_bytes(b"half")  # the next run's resume state
    (folder / "video.part.json").write_text("{}")
    (archive / "index.html").write_text("catalog")  # the archive's own files are no strays
    (archive / ".archiver" / "anything").write_text("the archive's own")

    result = await run_cli("verify", "-c", config, "-v")
    assert result.code == 1, result.output
    named = sorted(
        line.split(": ", 1)[0] for line in result.output.splitlines() if "(a stray file" in line
    )
    root = archive.as_posix() + "/"
    assert named == sorted(p.as_posix().removeprefix(root) for p in (stray, loose, link))
    assert "2 files in progress" in result.output
    assert stray.read_text() == "mine" and loose.exists() and link.is_symlink()
    assert "faceswap task" not in result.output  # the archived items themselves are whole

    only = await run_cli("verify", "-c", config, "--source", "chanjing")
    assert only.code == 1
    assert "elsewhere.mp4" in only.output and "notes.txt" not in only.output
    for path in (stray, loose, link):
        path.unlink()
    assert (await run_cli("verify", "-c", config)).code == 0
