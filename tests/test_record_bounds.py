"""A record nested too deeply or too large is rejected; the rest of its page is archived.

Such a record used to raise `RecursionError`: 500 deep in the fingerprint, 10,000 deep in
decoding the page itself, and either way its whole source failed, every night.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from archiver.sources.nesting import MAX_RECORD_DEPTH
from archiver.standin import DatasetSpec
from tests.conftest import StandInFactory
from tests.pageapi import PageApi, chanjing_page, source_config, vth_page
from tests.support import config_dict, run_cli, task_ids, write_config

DEEP = "__deep_%d__"
LONG_NUMBER = "__long_number__"  # replaced by an integer of 5,000 digits


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


LARGE = "x" * (1024 * 1024 + 1)
TOO_DEEP = f"record nested too deeply (more than {MAX_RECORD_DEPTH} levels)"
TOO_LARGE = "record too large (more than 1 MiB of JSON)"
TOO_LONG = "record holds a number too long to keep"


@pytest.mark.parametrize(
    ("name", "extras"),
    [
        ("faceswap", [DEEP % 500, DEEP % 10_000, LARGE]),
        ("chanjing", [DEEP % 500, DEEP % 10_000, LARGE]),
        # Alone, since 10,000 deep used to fail the page before 500 deep failed a record.
        ("faceswap", [DEEP % 500]),
        # More digits than Python converts: json.loads used to refuse the whole page.
        ("faceswap", [LONG_NUMBER, DEEP % 10_000]),
        ("chanjing", [LONG_NUMBER]),
    ],
)
async def test_too_deep_or_too_large_records_are_rejected_and_the_rest_archived(
    make_standin: StandInFactory, tmp_path: Path, name: str, extras: list[str]
) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=8, chanjing_tasks=8, templates=2))
    vth = name == "faceswap"
    good = standin.dataset.vth_tasks() if vth else standin.dataset.chanjing_tasks()
    state = ("state", 30) if vth else ("status", 20)
    base = next(r for r in good if r[state[0]] == state[1])
    bad: list[dict[str, Any]] = []
    for number, extra in enumerate(extras):
        record = copy.deepcopy(base)
        record["id"] = 900 + number if vth else f"bad-{number}"
        record["extra"] = extra
        bad.append(record)
    records = good[:4] + bad + good[4:]
    text = json.dumps(vth_page(records) if vth else chanjing_page(records, total_page=1))
    for depth in (500, 10_000):  # JSON's own encoder could not write these
        text = text.replace(json.dumps(DEEP % depth), _nested(depth))
    text = text.replace(json.dumps(LONG_NUMBER), "1" * 5000)
    async with PageApi(lambda page, size: text.encode() if page == 1 else vth_page([])) as api:
        cfg = config_dict(standin, only="faceswap")
        cfg["sources"] = {name: source_config(api, name, page_size=50)}
        result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")
    assert result.code == 0, result.output
    assert "Traceback" not in result.output and "unexpected error" not in result.output
    archive = tmp_path / "archive"
    assert task_ids(archive, name) == {str(r["id"]) for r in good if r[state[0]] == state[1]}
    report = json.loads(next((archive / ".archiver" / "runs").glob("*.json")).read_text())
    rejections = {r["id"]: r["reason"] for r in report["sources"][name]["rejections"]}
    why = {LARGE: TOO_LARGE, LONG_NUMBER: TOO_LONG}
    reasons = [why.get(extra, TOO_DEEP) for extra in extras]
    assert rejections == {str(r["id"]): why for r, why in zip(bad, reasons, strict=True)}
    assert f"rejected record {bad[0]['id']}: {reasons[0]}" in result.output


async def test_a_creation_time_of_too_many_digits_is_no_time(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=4, chanjing_tasks=0, templates=1))
    good = [r for r in standin.dataset.vth_tasks() if r["state"] == 30]
    odd = copy.deepcopy(good[0]) | {"id": 990, "createdAt": "7" * 5000}
    text = json.dumps(vth_page([*good, odd]))
    async with PageApi(lambda page, size: text.encode() if page == 1 else vth_page([])) as api:
        cfg = config_dict(standin, only="faceswap")
        cfg["sources"] = {"faceswap": source_config(api, "faceswap", page_size=50)}
        result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")
    assert result.code == 0, result.output
    archive = tmp_path / "archive"
    assert task_ids(archive, "faceswap") == {str(r["id"]) for r in [*good, odd]}
    assert (archive / "faceswap" / "undated" / "990" / "metadata.json").is_file()


async def test_an_answer_that_is_not_json_is_still_a_listing_error(tmp_path: Path) -> None:
    # Cut off in the middle of deep nesting: nothing to decode, whatever the depth.
    async with PageApi(lambda page, size: b'{"code": 200, "data": [' + b"[" * 5000) as api:
        cfg = {"archive_dir": "archive", "http": {"retries": 2, "backoff_base": 0.01}}
        cfg["sources"] = {"faceswap": source_config(api, "faceswap")}
        result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")
    assert result.code == 3, result.output
    assert "faceswap: cannot list: giving up after 2 attempts: the answer is not JSON" in (
        result.output
    )
    assert len(api.pages) == 2
