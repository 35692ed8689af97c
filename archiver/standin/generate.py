"""Records of the stand-in, made from a seed: one pure function per record type.

A record is a function of (seed, sequence number), so the dataset only stores the order of
sequence numbers and whatever tests changed; 50,000 tasks cost a list of ints, and a page is
built when it is asked for. Generated tasks (sequence numbers below the spec's count) spread
over about two years ending in October 2025, newest first; added tasks (higher numbers) come
later still, an hour apart. Shapes follow the API references field for field, including the
fields the references leave undocumented, because the archive must keep records verbatim.
"""

from __future__ import annotations

import functools
import hashlib
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

VTH_END = int(datetime(2025, 10, 27, 9, 30, tzinfo=UTC).timestamp())
CHANJING_END = int(datetime(2025, 10, 24, 16, 5, tzinfo=UTC).timestamp())
SPAN = 730 * 86_400
ADDED_STEP = 3_600

VTH_SUCCEEDED = 30
VTH_OTHER_STATES = (2, 2, 10, 20)  # failures are the common way not to succeed
CHANJING_SUCCEEDED = 20
CHANJING_OTHER_STATES = (30, 30, 0, 10)

_GOLDEN = 0.6180339887498949
_NO_EXTENSION_ODDS = 1 / 25
_ALNUM = string.ascii_letters + string.digits

# (title, file name, prompt, author): Unicode and markup on purpose, for the catalog's escaping.
_TEMPLATE_BASES = (
    (
        "Sunset Walk",
        "Sunset+Walk",
        "A woman walks along the beach at sunset, hair in the wind.",
        "alvjay",
    ),
    ("夏日海边漫步", "夏日海边漫步", "海边的夏日午后，她赤脚走在沙滩上，回头微笑。", "小林"),
    (
        "<img src=x onerror=alert(1)>",
        "img-onerror",
        "<script>alert('prompt')</script> & \"quotes\" & 'apostrophes'",
        "mallory",
    ),
    (
        "Café Noir — déjà vu 🎬",
        "Cafe+Noir",
        "Slow dolly shot in a Parisian café, warm light, 35mm film grain.",
        "Zoë",
    ),
    (
        "城市夜景 City Lights",
        "city-lights-城市",
        "Neon reflections on wet streets; 镜头缓慢推进。",
        "王五",
    ),
    (
        'Dance "Party" & Friends',
        "Dance+Party",
        "Four friends dance in a living room; confetti.",
        "dj_o'neil",
    ),
)
_VTH_REASONS = ("new_sensitive", "unknown error", "face not detected", "内容审核未通过")
_CHANJING_FAILURES = ("人脸检测失败", "音频时长超出限制", "internal error", "素材下载失败")

TEMPLATE_ROLES = {"thumb": ".png", "covering": ".webp", "video": ".mp4"}
_TEMPLATE_FIRST_VERSIONS = {"thumb": 1, "covering": 1, "video": 2}


@dataclass
class TemplateState:
    """A video template as the service currently holds it (tests retitle and re-version it)."""

    id: int
    title: str
    name: str
    prompt: str
    author: str
    extras: dict[str, int]  # pid, gid, favoriteCount, sort, isHome
    created_at: int
    updated_at: int
    versions: dict[str, int] = field(default_factory=lambda: dict(_TEMPLATE_FIRST_VERSIONS))

    def path(self, role: str) -> str:
        """The media path of one of the template's files (`thumb`, `covering`, `video`)."""
        return f"/media/facewap/{role}/{self.name}{TEMPLATE_ROLES[role]}"


def media_url(base: str, path: str, query: str = "") -> str:
    """The URL of a media path on the host at `base` (non-ASCII path parts percent-encoded)."""
    url = base.rstrip("/") + quote(path, safe="/+")
    return f"{url}?{query}" if query else url


def make_templates(seed: int, count: int) -> list[TemplateState]:
    """The dataset's video templates, ids 1..count."""
    templates = []
    for k in range(count):
        rng = random.Random(f"{seed}:template:{k}")
        title, name, prompt, author = _TEMPLATE_BASES[k % len(_TEMPLATE_BASES)]
        if k >= len(_TEMPLATE_BASES):
            title, name = f"{title} #{k + 1}", f"{name}-{k + 1}"
        created = VTH_END - SPAN - rng.randrange(30 * 86_400)
        extras = {
            "pid": 0,
            "gid": rng.choice((0, 0, 1, 2)),
            "favoriteCount": rng.randrange(500),
            "sort": rng.randrange(1, 100),
            "isHome": rng.choice((0, 1)),
        }
        updated = VTH_END - rng.randrange(86_400 * 20)
        templates.append(
            TemplateState(k + 1, title, name, prompt, author, extras, created, updated)
        )
    return templates


def template_record(template: TemplateState, base: str) -> dict[str, Any]:
    """The `videoTemp` object of a task, as the service sends it."""
    urls = {
        role: media_url(base, template.path(role), f"v={template.versions[role]}")
        for role in TEMPLATE_ROLES
    }
    return {
        "id": template.id,
        "title": template.title,
        "thumb": urls["thumb"],
        "covering": urls["covering"],
        "video": urls["video"],
        **template.extras,
        "prompt": template.prompt,
        "author": template.author,
        "createdAt": template.created_at,
        "updatedAt": template.updated_at,
    }


@functools.cache
def _share_offset(seed: int) -> float:
    return random.Random(f"{seed}:share").random()


