"""`python -m bench.firstcard` and `python -m bench.catalog --browser` on a tiny archive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.firstcard import find_chromium

REPO = Path(__file__).resolve().parents[1]

try:
    import playwright  # noqa: F401 (only whether it is there)
except ImportError:  # pragma: no cover - depends on the machine
    HAVE_PLAYWRIGHT = False
else:
    HAVE_PLAYWRIGHT = True

needs_browser = pytest.mark.skipif(
    not HAVE_PLAYWRIGHT or find_chromium() is None,
    reason="needs Playwright and Chromium (pip install -e '.[test]'; apt-get install chromium)",
)


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env=env or {**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=300,
        check=False,
    )


@pytest.mark.browser
@needs_browser
def test_first_card_is_measured_end_to_end(tmp_path: Path) -> None:
    result = _run(["bench.firstcard", "--tasks", "30", "--rounds", "2", "--workdir", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    painted = next(line for line in lines if line.startswith("first card painted: median "))
    # Two rounds, each a time in seconds; painted comes after the card is in the DOM.
    assert painted.count(",") == 1, painted
    for label in ("index-data.js evaluated", "first card in the DOM", "load event", "JS heap"):
        assert any(label in line for line in lines), result.stdout
    assert "skipped" not in result.stdout
    assert list(tmp_path.iterdir()) == []  # the work folder is gone again


@pytest.mark.browser
@needs_browser
def test_the_catalog_bench_measures_the_first_card_when_asked(tmp_path: Path) -> None:
    args = ["bench.catalog", "--tasks", "30", "--rounds", "1", "--workdir", str(tmp_path)]
    plain = _run(args)
    assert plain.returncode == 0, plain.stderr
    assert "first card" not in plain.stdout
    asked = _run([*args, "--browser"])
    assert asked.returncode == 0, asked.stderr
    assert "first card painted: median " in asked.stdout


def test_without_chromium_the_measurement_says_it_is_skipped(tmp_path: Path) -> None:
    # No Chromium to find: an empty PATH and no $ARCHIVER_CHROMIUM.
    env = {k: v for k, v in os.environ.items() if k != "ARCHIVER_CHROMIUM"}
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env |= {"PATH": str(empty), "PYTHONPATH": str(REPO)}
    work = tmp_path / "work"
    work.mkdir()
    result = _run(["bench.firstcard", "--tasks", "5", "--rounds", "1", "--workdir", str(work)], env)
    assert result.returncode == 0, result.stderr
    assert "first card: skipped, " in result.stdout
    assert "Traceback" not in result.stderr
