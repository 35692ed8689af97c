"""The stand-in itself: both APIs, the media host, the dataset's changes, and every fault kind."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from archiver.standin import ABSENT, Dataset, DatasetSpec, Fault, StandIn
from archiver.standin.server import DEMO_CHANJING_ACCESS_TOKEN, DEMO_VTH_TOKEN

VTH = "/videoTaskHistory"
TOKEN = "/open/v1/access_token"
LIST = "/open/v1/video_lip_sync/list"
HEX32 = re.compile(r"[0-9a-f]{32}")

StandInFactory = Callable[..., Awaitable[StandIn]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def vth_page(
    http: aiohttp.ClientSession, standin: StandIn, page: Any, size: Any = 10, **kw: Any
) -> tuple[int, Any]:
    kw.setdefault("headers", {"Authorization": DEMO_VTH_TOKEN})
    if "data" not in kw:
        kw["json"] = {"page": page, "pageSize": size}
    async with http.post(standin.api_url + VTH, **kw) as response:
        return response.status, await response.json()


async def cj_page(
    http: aiohttp.ClientSession,
    standin: StandIn,
    body: Any,
    token: str = DEMO_CHANJING_ACCESS_TOKEN,
) -> Any:
    async with http.post(standin.api_url + LIST, json=body, headers={"access_token": token}) as r:
        assert r.status == 200
        return await r.json()


async def mint(http: aiohttp.ClientSession, standin: StandIn, secret: str = "demo-secret") -> Any:
    body = {"app_id": "demo-app", "secret_key": secret}
    async with http.post(standin.api_url + TOKEN, json=body) as response:
        return await response.json()


async def fetch(
    http: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with http.get(url, headers=headers) as response:
        return response.status, response.headers, await response.read()


def first_video(standin: StandIn) -> str:
    url: str = standin.dataset.succeeded_vth()[0]["origin"]
    return url


# -- the video task history ------------------------------------------------------------------


async def test_vth_pages_cover_the_list_newest_first(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    seen: list[Any] = []
    for page in range(1, 6):
        status, payload = await vth_page(http, standin, page, 7)
        assert (status, payload["code"], payload["msg"]) == (200, 200, "SUCCESS")
        seen.extend(payload["data"])
    assert seen == standin.dataset.vth_tasks()
    assert len(seen) == 30
    created = [record["createdAt"] for record in seen]
    assert created == sorted(created, reverse=True)
    assert (await vth_page(http, standin, 9, 7))[1]["data"] == []


async def test_vth_records_have_every_documented_field(standin: StandIn) -> None:
    fields = {"id", "styleId", "taskId", "promptId", "covering", "origin", "reason", "state"}
    template_fields = {"id", "title", "thumb", "covering", "video", "pid", "gid", "sort"}
    template_fields |= {"favoriteCount", "isHome", "prompt", "author", "createdAt", "updatedAt"}
    states = set()
    for record in standin.dataset.vth_tasks():
        assert fields | {"createdAt", "videoTemp"} <= record.keys()
        assert isinstance(record["id"], int) and isinstance(record["taskId"], str)
        assert template_fields == record["videoTemp"].keys()
        states.add(record["state"])
        if record["state"] == 30:
            assert record["origin"].endswith(".mp4") and record["covering"]
        else:
            assert record["origin"] == ""
        if record["state"] == 2:
            assert record["reason"]
    assert states == {2, 10, 20, 30}
    titles = {t["title"] for t in standin.dataset.templates()}
    assert "<img src=x onerror=alert(1)>" in titles and "夏日海边漫步" in titles


async def test_vth_accepts_form_fields_and_records_the_encoding(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    status, payload = await vth_page(http, standin, 1, data={"page": "2", "pageSize": "5"})
    assert status == 200
    assert payload["data"] == standin.dataset.page("vth", 2, 5)
    await vth_page(http, standin, 1, 5)
    assert standin.stats.vth_encodings == {"form": 1, "json": 1}
    assert standin.stats.api_requests[0].body == {"page": "2", "pageSize": "5"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer " + DEMO_VTH_TOKEN}, {"Authorization": "nope"}]
)
async def test_vth_refuses_a_wrong_token(
    standin: StandIn, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    assert await vth_page(http, standin, 1, headers=headers) == (
        401,
        {"code": 401, "msg": "unauthorized"},
    )


@pytest.mark.parametrize(
    "body", [{"page": 0, "pageSize": 5}, {"page": 1}, {"page": "1", "pageSize": 5}, {"page": True}]
)
async def test_vth_answers_800_to_bad_parameters(
    standin: StandIn, http: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    async with http.post(
        standin.api_url + VTH, json=body, headers={"Authorization": DEMO_VTH_TOKEN}
    ) as response:
        assert await response.json() == {"code": 800, "msg": "参数错误", "data": None}


# -- Chanjing ------------------------------------------------------------------------------


async def test_chanjing_pages_and_page_info(standin: StandIn, http: aiohttp.ClientSession) -> None:
    first = await cj_page(http, standin, {})
    assert first["code"] == 0 and HEX32.fullmatch(first["trace_id"])
    assert first["data"]["page_info"] == {"page": 1, "size": 10, "total_count": 30, "total_page": 3}
    seen = list(first["data"]["list"])
    for page in (2, 3):
        seen += (await cj_page(http, standin, {"page": page, "page_size": 10}))["data"]["list"]
    assert seen == standin.dataset.chanjing_tasks()
    past = await cj_page(http, standin, {"page": 4, "page_size": 10})
    assert past["data"]["list"] == [] and past["trace_id"] != first["trace_id"]
    assert {r["status"] for r in seen} == {0, 10, 20, 30}
    assert any("duration" in r for r in seen) and any("duration" not in r for r in seen)


async def test_chanjing_refuses_bad_tokens_and_parameters(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    refused = await cj_page(http, standin, {}, token="forged")
    assert (refused["code"], refused["msg"]) == (10400, "AccessToken验证失败")
    assert HEX32.fullmatch(refused["trace_id"])
    for body in ({"page": 0}, {"page_size": "10"}, {"page": 1.5}):
        assert (await cj_page(http, standin, body))["code"] == 40000


async def test_minting_a_token_invalidates_the_previous_one(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    answer = await mint(http, standin)
    assert answer["code"] == 0 and HEX32.fullmatch(answer["trace_id"])
    first = answer["data"]["access_token"]
    assert abs(answer["data"]["expire_in"] - (time.time() + 86_400)) < 5
    # The ready token was the app's current one; minting replaced it.
    assert (await cj_page(http, standin, {}))["code"] == 10400
    assert (await cj_page(http, standin, {}, token=first))["code"] == 0
    second = (await mint(http, standin))["data"]["access_token"]
    assert (await cj_page(http, standin, {}, token=first))["code"] == 10400
    assert (await cj_page(http, standin, {}, token=second))["code"] == 0
    assert standin.stats.mints == {"demo-app": 2}
    wrong = await mint(http, standin, secret="guess")
    assert wrong["code"] != 0 and "data" not in wrong
    standin.expire_chanjing_tokens()
    assert (await cj_page(http, standin, {}, token=second))["code"] == 10400


async def test_chanjing_answers_40001_above_10_requests_a_second(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    answers = await asyncio.gather(*(cj_page(http, standin, {}) for _ in range(15)))
    codes = sorted(a["code"] for a in answers)
    assert codes == [0] * 10 + [40001] * 5
    assert next(a for a in answers if a["code"] == 40001)["msg"] == "超出QPS限制"
    assert standin.stats.qps_violations == 5
    assert standin.stats.max_chanjing_in_window() == 15
    await asyncio.sleep(1.05)
    assert (await cj_page(http, standin, {}))["code"] == 0


# -- the media host ------------------------------------------------------------------------


async def test_media_is_served_with_validators_and_the_right_type(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    dataset = standin.dataset
    assert first_video(standin).startswith(standin.media_url + "/media/")
    assert standin.media_url != standin.api_url
    template = dataset.templates()[1]
    cases = {
        first_video(standin): ("video/mp4", b"ftyp", 4),
        dataset.succeeded_vth()[0]["covering"]: ("image/jpeg", b"\xff\xd8\xff", 0),
        template["thumb"]: ("image/png", b"\x89PNG", 0),
        template["covering"]: ("image/webp", b"WEBP", 8),
        template["video"]: ("video/mp4", b"ftyp", 4),
    }
    for url, (content_type, magic, offset) in cases.items():
        status, headers, body = await fetch(http, url)
        assert status == 200 and headers["Content-Type"] == content_type
        assert body[offset : offset + len(magic)] == magic
        assert body == dataset.media_bytes(dataset.media_path(url))
        assert int(headers["Content-Length"]) == len(body)
        assert 2_000 <= len(body) <= 40_000
        assert headers["Accept-Ranges"] == "bytes" and headers["ETag"].startswith('"')
        assert headers["Last-Modified"].endswith("GMT")
    assert standin.stats.media_bytes_sent == sum(
        len(dataset.media_bytes(dataset.media_path(u))) for u in cases
    )


async def test_every_template_file_is_served(standin: StandIn, http: aiohttp.ClientSession) -> None:
    # Template names carry "+", Chinese and markup-free slugs: all must round-trip as URLs.
    for template in standin.dataset.templates():
        for role in ("thumb", "covering", "video"):
            status, _, body = await fetch(http, template[role])
            assert status == 200 and body == standin.dataset.media_bytes(template[role])


async def test_extensionless_covers_are_typed_by_content(make_standin: StandInFactory) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=300, chanjing_tasks=0))
    bare = [
        r["covering"]
        for r in standin.dataset.succeeded_vth()
        if "." not in r["covering"].rsplit("/", 1)[1]
    ]
    assert bare, "about 1 cover in 25 has no extension"
    async with aiohttp.ClientSession() as http:
        status, headers, body = await fetch(http, bare[0])
    assert (status, headers["Content-Type"], body[:3]) == (200, "image/jpeg", b"\xff\xd8\xff")


async def test_unknown_and_removed_media_are_404(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    record = standin.dataset.succeeded_vth()[0]
    assert (await fetch(http, standin.media_url + "/media/nothing.mp4"))[0] == 404
    standin.dataset.remove(record["id"])
    assert (await fetch(http, record["origin"]))[0] == 404


async def test_ranges_if_range_and_416(standin: StandIn, http: aiohttp.ClientSession) -> None:
    url = first_video(standin)
    status, headers, whole = await fetch(http, url)
    size, etag, modified = len(whole), headers["ETag"], headers["Last-Modified"]
    assert await_part(await fetch(http, url, Range="bytes=100-"), 206) == whole[100:]
    assert await_part(await fetch(http, url, Range="bytes=10-19"), 206) == whole[10:20]
    assert await_part(await fetch(http, url, Range="bytes=-50"), 206) == whole[-50:]
    status, headers, _ = await fetch(http, url, Range="bytes=5-9")
    assert headers["Content-Range"] == f"bytes 5-9/{size}"
    status, headers, _ = await fetch(http, url, Range=f"bytes={size}-")
    assert (status, headers["Content-Range"]) == (416, f"bytes */{size}")
    assert await_part(await fetch(http, url, Range="bytes=7-", **{"If-Range": etag}), 206)
    assert await_part(await fetch(http, url, Range="bytes=7-", **{"If-Range": modified}), 206)
    stale = {"If-Range": '"0000"'}
    assert await_part(await fetch(http, url, Range="bytes=7-", **stale), 200) == whole
    old_date = {"If-Range": formatdate(0, usegmt=True)}
    assert await_part(await fetch(http, url, Range="bytes=7-", **old_date), 200) == whole
    async with http.head(url) as response:
        assert response.headers["Content-Length"] == str(size) and await response.read() == b""
    assert (await fetch(http, url, **{"If-None-Match": etag}))[0] == 304


def await_part(answer: tuple[int, Any, bytes], status: int) -> bytes:
    assert answer[0] == status
    return answer[2]


async def test_replacing_a_file_changes_its_etag(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    url = first_video(standin)
    _, before, old = await fetch(http, url)
    standin.dataset.replace_media(url)
    _, after, new = await fetch(http, url, Range="bytes=100-", **{"If-Range": before["ETag"]})
    assert after["ETag"] != before["ETag"]
    assert after["Last-Modified"] != before["Last-Modified"]
    assert new != old and new == standin.dataset.media_bytes(url)


# -- the dataset -----------------------------------------------------------------------------


def test_datasets_are_deterministic_per_seed() -> None:
    spec = DatasetSpec(vth_tasks=40, chanjing_tasks=40)
    one, two = Dataset(spec, "http://m"), Dataset(spec, "http://m")
    other = Dataset(DatasetSpec(vth_tasks=40, chanjing_tasks=40, seed=2), "http://m")
    assert one.vth_tasks() == two.vth_tasks() and one.chanjing_tasks() == two.chanjing_tasks()
    assert one.chanjing_tasks() != other.chanjing_tasks()
    path = one.media_path(one.succeeded_chanjing()[0]["video_url"])
    assert one.media_bytes(path) == two.media_bytes(path) != other.media_bytes(path)
    assert abs(len(one.succeeded_vth()) - 28) <= 1 and abs(len(one.succeeded_chanjing()) - 28) <= 1


def test_a_large_dataset_costs_little_until_asked() -> None:
    started = time.monotonic()
    dataset = Dataset(DatasetSpec(vth_tasks=50_000, chanjing_tasks=50_000), "http://m")
    last = dataset.page("chanjing", 1000, 50)
    assert len(last) == 50 and dataset.page("chanjing", 1001, 50) == []
    assert dataset.count("vth") == 50_000
    assert time.monotonic() - started < 2


def test_tasks_can_be_added_changed_and_removed() -> None:
    dataset = Dataset(DatasetSpec(vth_tasks=10, chanjing_tasks=10), "http://m")
    added = dataset.add_vth_task()
    assert dataset.vth_tasks()[0] == added and added["state"] == 30
    assert added["createdAt"] > dataset.vth_tasks()[1]["createdAt"]
    video = dataset.add_chanjing_task(duration=ABSENT)
    assert dataset.chanjing_tasks()[0] == video and "duration" not in video
    unfinished = next(r for r in dataset.vth_tasks() if r["state"] != 30)
    done = dataset.succeed(unfinished["id"])
    assert (done["promptId"], done["createdAt"]) == (
        unfinished["promptId"],
        unfinished["createdAt"],
    )
    assert done["state"] == 30 and dataset.media_file(dataset.media_path(done["origin"]))
    dataset.update(video, video_url="http://m/media/custom/clip.mp4")
    assert dataset.media_file("/media/custom/clip.mp4") is not None
    dataset.remove(added["id"])
    assert added not in dataset.vth_tasks() and dataset.count("vth") == 10
    dataset.add_raw("vth", 42)
    assert dataset.vth_tasks()[0] == 42
    with pytest.raises(KeyError):
        dataset.remove(added["id"])


def test_template_versions_and_titles_change_everywhere() -> None:
    dataset = Dataset(DatasetSpec(vth_tasks=30, templates=2), "http://m")
    path = "/media/facewap/video/Sunset+Walk.mp4"
    before = dataset.media_bytes(path)
    dataset.set_template_version(1, "video", 3)
    dataset.retitle_template(1, "新标题")
    uses = [r["videoTemp"] for r in dataset.vth_tasks() if r["videoTemp"]["id"] == 1]
    assert uses and all(t["video"].endswith("Sunset+Walk.mp4?v=3") for t in uses)
    assert all(t["title"] == "新标题" and t["thumb"].endswith("?v=1") for t in uses)
    assert dataset.media_bytes(path) != before


def test_export_media_writes_the_url_tree(tmp_path: Path) -> None:
    dataset = Dataset(DatasetSpec(vth_tasks=8, chanjing_tasks=8, templates=2), "http://m")
    written = dataset.export_media(tmp_path)
    paths = list(dataset.media_paths())
    assert written == len(paths) > 10
    for path in paths:
        assert (tmp_path / path.lstrip("/")).read_bytes() == dataset.media_bytes(path)


async def test_records_can_point_at_another_media_host(make_standin: StandInFactory) -> None:
    standin = await make_standin(media_base_url="http://cdn.example:8080")
    assert first_video(standin).startswith("http://cdn.example:8080/media/")


# -- faults --------------------------------------------------------------------------------


async def test_http_status_hits_one_page_once(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    fault = standin.faults.add(Fault("http_status", path=VTH, page=2, value=502))
    assert (await vth_page(http, standin, 1))[0] == 200
    async with http.post(
        standin.api_url + VTH,
        json={"page": 2, "pageSize": 10},
        headers={"Authorization": DEMO_VTH_TOKEN},
    ) as response:
        assert response.status == 502 and response.content_type == "text/html"
        assert "502 Bad Gateway" in await response.text()
    assert (await vth_page(http, standin, 2))[0] == 200
    assert fault.fired == 1 and standin.faults.fired("http_status") == 1


async def test_api_codes_and_every_request_faults(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    standin.faults.add(Fault("api_code", path=VTH, value=510))
    assert (await vth_page(http, standin, 1))[1] == {"code": 510, "msg": "系统异常", "data": None}
    standin.faults.add(Fault("api_code", path=LIST, times=-1, value=50000))
    for _ in range(3):
        answer = await cj_page(http, standin, {})
        assert answer["code"] == 50000 and HEX32.fullmatch(answer["trace_id"])
    standin.faults.clear()
    assert (await cj_page(http, standin, {}))["code"] == 0
    assert standin.faults.fired_counts() == {"api_code": 4}


@pytest.mark.parametrize("path", [VTH, "/media/*"])
async def test_reset_drops_the_connection_mid_body(
    standin: StandIn, http: aiohttp.ClientSession, path: str
) -> None:
    standin.faults.add(Fault("reset", path=path))
    if path == VTH:
        request = http.post(
            standin.api_url + VTH,
            json={"page": 1, "pageSize": 10},
            headers={"Authorization": DEMO_VTH_TOKEN},
        )
    else:
        request = http.get(first_video(standin))
    async with request as response:
        assert response.status == 200 and int(response.headers["Content-Length"]) > 0
        with pytest.raises(aiohttp.ClientError):
            await response.read()


async def test_slow_answers_after_a_delay(standin: StandIn, http: aiohttp.ClientSession) -> None:
    standin.faults.add(Fault("slow", path=VTH, value=0.5))
    with pytest.raises(asyncio.TimeoutError):
        await vth_page(http, standin, 1, timeout=aiohttp.ClientTimeout(total=0.2))
    standin.faults.add(Fault("slow", path="/media/*", value=0.2))
    started = time.monotonic()
    assert (await fetch(http, first_video(standin)))[0] == 200
    assert time.monotonic() - started >= 0.2


async def test_bad_json(standin: StandIn, http: aiohttp.ClientSession) -> None:
    standin.faults.add(Fault("bad_json", path=LIST))
    async with http.post(standin.api_url + LIST, json={}) as response:
        assert response.status == 200
        with pytest.raises(ValueError):
            json.loads(await response.text())


@pytest.mark.parametrize(
    ("shape", "vth_data", "cj_data"),
    [
        ("data_null", None, None),
        ("data_string", "SUCCESS", "SUCCESS"),
        ("list_object", dict, list),
        ("items_not_objects", [141, "153", None, ["id"]], dict),
    ],
)
async def test_wrong_shapes(
    standin: StandIn, http: aiohttp.ClientSession, shape: str, vth_data: Any, cj_data: Any
) -> None:
    standin.faults.add(Fault("wrong_shape", path=VTH, value=shape))
    standin.faults.add(Fault("wrong_shape", path=LIST, value=shape))
    data = (await vth_page(http, standin, 1))[1]["data"]
    listing = (await cj_page(http, standin, {}))["data"]
    for got, want in ((data, vth_data), (listing, cj_data)):
        assert isinstance(got, want) if isinstance(want, type) else got == want
    if shape == "items_not_objects":
        assert listing["list"] == [141, "153", None, ["id"]]


async def test_truncate_sends_the_promised_length_then_closes(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    standin.faults.add(Fault("truncate", path="/media/*.mp4", value=1000))
    async with http.get(first_video(standin)) as response:
        assert int(response.headers["Content-Length"]) > 1000
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert standin.stats.media_bytes_sent == 1000


async def test_ignore_range_answers_200_with_everything(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    standin.faults.add(Fault("ignore_range", path="/media/*"))
    url = first_video(standin)
    status, headers, body = await fetch(http, url, Range="bytes=100-")
    assert status == 200 and "Content-Range" not in headers
    assert body == standin.dataset.media_bytes(url)


async def test_replace_fault_changes_the_file_before_answering(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    url = first_video(standin)
    _, before, old = await fetch(http, url)
    standin.faults.add(Fault("replace", path="/media/*"))
    status, after, new = await fetch(http, url, Range="bytes=10-", **{"If-Range": before["ETag"]})
    assert status == 200 and after["ETag"] != before["ETag"] and new != old


async def test_stall_holds_the_body_until_the_client_gives_up(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    standin.faults.add(Fault("stall", path="/media/*", value=500))
    async with http.get(
        first_video(standin), timeout=aiohttp.ClientTimeout(sock_read=0.3)
    ) as response:
        assert response.status == 200
        with pytest.raises(asyncio.TimeoutError):
            await response.read()
    assert standin.stats.media_bytes_sent == 500


async def test_expired_retry_after_and_redirect(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    url = first_video(standin)
    standin.faults.add(Fault("expired", path="/media/*"))
    status, headers, body = await fetch(http, url)
    assert (status, headers["Content-Type"]) == (403, "application/xml")
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
    standin.faults.add(Fault("retry_after", path="/media/*", value=7))
    status, headers, _ = await fetch(http, url)
    assert (status, headers["Retry-After"]) == (429, "7")
    standin.faults.add(Fault("redirect", path="/media/*", value="http://elsewhere.invalid/x"))
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "http://elsewhere.invalid/x"


def test_faults_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        Fault("explode")
    with pytest.raises(ValueError):
        Fault("wrong_shape", value="round")
    with pytest.raises(ValueError):
        Fault("redirect")


# -- what the stand-in saw -------------------------------------------------------------------


async def test_stats_see_headers_bytes_and_can_be_reset(
    standin: StandIn, http: aiohttp.ClientSession
) -> None:
    await vth_page(http, standin, 1)
    await fetch(http, first_video(standin), Range="bytes=0-99")
    media = standin.stats.media_requests
    assert len(media) == 1 and media[0].header("range") == "bytes=0-99"
    assert "authorization" not in standin.stats.media_header_names
    assert standin.stats.api_requests[0].header("Authorization") == DEMO_VTH_TOKEN
    assert standin.stats.media_bytes_sent == 100
    standin.stats.reset()
    assert standin.stats.media_bytes_sent == 0 and not standin.stats.requests


async def test_module_entry_point_serves_until_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "ports.json"
    fault = json.dumps({"kind": "api_code", "path": VTH, "page": 2, "value": 510})
    args = ["--port-file", str(port_file), "--vth-tasks", "5", "--chanjing-tasks", "5"]
    args += ["--fault", fault]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    child = subprocess.Popen(
        [sys.executable, "-m", "archiver.standin", *args], env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        urls = json.loads(port_file.read_text())
        async with aiohttp.ClientSession() as http:
            body = {"page": 1, "pageSize": 10}
            headers = {"Authorization": DEMO_VTH_TOKEN}
            async with http.post(urls["api_url"] + VTH, json=body, headers=headers) as response:
                assert len((await response.json())["data"]) == 5
            body["page"] = 2
            async with http.post(urls["api_url"] + VTH, json=body, headers=headers) as response:
                assert (await response.json())["code"] == 510
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 0
