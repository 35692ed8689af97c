"""Chanjing's lip-sync video list (`POST /open/v1/video_lip_sync/list`).

The page loop, the token and the rate limit are every Chanjing list's (`chanjing`); this
module names the endpoint and the record's fields. `duration` is in milliseconds here.
"""

from __future__ import annotations

from typing import Any

from archiver.sources.base import RecordView
from archiver.sources.chanjing import ChanjingSettings, ChanjingSource
from archiver.sources.chanjing import page_answer as _page_answer
from archiver.sources.fields import duration_seconds
from archiver.sources.parse import TaskFields
from archiver.sources.parse import parse_task as parse_record
from archiver.sources.records import Listed

__all__ = ["ChanjingLipSync", "ChanjingSettings", "_page_answer", "parse_task"]

TASK_FIELDS = TaskFields(
    state_key="status",
    succeeded=20,
    state_names={0: "queued", 10: "generating", 30: "failed"},
    created_key="create_time",
    media=(("video", "video_url"), ("preview", "preview_url")),
    required="video",
)


class ChanjingLipSync(ChanjingSource):
    """Lists a Chanjing account's lip-sync videos."""

    type_name = "chanjing_lip_sync"
    label = "Lip sync"
    list_path = "/open/v1/video_lip_sync/list"
    task_fields = TASK_FIELDS

    @classmethod
    def view(cls, kind: str, record: dict[str, Any]) -> RecordView:
        return RecordView(
            title=record.get("title"),
            duration=duration_seconds(record.get("duration"), per_second=1000),
        )


def parse_task(row: Any) -> Listed:
    """One lip-sync record as an `ArchiveItem`, `Unfinished` or `Rejected`."""
    return parse_record(row, TASK_FIELDS)
