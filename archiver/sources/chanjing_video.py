"""Chanjing's synthesized digital-human videos (`POST /open/v1/video_list`).

The videos made with `create_video`: the video, its cover and, when the record names one, a
JSON subtitle timeline. This list answers with capitalised `List` / `PageInfo`, which the
shared page loop reads (`chanjing`). `duration` is in seconds here, unlike the lip-sync list.
"""

from __future__ import annotations

from typing import Any

from archiver.sources.base import RecordView
from archiver.sources.chanjing import ChanjingSource
from archiver.sources.fields import duration_seconds
from archiver.sources.parse import TaskFields


class ChanjingVideo(ChanjingSource):
    """Lists a Chanjing account's synthesized videos."""

    type_name = "chanjing_video"
    label = "Synthesized video"
    list_path = "/open/v1/video_list"
    task_fields = TaskFields(
        state_key="status",
        succeeded=30,
        # 4x: the request's parameters were wrong; 5x: the service failed.
        state_names={
            10: "generating",
            **dict.fromkeys(range(40, 50), "parameter error"),
            **dict.fromkeys(range(50, 60), "service error"),
        },
        created_key="create_time",
        media=(("video", "video_url"), ("cover", "preview_url")),
        required="video",
        # An empty `subtitle_data_url` is the usual "no subtitles", not a missing file.
        optional=(("subtitles", "subtitle_data_url"),),
    )

    @classmethod
    def view(cls, kind: str, record: dict[str, Any]) -> RecordView:
        return RecordView(
            title=record.get("title") or record.get("name"),
            duration=duration_seconds(record.get("duration"), per_second=1),
        )
