"""`python -m bench`'s command line, up to where it needs its tools (nginx, curl, aria2c)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
