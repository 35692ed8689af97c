"""The README's console excerpts are real output of the current code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_every_console_excerpt_is_generated() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = len(re.findall(r"^```console$", readme, flags=re.M))
    marked = len(re.findall(r"^<!-- excerpt: [a-z-]+ -->\n```console$", readme, flags=re.M))
    assert blocks == marked >= 4


@pytest.mark.timeout(300)
def test_the_readme_excerpts_match_the_current_output() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "readme_excerpts.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr
