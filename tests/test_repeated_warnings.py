"""Warnings that repeat are printed five times per source, then counted; the report keeps more.

Thousands of rejected records a page, or a media host failing every file, used to print a
line each into the cron mail. Now the output stays a few dozen lines, and the run report
holds the first 1,000 of each with the full count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archiver.reporting.repeats import SHOWN_PER_SOURCE
from archiver.reporting.stats import MAX_DETAILS
from tests.conftest import StandInFactory
from tests.pageapi import PageApi, source_config, vth_page
from tests.support import config_dict, run_cli, write_config

PAGE = 2000
BAD_PAGES = 3
GOOD = 12


async def test_repeated_warnings_are_counted_and_the_report_keeps_a_thousand(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin()
    missing = f"{standin.media_url}/gone"  # the media host answers 404: every file fails

    def answer(page: int, size: int) -> dict[str, Any]:
        if page <= BAD_PAGES:  # a state that is not a number: each record rejected
            return vth_page([{"id": page * PAGE + i, "state": "done"} for i in range(PAGE)])
        return vth_page(
            [
                {
                    "id": i,
                    "state": 30,
                    "origin": f"{missing}/{i}.mp4",
                    "covering": f"{missing}/{i}.jpg",
                }
                for i in range(GOOD)
            ]
        )

    async with PageApi(answer) as api:
        cfg = config_dict(standin, only="faceswap")
        cfg["sources"] = {"faceswap": source_config(api, "faceswap", page_size=PAGE)}
        result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")
    assert result.code == 1, result.output  # failed files; rejections alone would be 0
    lines = result.output.splitlines()
    assert len(lines) < 80, len(lines)
    rejected = BAD_PAGES * PAGE
    shown = [x for x in lines if "WARNING faceswap: rejected record" in x]
    assert len(shown) == SHOWN_PER_SOURCE
    more = rejected - SHOWN_PER_SOURCE
    assert (
        f"WARNING faceswap: and {more:,} more records rejected; see the run report"
        in lines[SHOWN_PER_SOURCE]
    )
    failed = [x for x in lines if "WARNING faceswap: task" in x and "HTTP 404" in x]
    assert len(failed) == SHOWN_PER_SOURCE
    more = 2 * GOOD - SHOWN_PER_SOURCE
    assert any(f"faceswap: and {more:,} more files failed; see the run report" in x for x in lines)

    runs = (tmp_path / "archive" / ".archiver" / "runs").glob("*.json")
    report = json.loads(next(runs).read_text())["sources"]["faceswap"]
    assert report["rejected"] == rejected
    assert len(report["rejections"]) == MAX_DETAILS == 1000
    assert report["rejections"][0] == {"id": str(PAGE), "reason": "state is not a number: 'done'"}
    assert report["failed"] == len(report["failures"]) == GOOD
