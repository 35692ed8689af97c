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
