"""The stand-in's other Chanjing lists: synthesized videos, custom avatars and AI creations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from archiver.standin import Dataset, DatasetSpec, StandIn
from archiver.standin.server import DEMO_CHANJING_ACCESS_TOKEN

VIDEOS = "/open/v1/video_list"
AVATARS = "/open/v1/list_customised_person"
AI = "/open/v1/ai_creation/task/page"
LIP_SYNC = "/open/v1/video_lip_sync/list"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def ask(http: aiohttp.ClientSession, standin: StandIn, path: str, body: Any) -> Any:
    headers = {"access_token": DEMO_CHANJING_ACCESS_TOKEN}
    async with http.post(standin.api_url + path, json=body, headers=headers) as response:
        assert response.status == 200
        return await response.json()


async def test_video_list_answers_with_capitalised_keys(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    first = await ask(http, standin, VIDEOS, {"page": 1, "page_size": 8})
    assert first["code"] == 0 and set(first["data"]) == {"List", "PageInfo"}
    total = standin.dataset.count("cj_video")
    assert first["data"]["PageInfo"] == {
        "page": 1,
        "size": 8,
        "total_count": total,
        "total_page": -(-total // 8),
    }
    seen = list(first["data"]["List"])
    for page in range(2, first["data"]["PageInfo"]["total_page"] + 1):
        seen += (await ask(http, standin, VIDEOS, {"page": page, "page_size": 8}))["data"]["List"]
    assert seen == standin.dataset.records("cj_video")
    statuses = {r["status"] for r in seen}
    assert 30 in statuses and 10 in statuses and "30" in statuses  # "30": malformed
    done = [r for r in seen if r["status"] == 30]
    assert any(r["subtitle_data_url"] for r in done) and any(
        not r["subtitle_data_url"] for r in done
    )


async def test_avatar_list_holds_partial_and_malformed_avatars(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    answer = await ask(http, standin, AVATARS, {"page": 1, "page_size": 50})
    assert set(answer["data"]) == {"list", "page_info"}
    avatars = answer["data"]["list"]
    assert avatars == standin.dataset.records("cj_avatar")
    assert all(a["id"].startswith("C-") for a in avatars)
    done = [a for a in avatars if a["status"] == 2]
    assert any("pic_url" not in a for a in done) and any("pic_url" in a for a in done)
    assert any(a["status"] == [2] for a in avatars)
    assert {1, 4, 5} & {a["status"] for a in avatars if isinstance(a["status"], int)}


async def test_ai_creations_are_listed_one_type_at_a_time(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    for body in ({"page": 1}, {"type": 5}, {"type": True}, {"type": 3, "page_size": 51}):
        assert (await ask(http, standin, AI, body))["code"] == 40000, body
    every = standin.dataset.records("cj_ai")
    for kind in (3, 4):
        answer = await ask(http, standin, AI, {"type": kind, "page": 1, "page_size": 50})
        rows = answer["data"]["list"]
        assert rows == [r for r in every if r["type"] == kind]
        assert answer["data"]["total"] == answer["data"]["page_info"]["total_count"] == len(rows)
    done = [r for r in every if r["progress_desc"] == "Success"]
    assert any("" in r["output_url"] for r in done)  # a hole among the outputs
    assert any(r["progress_desc"] is None for r in every)  # malformed


async def test_40001_above_10_a_second_counts_every_list(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    asks = [(path, {"type": 3}) for path in (VIDEOS, AVATARS, AI, LIP_SYNC)] * 4
    answers = await asyncio.gather(*(ask(http, standin, path, body) for path, body in asks))
    assert sorted(a["code"] for a in answers) == [0] * 10 + [40001] * 6
    assert standin.stats.qps_violations == 6
    assert standin.stats.max_chanjing_in_window() == 16


async def test_media_of_the_new_lists(standin: StandIn, http: aiohttp.ClientSession) -> None:
    video = next(r for r in standin.dataset.succeeded("cj_video") if r["subtitle_data_url"])
    async with http.get(video["subtitle_data_url"]) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(await response.read())["subtitles"]
    avatar = next(r for r in standin.dataset.succeeded("cj_avatar") if "pic_url" in r)
    async with http.get(avatar["pic_url"]) as response:
        assert (response.status, response.headers["Content-Type"]) == (200, "image/png")
    creation = standin.dataset.succeeded("cj_ai")[0]
    standin.dataset.remove(creation)
    async with http.get(next(url for url in creation["output_url"] if url)) as response:
        assert response.status == 404  # gone with its task


def test_the_new_lists_can_be_sized_and_grow() -> None:
    spec = DatasetSpec(vth_tasks=0, chanjing_tasks=0, chanjing_videos=3, chanjing_avatars=0)
    dataset = Dataset(spec)
    assert (dataset.count("cj_video"), dataset.count("cj_avatar")) == (3, 0)
    added = dataset.add_task("cj_avatar", name="new")
    assert dataset.records("cj_avatar") == [added] and added["status"] == 2
    assert dataset.update(added, name="renamed")["name"] == "renamed"
    with pytest.raises(ValueError, match="negative"):
        DatasetSpec(ai_creations=-1)
