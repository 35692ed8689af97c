"""What the catalog shows of each source type, as the source itself reads its records.

The catalog knows no service's field names: each source type says how its record is shown
(title, prompt, duration in seconds, picture or video). Checked on the catalog data of a real
run of the four Chanjing lists against the stand-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archiver.standin import DatasetSpec
from tests.catalog_fixture import read_catalog_data
from tests.support import archive_chanjing_account

SPEC = DatasetSpec(
    vth_tasks=0, chanjing_tasks=8, chanjing_videos=8, chanjing_avatars=8, ai_creations=12
)


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Any]]]:
    """The archive of the whole account, its catalog, and the records it holds."""
    folder = tmp_path_factory.mktemp("account")
    return folder / "archive", archive_chanjing_account(folder, SPEC)


def _entries(archive: Path, source: str) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in read_catalog_data(archive)["tasks"] if t["source"] == source}


def test_sources_are_named_with_their_kind_of_work(account: tuple[Path, Any]) -> None:
    archive, records = account
    sources = read_catalog_data(archive)["sources"]
    labels = {name: (source["type"], source["label"]) for name, source in sources.items()}
    assert labels == {
        "chanjing": ("chanjing_lip_sync", "Lip sync"),
        "cjvideo": ("chanjing_video", "Synthesized video"),
        "cjavatar": ("chanjing_avatar", "Avatar"),
        "cjai": ("chanjing_ai_creation", "AI creation"),
    }
    assert {name: source["tasks"] for name, source in sources.items()} == {
        name: len(rows) for name, rows in records.items()
    }


def test_durations_are_seconds_whatever_the_list_counts_in(account: tuple[Path, Any]) -> None:
    archive, records = account
    lip_sync = _entries(archive, "chanjing")
    for record in records["chanjing"]:  # milliseconds in the lip-sync list
        assert lip_sync[record["id"]].get("duration") == (
            record["duration"] / 1000 if "duration" in record else None
        )
    videos = _entries(archive, "cjvideo")
    for record in records["cjvideo"]:  # seconds in the video list
        assert videos[record["id"]]["duration"] == record["duration"]
        assert videos[record["id"]]["video"].endswith("/video.mp4")
        assert videos[record["id"]]["image"].endswith("/cover.png")
        assert "picture" not in videos[record["id"]]


def test_avatars_and_ai_images_are_pictures_ai_videos_play(account: tuple[Path, Any]) -> None:
    archive, records = account
    avatars = _entries(archive, "cjavatar")
    for record in records["cjavatar"]:
        entry = avatars[record["id"]]
        assert entry["picture"] is True and "video" not in entry
        assert entry["title"] == record["name"]
        if "pic_url" in record:
            assert entry["image"].endswith("/cover.png")
        else:
            assert "image" not in entry and entry["state"] == "cover missing"
    creations = _entries(archive, "cjai")
    for record in records["cjai"]:
        entry = creations[record["unique_id"]]
        first = record["output_url"].index(next(url for url in record["output_url"] if url)) + 1
        if record["type"] == 3:
            assert entry["picture"] is True and "video" not in entry
            assert entry["image"].endswith(f"/output-{first}.jpg")
            assert entry["prompt"] == record["photo_info"]["ref_prompt"]
        else:
            assert "picture" not in entry and "image" not in entry
            assert entry["video"].endswith(f"/output-{first}.mp4")
            assert entry["duration"] == record["motion_info"]["video_duration"]
            assert entry["prompt"] == record["motion_info"]["prompt"]
