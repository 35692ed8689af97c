"""The whole Chanjing account: lip-sync and synthesized videos, custom avatars, AI creations.

All four lists run against the stand-in together: every succeeded item archived byte-exact,
one token minted for all of them, never more than 10 requests in any second (the stand-in
answers 40001 above that and counts), a refused token minted again once for all of them, and
a record that lacks a file keeps the others with the reason in its sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archiver.standin import ABSENT, DatasetSpec, Fault
from tests.conftest import StandInFactory
from tests.support import (
    WHOLE_CHANJING,
    assert_archive_exact,
    chanjing_account,
    config_dict,
    run_cli,
    sidecars,
    write_config,
)

SPEC = DatasetSpec(
    vth_tasks=0,
    chanjing_tasks=20,
    chanjing_videos=20,
    chanjing_avatars=15,
    ai_creations=30,
)
LIST_PATHS = {
    "chanjing": "/open/v1/video_lip_sync/list",
    "cjvideo": "/open/v1/video_list",
    "cjavatar": "/open/v1/list_customised_person",
    "cjai": "/open/v1/ai_creation/task/page",
}
PAGE = {"page_size": 3}  # small pages: many requests, so that the rate limit is what paces them


def _report(archive: Path) -> dict[str, Any]:
    latest = sorted((archive / ".archiver" / "runs").glob("*.json"))[-1]
    report: dict[str, Any] = json.loads(latest.read_text())
    return report


async def test_every_list_is_archived_exactly_with_one_token_and_at_most_10_a_second(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, chanjing_account(standin, chanjing=PAGE))
    result = await run_cli("run", "-c", config, "--no-progress")

    assert result.code == 0, result.output
    archive = tmp_path / "archive"
    assert_archive_exact(archive, standin, WHOLE_CHANJING)
    stats = standin.stats
    assert stats.mints == {"demo-app": 1}
    assert len(stats.chanjing_arrivals) > 20  # enough requests for the limit to matter
    assert stats.qps_violations == 0
    assert stats.max_chanjing_in_window() <= 10
    # One token for every list; the AI creations listed once per type.
    token = standin.chanjing_tokens["demo-app"]
    for path in LIST_PATHS.values():
        assert {r.header("access_token") for r in stats.requests_to(path)} == {token}
    ai_types = {r.body["type"] for r in stats.requests_to(LIST_PATHS["cjai"])}
    assert ai_types == {3, 4}
    # The malformed records beside the succeeded ones are rejected, each with its reason; a
    # state that is a number's text ("30") is that number (the archive above holds those).
    rejected = {name: source["rejected"] for name, source in _report(archive)["sources"].items()}
    assert rejected == {"chanjing": 0, "cjvideo": 0, "cjavatar": 1, "cjai": 1}
    for reason in ("status is not a number: '[2]'", "progress_desc is not text: 'None'"):
        assert reason in result.output
    as_text = [r for r in standin.dataset.succeeded("cj_video") if r["status"] == "30"]
    assert as_text and all(("cjvideo", "task", r["id"]) in sidecars(archive) for r in as_text)
    # What each list's records hold becomes the files of each item.
    docs = sidecars(archive)
    video = standin.dataset.succeeded("cj_video")[0]
    files = docs[("cjvideo", "task", video["id"])]["files"]
    assert set(files) == {"video", "cover"} | (
        {"subtitles"} if video["subtitle_data_url"] else set()
    )
    assert files["cover"]["name"] == "cover.png"
    assert docs[("cjvideo", "task", video["id"])]["record"] == video
    images = [
        r
        for r in standin.dataset.succeeded("cj_ai")
        if r["type"] == 3 and "" not in r["output_url"]
    ]
    doc = docs[("cjai", "task", images[0]["unique_id"])]
    roles = [f"output-{n}" for n in range(1, len(images[0]["output_url"]) + 1)]
    assert list(doc["files"]) == roles
    assert [doc["files"][role]["url"] for role in roles] == images[0]["output_url"]


async def test_subtitles_are_kept_as_json_and_durations_verbatim(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(DatasetSpec(vth_tasks=0, chanjing_tasks=0, chanjing_videos=0))
    stem = f"{standin.media_url}/media/cj-video/{'ab' * 16}"
    video = standin.dataset.add_task(
        "cj_video", id="ab" * 16, video_url=f"{stem}.mp4", subtitle_data_url=f"{stem}.json"
    )
    cfg = config_dict(standin, only="chanjing", chanjing={"type": "chanjing_video"})

    assert (await run_cli("run", "-c", write_config(tmp_path, cfg))).code == 0
    doc = sidecars(tmp_path / "archive")[("chanjing", "task", video["id"])]
    assert {role: f["name"] for role, f in doc["files"].items()} == {
        "video": "video.mp4",
        "cover": "cover.png",
        "subtitles": "subtitles.json",
    }
    folder = next((tmp_path / "archive").rglob("subtitles.json")).parent
    served = standin.dataset.media_bytes(f"{stem}.json")
    assert (folder / "subtitles.json").read_bytes() == served
    assert json.loads(served)["subtitles"]
    assert doc["record"] == video  # `duration` in seconds, kept as sent


async def test_a_refused_token_is_minted_again_once_for_every_list(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    # A stale ready token beside the app's credentials: every list is refused at first.
    stale = {**PAGE, "access_token": "stale-token"}
    config = write_config(tmp_path, chanjing_account(standin, chanjing=stale))
    result = await run_cli("run", "-c", config, "--no-progress")

    assert result.code == 0, result.output
    assert standin.stats.mints == {"demo-app": 1}
    for path in LIST_PATHS.values():
        assert standin.stats.requests_to(path)[0].header("access_token") == "stale-token"
    assert_archive_exact(tmp_path / "archive", standin, WHOLE_CHANJING)


async def test_sources_of_one_app_id_share_its_token_whatever_else_they_give(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    lists = {"cjavatar": {"access_token": "stale-token"}}
    config = write_config(tmp_path, chanjing_account(standin, chanjing=PAGE, lists=lists))
    result = await run_cli("run", "-c", config, "--no-progress")

    assert result.code == 0, result.output
    assert standin.stats.mints == {"demo-app": 1}
    assert_archive_exact(tmp_path / "archive", standin, WHOLE_CHANJING)


async def test_10401_is_a_refusal_and_a_refused_fresh_token_gives_up(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    config = write_config(tmp_path, chanjing_account(standin, chanjing=PAGE))
    standin.faults.add(Fault("api_code", path=LIST_PATHS["cjvideo"], page=1, value=10401))
    first = await run_cli("run", "-c", config, "--no-progress")
    assert first.code == 0, first.output
    assert standin.stats.mints == {"demo-app": 2}  # the first token, and one fresh one
    assert_archive_exact(tmp_path / "archive", standin, WHOLE_CHANJING)

    # Refused, minted again, refused again: that list gives up; the others are archived.
    standin.stats.reset()
    standin.faults.add(Fault("api_code", path=LIST_PATHS["cjavatar"], value=10401, times=-1))
    added = standin.dataset.add_task("cj_video")
    second = await run_cli("run", "-c", config, "--no-progress")
    assert second.code == 3, second.output
    assert "cjavatar" in second.output and "10401" in second.output
    assert standin.stats.mints == {"demo-app": 2}
    assert ("cjvideo", "task", added["id"]) in sidecars(tmp_path / "archive")


async def test_a_record_lacking_a_file_keeps_the_others_and_says_why(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(
        DatasetSpec(vth_tasks=0, chanjing_tasks=0, chanjing_avatars=2, ai_creations=2)
    )
    dataset, media = standin.dataset, standin.media_url
    avatar = dataset.add_task("cj_avatar", pic_url=ABSENT)
    image = dataset.add_task(
        "cj_ai",
        type=3,
        output_url=[
            f"{media}/media/ai-creation/one.jpg",
            "",
            f"{media}/media/ai-creation/three.png",
        ],
    )
    empty = dataset.add_task("cj_ai", type=4, output_url=[])
    config = chanjing_account(standin)
    del config["sources"]["chanjing"], config["sources"]["cjvideo"]
    result = await run_cli("run", "-c", write_config(tmp_path, config), "--no-progress")

    assert result.code == 0, result.output
    docs = sidecars(tmp_path / "archive")
    kept = docs[("cjavatar", "task", avatar["id"])]
    assert set(kept["files"]) == {"video"}
    assert kept["missing"] == {"cover": "pic_url: no URL given"}
    kept = docs[("cjai", "task", image["unique_id"])]
    assert {role: f["name"] for role, f in kept["files"].items()} == {
        "output-1": "output-1.jpg",
        "output-3": "output-3.png",
    }
    assert kept["missing"] == {"output-2": "output_url[1]: no URL given"}
    assert ("cjai", "task", empty["unique_id"]) not in docs
    reason = f"rejected record {empty['unique_id']}: succeeded task without a usable URL"
    assert reason in result.output and "output_url: no URL given" in result.output


async def test_ai_creations_of_the_kinds_asked_for(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin(SPEC)
    cfg = config_dict(standin, only="chanjing", chanjing={"type": "chanjing_ai_creation"})
    cfg["sources"]["chanjing"]["kinds"] = ["video"]
    result = await run_cli("run", "-c", write_config(tmp_path, cfg), "--no-progress")

    assert result.code == 0, result.output
    assert {r.body["type"] for r in standin.stats.requests_to(LIST_PATHS["cjai"])} == {4}
    videos = {
        r["unique_id"]
        for r in standin.dataset.succeeded("cj_ai")
        if r["type"] == 4 and any(r["output_url"])
    }
    assert {i for (_, _, i) in sidecars(tmp_path / "archive")} == videos
    cfg["sources"]["chanjing"]["kinds"] = ["video", "audio"]
    refused = await run_cli("run", "-c", write_config(tmp_path, cfg))
    assert refused.code == 2
    assert (
        "sources.chanjing.kinds[1]: must be one of 'image', 'video', got 'audio'" in refused.output
    )


async def test_the_demo_archives_the_whole_account(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = await run_cli("demo", target, "--tasks", "30")

    assert result.code == 0, result.output
    sources = _report(target)["sources"]
    assert set(sources) == {
        "faceswap",
        "chanjing",
        "chanjing-videos",
        "chanjing-avatars",
        "chanjing-ai",
    }
    for name in ("chanjing-videos", "chanjing-avatars", "chanjing-ai"):
        source = sources[name]
        assert source["newly_archived"] > 0 and source["failed"] == 0, name
        # Malformed records beside the good ones; a video's state as text ("30") is taken.
        assert (source["rejected"] > 0) is (name != "chanjing-videos"), name
        assert sum(source["not_succeeded"].values()) > 0, name  # and running or failed ones
