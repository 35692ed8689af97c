"""Sizes read the same everywhere: binary units, one decimal, from `human_bytes`."""

from __future__ import annotations

import io
import time

from archiver.reporting.console import BarProgress, human_bytes


def test_human_bytes_uses_binary_units() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1024) == "1.0 KiB"
    assert human_bytes(17_100_000) == "16.3 MiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
    assert human_bytes(5 * 1024**4) == "5120.0 GiB"


def test_the_progress_bar_says_what_the_summary_says() -> None:
    screen = io.StringIO()
    bars = BarProgress(stream=screen)
    bars.received(17_000_000)
    time.sleep(0.2)  # tqdm redraws at most every 0.1 s
    bars.received(100_000)
    bars.close()
    shown = screen.getvalue()
    assert "received: 16.3 MiB" in shown
    assert "MB" not in shown.replace("MiB", "")
