"""Chanjing's custom avatars (`POST /open/v1/list_customised_person`).

The digital humans a user trained: a picture of each (`pic_url`, role `cover`) and a preview
video (`preview_url`, often WebM, role `video`). Either alone is worth keeping, so an avatar
is archived with whichever of the two is usable, and its sidecar says why the other is not.
"""

from __future__ import annotations

from typing import Any

from archiver.sources.base import RecordView
from archiver.sources.chanjing import ChanjingSource
from archiver.sources.parse import TaskFields


class ChanjingAvatar(ChanjingSource):
    """Lists a Chanjing account's custom avatars."""

    type_name = "chanjing_avatar"
    label = "Avatar"
    list_path = "/open/v1/list_customised_person"
    task_fields = TaskFields(
        state_key="status",
        succeeded=2,
        state_names={1: "in production", 4: "failed", 5: "system error"},
        created_key="create_time",
        media=(("cover", "pic_url"), ("video", "preview_url")),
        required=None,
    )

    @classmethod
    def view(cls, kind: str, record: dict[str, Any]) -> RecordView:
        # An avatar is a person, shown by its picture; its preview video is one of its files.
        return RecordView(title=record.get("name"), picture=True, image_roles=("cover",))
