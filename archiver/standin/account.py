"""Records of the stand-in's other Chanjing lists: synthesized videos, avatars, AI creations.

As in `generate`, one pure function of (seed, sequence number) per record type. Some records
are malformed and some succeeded ones lack a file, on purpose and at fixed intervals, so the
tests of those lists meet both.
"""

from __future__ import annotations

import random
from typing import Any

from archiver.standin.generate import (
    _CHANJING_FAILURES,
    CHANJING_END,
    _created_at,
    _succeeds,
    chanjing_id,
    media_url,
)

CJ_VIDEO_SUCCEEDED = 30
CJ_VIDEO_OTHER_STATES = (10, 41, 51, 10)  # generating, a parameter error, a service error
CJ_AVATAR_SUCCEEDED = 2
CJ_AVATAR_OTHER_STATES = (1, 4, 5, 1)  # in production, failed, system error
AI_SUCCEEDED = "Success"
AI_OTHER_STATES = ("Queued", "Ready", "Generating", "Error", "Fail")
AI_IMAGE, AI_VIDEO = 3, 4
# Every this-many-th record is odd: a synthesized video's state comes as text ("30", to be
# taken as the number), an avatar's and an AI creation's state is of no usable type (rejected,
# never archived); every other this-many-th succeeded one lacks a file (archived without it).
MALFORMED_EVERY = 11
PARTIAL_EVERY = 7
_AVATAR_NAMES = ("Anna", "小美", "Dr. <b>Bold</b>", "José", "主播 Li", "Ops bot")
_AI_PROMPTS = (
    "A red fox in fresh snow, morning light, telephoto",
    "水墨风格的山水画，远山与小舟",
    "Product shot of a glass bottle on wet stone, studio light",
    "<script>alert('ai')</script> neon koi pond",
)


def _start(
    seed: int, seq: int, count: int, share: float, salt: str, force_success: bool
) -> tuple[random.Random, int, bool]:
    """The draws every Chanjing record begins with: its generator, creation time, success."""
    rng = random.Random(f"{seed}:{salt}:{seq}")
    created = _created_at(rng, seq, count, CHANJING_END)
    offset = _SUCCESS_OFFSETS[salt]  # each list succeeds on a pattern of its own
    return rng, created, force_success or seq >= count or _succeeds(seed + offset, seq, share)


_SUCCESS_OFFSETS = {"cv": 11, "av": 13, "ai": 17}


def _malformed(seq: int) -> bool:
    return seq % MALFORMED_EVERY == 5


def _partial(seq: int) -> bool:
    return seq % PARTIAL_EVERY == 3


def cj_video_record(
    seed: int, seq: int, count: int, share: float, base: str, force_success: bool = False
) -> dict[str, Any]:
    """Video `seq` of the synthesized-video list (`video_list`; duration in seconds)."""
    rng, created, succeeded = _start(seed, seq, count, share, "cv", force_success)
    video_id = chanjing_id(seed, seq, "cv")
    other = rng.choice(CJ_VIDEO_OTHER_STATES)
    subtitles, duration = rng.random() < 0.5, rng.randrange(3, 180)
    status: int | str = CJ_VIDEO_SUCCEEDED if succeeded else other
    record: dict[str, Any] = {"id": video_id, "status": status, "progress": 100, "msg": ""}
    if succeeded:
        stem = f"/media/cj-video/{video_id}"
        record |= {
            "video_url": media_url(base, f"{stem}.mp4"),
            "preview_url": media_url(base, f"{stem}.png"),
            "subtitle_data_url": media_url(base, f"{stem}.json") if subtitles else "",
            "duration": duration,
        }
        if _malformed(seq) and not force_success:
            record["status"] = str(CJ_VIDEO_SUCCEEDED)
    else:
        record |= {"progress": rng.randrange(0, 100), "video_url": "", "preview_url": ""}
        record |= {"subtitle_data_url": "", "duration": 0}
        if other >= 40:
            record["msg"] = rng.choice(_CHANJING_FAILURES)
    record["create_time"] = created
    return record