def _succeeds(seed: int, seq: int, share: float) -> bool:
    # A golden-ratio sequence: any run of tasks holds close to `share` succeeded ones, so even
    # a three-task dataset has succeeded tasks in it.
    return ((seq + 1) * _GOLDEN + _share_offset(seed)) % 1.0 < share


def _created_at(rng: random.Random, seq: int, count: int, end: int) -> int:
    if seq >= count:
        return end + ADDED_STEP * (seq - count + 1)
    step = SPAN / max(count, 1)
    return end - int((seq + rng.random() * 0.9) * step)


def vth_id(seq: int, count: int) -> int:
    """The `id` of task `seq`: newer tasks have higher ids, with gaps (other users' tasks)."""
    return 100 + 2 * (count - 1 - seq) if seq < count else 100 + 2 * seq


def vth_seq(task_id: int, count: int) -> int:
    """The inverse of `vth_id` (the caller checks the sequence number exists)."""
    half = (task_id - 100) // 2
    return half if task_id >= 100 + 2 * count else count - 1 - half


def vth_record(
    seed: int,
    seq: int,
    count: int,
    share: float,
    base: str,
    templates: Sequence[dict[str, Any]],
    force_success: bool = False,
) -> dict[str, Any]:
    """Task `seq` of the video task history; it uses one of `templates` (None if none)."""
    rng = random.Random(f"{seed}:vth:{seq}")
    task_id = vth_id(seq, count)
    created = _created_at(rng, seq, count, VTH_END)
    succeeded = force_success or seq >= count or _succeeds(seed, seq, share)
    # Every draw happens whatever the state, so a task that `succeed`s keeps its other fields.
    other_state = rng.choice(VTH_OTHER_STATES)
    state = VTH_SUCCEEDED if succeeded else other_state
    stamp = created * 1_000_000_000 + rng.randrange(1_000_000_000)
    token = "".join(rng.choices(_ALNUM, k=8))
    folder = f"/media/faceWap/prod/{task_id}"
    cover_ext = "" if rng.random() < _NO_EXTENSION_ODDS else ".jpg"
    reason = rng.choice(_VTH_REASONS)
    return {
        "id": task_id,
        "styleId": rng.randrange(1, 5),
        "taskId": str(task_id + 12),
        "promptId": str(rng.randrange(10**14, 10**15)),
        "covering": media_url(base, f"{folder}/{stamp}_{token}{cover_ext}") if succeeded else "",
        "origin": media_url(base, f"{folder}/{stamp + 7}_{token[::-1]}.mp4") if succeeded else "",
        "reason": reason if state == 2 else "",
        "state": state,
        "createdAt": created,
        "videoTemp": dict(rng.choice(templates)) if templates else None,
    }


def chanjing_id(seed: int, seq: int, salt: str = "cj") -> str:
    """The 32-hex `id` of Chanjing record `seq`; `seq` can be read back from it, for lookups.

    `salt` tells the lists apart (`cj` lip-sync, `cv` videos, `av` avatars, `ai` creations).
    """
    prefix = hashlib.sha256(f"{seed}:{salt}:{seq}".encode()).hexdigest()[:24]
    return prefix + f"{seq ^ _id_mask(prefix):08x}"


def _id_mask(prefix: str) -> int:
    # Hides the sequence number, so ids look as random as the service's own.
    return int(hashlib.sha256(prefix.encode()).hexdigest()[:8], 16)


def chanjing_seq(video_id: str) -> int | None:
    """The inverse of `chanjing_id`, or None if `video_id` is not shaped like one."""
    if len(video_id) != 32:
        return None
    try:
        return int(video_id[24:], 16) ^ _id_mask(video_id[:24])
    except ValueError:
        return None


def chanjing_record(
    seed: int, seq: int, count: int, share: float, base: str, force_success: bool = False
) -> dict[str, Any]:
    """Video `seq` of the lip-sync list."""
    rng = random.Random(f"{seed}:cj:{seq}")
    video_id = chanjing_id(seed, seq)
    created = _created_at(rng, seq, count, CHANJING_END)
    succeeded = force_success or seq >= count or _succeeds(seed + 7, seq, share)
    # Every draw happens whatever the status, so a video that `succeed`s keeps its other fields.
    other_status = rng.choice(CHANJING_OTHER_STATES)
    status = CHANJING_SUCCEEDED if succeeded else other_status
    preview_ext = "" if rng.random() < _NO_EXTENSION_ODDS else ".jpg"
    duration = rng.randrange(3_000, 120_000) if rng.random() < 0.7 else None
    progress, failure, bare = rng.randrange(1, 100), rng.choice(_CHANJING_FAILURES), rng.random()
    record: dict[str, Any] = {"id": video_id, "status": status}
    if status == CHANJING_SUCCEEDED:
        record |= {
            "progress": 100,
            "msg": "success",
            "video_url": media_url(base, f"/media/lip-sync/{video_id}.mp4"),
            "preview_url": media_url(base, f"/media/lip-sync/{video_id}{preview_ext}"),
        }
        if duration is not None:
            record["duration"] = duration
    elif status == 30:
        record |= {"progress": progress, "msg": failure}
        # Failed videos come both with empty URLs and with no URL keys at all.
        if bare < 0.5:
            record |= {"video_url": "", "preview_url": ""}
    else:
        record |= {"progress": 0 if status == 0 else progress, "msg": ""}
        record |= {"video_url": "", "preview_url": ""}
    record["create_time"] = created
    return record
