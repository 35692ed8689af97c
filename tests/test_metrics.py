"""`--metrics-file` / `metrics_file`: the last run in node_exporter's textfile format."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

from archiver.standin import StandIn
from tests.support import config_dict, run_cli, write_config

SAMPLE = re.compile(r'(archiver_[a-z_]+)(?:\{source="([^"\\]*)"\})? (-?[0-9.]+)')


def parse(text: str) -> dict[tuple[str, str | None], float]:
    """Every sample by (name, source label); every line is a sample, HELP or TYPE."""
    samples: dict[tuple[str, str | None], float] = {}
    helped: set[str] = set()
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind == "gauge"
            typed.add(name)
        else:
            match = SAMPLE.fullmatch(line)
            assert match, line
            name, source, value = match.groups()
            assert name in helped and name in typed, name
            samples[(name, source)] = float(value)
    return samples


async def test_the_metrics_file_tells_the_last_run(standin: StandIn, tmp_path: Path) -> None:
    config = write_config(tmp_path, config_dict(standin))
    metrics = tmp_path / "textfile" / "archiver.prom"
    before = time.time()
    result = await run_cli("run", "-c", config, "--metrics-file", metrics)
    after = time.time()
    assert result.code == 0
    samples = parse(metrics.read_text())
    report = json.loads(
        next((tmp_path / "archive" / ".archiver" / "runs").glob("*.json")).read_text()
    )
    started = samples[("archiver_last_run_start_timestamp_seconds", None)]
    ended = samples[("archiver_last_run_end_timestamp_seconds", None)]
    assert before - 1 <= started <= ended <= after + 1
    assert samples[("archiver_last_run_exit_status", None)] == 0
    for name, source in report["sources"].items():
        archived = source["newly_archived"] + source["templates_archived"]
        assert samples[("archiver_last_run_items_archived", name)] == archived > 0
        assert samples[("archiver_last_run_items_failed", name)] == 0
        assert samples[("archiver_last_run_bytes", name)] == source["bytes"] > 0
    db = sqlite3.connect(tmp_path / "archive" / "manifest.sqlite3")
    try:
        size = db.execute("SELECT sum(bytes) FROM files").fetchone()[0]
    finally:
        db.close()
    assert samples[("archiver_archive_size_bytes", None)] == size
    assert [p.name for p in metrics.parent.iterdir()] == ["archiver.prom"]  # no temp file left


async def test_metrics_file_from_the_config_and_a_failed_run(
    standin: StandIn, tmp_path: Path
) -> None:
    cfg = config_dict(standin, metrics_file="metrics/archiver.prom", vth={"token": "revoked"})
    config = write_config(tmp_path, cfg)
    assert (await run_cli("run", "-c", config)).code == 3
    samples = parse((tmp_path / "metrics" / "archiver.prom").read_text())
    assert samples[("archiver_last_run_exit_status", None)] == 3
    assert samples[("archiver_last_run_items_archived", "faceswap")] == 0
    assert samples[("archiver_last_run_items_archived", "chanjing")] > 0


async def test_a_run_stopped_before_it_began_still_writes_its_metrics(
    standin: StandIn, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    config = write_config(tmp_path, config_dict(standin, archive_dir="file/archive"))
    metrics = tmp_path / "archiver.prom"
    assert (await run_cli("run", "-c", config, "--metrics-file", metrics)).code == 2
    samples = parse(metrics.read_text())
    assert samples[("archiver_last_run_exit_status", None)] == 2
    assert ("archiver_archive_size_bytes", None) not in samples


async def test_a_metrics_file_that_cannot_be_written_is_a_warning(
    standin: StandIn, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    config = write_config(tmp_path, config_dict(standin))
    result = await run_cli("run", "-c", config, "--metrics-file", tmp_path / "file" / "m.prom")
    assert result.code == 0
    assert "could not write the metrics file" in result.output