def cj_avatar_record(
    seed: int, seq: int, count: int, share: float, base: str, force_success: bool = False
) -> dict[str, Any]:
    """Avatar `seq` of the custom-avatar list (`list_customised_person`)."""
    rng, created, succeeded = _start(seed, seq, count, share, "av", force_success)
    avatar_id = "C-" + chanjing_id(seed, seq, "av")
    other = rng.choice(CJ_AVATAR_OTHER_STATES)
    video_ext = ".webm" if rng.random() < 0.25 else ".mp4"
    status: int | str = CJ_AVATAR_SUCCEEDED if succeeded else other
    record: dict[str, Any] = {
        "id": avatar_id,
        "name": _AVATAR_NAMES[seq % len(_AVATAR_NAMES)],
        "type": "person",
        "status": status,
        "pic_url": "",
        "preview_url": "",
        "width": 1080,
        "height": 1920,
        "support_4k": rng.random() < 0.3,
        "progress": 100 if succeeded else rng.randrange(0, 100),
        "is_open": 1,
        "err_reason": "" if succeeded or other == 1 else rng.choice(_CHANJING_FAILURES),
        "reason": "",
        "audio_man_id": "C-" + chanjing_id(seed, seq, "voice"),
        "create_time": created,
    }
    if succeeded:
        record["pic_url"] = media_url(base, f"/media/avatar/{avatar_id}.png")
        record["preview_url"] = media_url(base, f"/media/avatar/{avatar_id}{video_ext}")
        if _partial(seq) and not force_success:
            del record["pic_url"]
        if _malformed(seq) and not force_success:
            record["status"] = [CJ_AVATAR_SUCCEEDED]
    return record


def ai_unique_id(seed: int, seq: int) -> str:
    """The UUID-shaped `unique_id` of AI creation `seq` (its sequence number recoverable)."""
    h = chanjing_id(seed, seq, "ai")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def ai_record(
    seed: int, seq: int, count: int, share: float, base: str, force_success: bool = False
) -> dict[str, Any]:
    """AI creation `seq`: an image task (type 3) or a video task (type 4)."""
    rng, created, succeeded = _start(seed, seq, count, share, "ai", force_success)
    unique_id = ai_unique_id(seed, seq)
    kind = AI_IMAGE if rng.random() < 0.6 else AI_VIDEO
    other, outputs = rng.choice(AI_OTHER_STATES), rng.randrange(1, 4) if kind == AI_IMAGE else 1
    prompt = _AI_PROMPTS[seq % len(_AI_PROMPTS)]
    ext = ".jpg" if kind == AI_IMAGE else ".mp4"
    urls = [media_url(base, f"/media/ai-creation/{unique_id}-{n}{ext}") for n in range(outputs)]
    state: str | None = AI_SUCCEEDED if succeeded else other
    if succeeded and not force_success:
        if _partial(seq):
            urls.insert(len(urls) // 2, "")  # a hole in the list: the others are kept
        if _malformed(seq):
            state = None
    record: dict[str, Any] = {
        "id": count - seq if seq < count else seq + 1,  # a row number, not the task's key
        "unique_id": unique_id,
        "create_time": created,
        "number_ai_creation": outputs,
        "type": kind,
        "progress_desc": state,
        "err_msg": rng.choice(_CHANJING_FAILURES) if other in ("Error", "Fail") else "",
        "aspect_ratio": rng.choice(("9:16", "16:9", "1:1")),
        "output_url": urls if succeeded else [],
        "photo_info": {"ref_prompt": prompt, "number_of_images": outputs}
        if kind == AI_IMAGE
        else {},
        "motion_info": {"prompt": prompt, "video_duration": rng.choice((5, 10))}
        if kind == AI_VIDEO
        else {},
        "ref_img_url": [],
        "model_code": "demo-model",
        "model_name": "",
    }
    return record
