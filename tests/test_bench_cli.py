"""`python -m bench`'s command line, up to where it needs its tools (nginx, curl, aria2c)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_a_workdir_that_does_not_exist_yet_is_created(tmp_path: Path) -> None:
    workdir = tmp_path / "new" / "bench"
    no_tools = tmp_path / "empty-path"
    no_tools.mkdir()
    # With no tool on the PATH the bench stops at its first step, saying what to install.
    env = {**os.environ, "PATH": str(no_tools), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--workdir", str(workdir), "--quick", "--no-doc"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    assert "bench: missing:" in result.stderr
    assert workdir.is_dir()
    assert list(workdir.iterdir()) == []  # its temporary work folder is gone again


def test_tmpfs_and_workdir_exclude_each_other(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--tmpfs", "--workdir", str(tmp_path), "--no-doc"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--tmpfs and --workdir exclude each other" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_tmpfs_figures_go_beside_the_disk_figures(tmp_path: Path) -> None:
    from bench.report import write_doc

    doc = tmp_path / "benchmarks.md"
    write_doc(doc, ["on disk"])
    write_doc(doc, ["in memory"], tmpfs=True)
    write_doc(doc, ["on disk again"])
    text = doc.read_text(encoding="utf-8")
    assert "on disk again" in text and "in memory" in text
    assert "on disk\n" not in text
    assert text.index("on disk again") < text.index("in memory")


def test_a_pool_in_listing_order_ends_with_its_busiest_slot() -> None:
    from bench.scenarios import _makespan

    assert _makespan([4, 1, 1, 1, 1], 2) == 4
    assert _makespan([1, 1, 4], 2) == 5  # the long job comes last and starts at 1
    assert _makespan([], 3) == 0


def test_the_s3_figures_go_to_their_own_section(tmp_path: Path) -> None:
    from bench.report import write_doc

    doc = tmp_path / "benchmarks.md"
    write_doc(doc, ["all cases"])
    write_doc(doc, ["s3 alone"], opt_in=True)
    write_doc(doc, ["s3 on tmpfs"], tmpfs=True, opt_in=True)
    write_doc(doc, ["s3 again"], opt_in=True)
    text = doc.read_text(encoding="utf-8")
    assert "all cases" in text and "s3 again" in text and "s3 on tmpfs" in text
    assert "s3 alone" not in text


def _nginx() -> str | None:
    from bench.env import _sbin

    return shutil.which("nginx") or _sbin("nginx")


def _path_without_aws() -> str:
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if not (Path(f) / "aws").exists())


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A new folder nginx's workers can read (another user): pytest's own is for root only."""
    folder = Path(tempfile.mkdtemp(prefix="archiver-bench-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(_nginx() is None, reason="needs nginx (apt-get install nginx)")
@pytest.mark.parametrize("peer", ["aws s3 cp", "s3transfer"])
def test_the_s3_case_runs_end_to_end_on_a_tiny_input(
    readable_dir: Path, monkeypatch: pytest.MonkeyPatch, peer: str
) -> None:
    from bench.cases import MIB, Bench, Sizes
    from bench.env import archiver_environment, interpreter
    from bench.s3case import PART_SIZE, s3_upload
    from bench.servers import Nginx

    if peer == "aws s3 cp" and shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed")
    if peer == "s3transfer":  # the peer where the AWS CLI is not installed
        monkeypatch.setenv("PATH", _path_without_aws())
    nginx = _nginx()
    assert nginx is not None
    said: list[str] = []
    # The large file takes two parts: both sides upload it in a multipart upload.
    sizes = Sizes(small_tasks=6, big_bytes=PART_SIZE + 1 * MIB)
    work = readable_dir
    with Nginx(nginx, work / "nginx", work / "www") as server:
        bench = Bench(
            tools={"nginx": nginx},
            work=work,
            www=work / "www",
            nginx=server,
            python=interpreter(),
            env=archiver_environment(REPO),
            rounds=1,
            sizes=sizes,
            say=said.append,
        )
        result = s3_upload(bench)
    assert set(result.rounds) == {
        f"{phase} {command} wall" for phase in ("small", "big") for command in ("archiver", peer)
    }
    assert f"× {peer}'s time on the small files" in result.verdict, result.verdict
    assert result.peers.startswith(f"{peer}: small ")
    assert "MiB/s" in result.archiver
    objects = next(note for note in result.notes if note.startswith("objects each left"))
    # The peer's bucket holds the video and its cover; the archiver's, its sidecar, the
    # checksums, the manifest's copy and the catalog's three files too (and no lock: it is
    # released).
    assert f"big {peer} 2" in objects and "big archiver 8" in objects, objects
