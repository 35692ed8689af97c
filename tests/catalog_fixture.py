"""Builds a small, realistic archive on disk for the catalog tests.

The archive follows the product's layout exactly: a manifest made from
`archiver.store.schema.SCHEMA`, `<source>/<YYYY>/<MM>/<id>/` task folders (`undated/` for a
task with an unusable creation time), `<source>/templates/<id>/` template folders, and a
`metadata.json` sidecar beside the media.

The media are real files that a browser decodes, made in pure Python by the stand-in's encoders
(`archiver.standin.encoders`), so the tests need no image or video tool: JPEG covers, PNG thumbs,
lossless WebP template covers and H.264 MP4 videos. Content is deterministic: the same call
builds the same archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from archiver.standin.encoders import Scene, jpeg_image, mp4_video, png_image, webp_image
from archiver.store.schema import SCHEMA, SCHEMA_VERSION

XSS_TITLE = "<img src=x onerror=alert(1)>"
FACESWAP = "faceswap"
CHANJING = "chanjing"

_TEMPLATE_TITLES = (
    "Sunset over the bay",
    XSS_TITLE,
    "Neon city walk",
    "Café au lait, s'il vous plaît",
    "Mountain trail in autumn",
)
_PROMPTS = (
    "A slow dolly shot along the shore, golden light, gentle waves",
    "</script><script>alert('prompt')</script> & other \"quoted\" text",
    "Night street, rain reflections, handheld camera, 24 fps",
    "Morning café, steam rising from the cup, shallow depth of field",
    "Wide aerial of a ridge line, drifting clouds, warm palette",
)


@dataclass(frozen=True)
class ArchivedItem:
    """One archived task or template as the builder wrote it."""

    source: str
    kind: str
    id: str
    folder: str
    created_at: str | None
    title: str | None
    files: dict[str, str] = field(default_factory=dict)  # role -> path from the archive root


@dataclass(frozen=True)
class BuiltArchive:
    """What `build_archive` made: the root and every archived task and template."""

    root: Path
    tasks: tuple[ArchivedItem, ...]
    templates: tuple[ArchivedItem, ...]

    def tasks_of(self, source: str) -> list[ArchivedItem]:
        """The archived tasks of one source."""
        return [task for task in self.tasks if task.source == source]


def build_archive(
    root: Path,
    tasks: int = 24,
    *,
    unreadable_sidecar: bool = False,
    shared_media: bool = False,
) -> BuiltArchive:
    """Write an archive with `tasks` archived tasks (two thirds face swap) under `root`.

    It always holds five templates (one titled `XSS_TITLE`, one with an older video version
    kept), an undated task, a task whose cover could not be archived, a chanjing task without
    `duration`, and a pending and a failed task that are not archived. `unreadable_sidecar`
    truncates one chanjing sidecar. `shared_media` hard-links identical media to one copy,
    which keeps a 20,000-task archive quick to build and small.
    """
    root.mkdir(parents=True, exist_ok=True)
    builder = _Builder(root, shared_media)
    faceswap_count = (tasks * 2 + 2) // 3
    templates = [builder.template(number) for number in range(1, len(_TEMPLATE_TITLES) + 1)]
    task_items = [builder.faceswap_task(index) for index in range(faceswap_count)]
    task_items += [
        builder.chanjing_task(index, unreadable_sidecar and index == 1)
        for index in range(tasks - faceswap_count)
    ]
    builder.unarchived_rows()
    builder.commit()
    return BuiltArchive(root, tuple(task_items), tuple(templates))


_SHARED: dict[tuple[Path, int], BuiltArchive] = {}


def shared_archive(base: Path, tasks: int) -> BuiltArchive:
    """A big archive with shared media, built once per test session under `base`.

    Both catalog test modules want 20,000 tasks; building them once saves the slow part.
    """
    key = (base, tasks)
    if key not in _SHARED:
        _SHARED[key] = build_archive(base / f"shared-archive-{tasks}", tasks, shared_media=True)
    return _SHARED[key]


def read_catalog_data(archive_dir: Path) -> dict[str, Any]:
    """The object that `index-data.js` assigns, parsed as JSON."""
    text = (archive_dir / "index-data.js").read_text(encoding="utf-8")
    prefix = "window.ARCHIVER_CATALOG = "
    body = text[text.index(prefix) + len(prefix) :].rstrip().removesuffix(";")
    value: dict[str, Any] = json.loads(body)
    return value


class _Builder:
    """Writes items one by one: media, sidecar, then the manifest rows."""

    def __init__(self, root: Path, shared_media: bool) -> None:
        self.root = root
        self.shared_media = shared_media
        self.first_copy: dict[tuple[str, int], Path] = {}
        self.made: set[str] = set()
        self.db = sqlite3.connect(root / "manifest.sqlite3")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        self.db.execute(
            "INSERT INTO runs (id, started_at, finished_at, exit_status, command) "
            "VALUES (1, '2026-11-21T04:59:00Z', '2026-11-21T05:00:00Z', 0, 'run')"
        )

    def commit(self) -> None:
        """Commit and close the manifest."""
        self.db.commit()
        self.db.close()

    def template(self, number: int) -> ArchivedItem:
        """Template `number`: thumb, cover and video; number 2 also keeps an older video."""
        tid = str(number)
        folder = f"{FACESWAP}/templates/{tid}"
        record = _template_record(number)
        video_version = 2 if number == 2 else 1
        files = {
            "thumb": ("thumb.v1.png", record["thumb"], lambda: png_thumb(number)),
            "cover": ("cover.v1.webp", record["covering"], lambda: webp_cover(number)),
            "video": (f"video.v{video_version}.mp4", record["video"], lambda: video_clip(number)),
        }
        previous = []
        if number == 2:
            old_url = record["video"].replace("?v=2", "?v=1")
            previous.append(
                self._file(
                    folder,
                    "video",
                    "video.v1.mp4",
                    old_url,
                    number + 7,
                    0,
                    lambda: video_clip(number + 7),
                )
            )
        written = {
            role: self._file(folder, role, name, url, number, 1, make)
            for role, (name, url, make) in files.items()
        }
        created = _iso(record["createdAt"])
        sidecar: dict[str, Any] = {
            "source": FACESWAP,
            "type": "video_task_history",
            "kind": "template",
            "id": tid,
            "created_at": created,
            "archived_at": "2026-11-21T05:00:00Z",
            "record": record,
            "files": {role: meta for role, meta in written.items()},
        }
        if previous:
            sidecar["previous_files"] = [{"role": "video", **previous[0]}]
        self._item(FACESWAP, "template", tid, folder, created, sidecar)
        return ArchivedItem(
            FACESWAP,
            "template",
            tid,
            folder,
            created,
            record["title"],
            {role: f"{folder}/{meta['name']}" for role, meta in written.items()},
        )

    def faceswap_task(self, index: int) -> ArchivedItem:
        """Face-swap task `index`: 0 is undated, 1 has a cover that could not be archived."""
        number = 141 + index
        template = 1 + index % len(_TEMPLATE_TITLES)
        created_ts = 0 if index == 0 else 1740000000 + index * 86400 * 9 + index * 3607
        created = _iso(created_ts) if created_ts else None
        record: dict[str, Any] = {
            "id": number,
            "styleId": 2,
            "taskId": str(number + 12),
            "promptId": str(313902995386602 + index),
            "covering": "ftp://example.invalid/cover.jpg" if index == 1 else _s3(index, "jpg"),
            "origin": _s3(index, "mp4"),
            "reason": "",
            "state": 30,
            "createdAt": created_ts,
            "videoTemp": _template_record(template),
        }
        folder = _dated_folder(FACESWAP, created, str(number))
        written = {
            "video": self._file(
                folder,
                "video",
                "video.mp4",
                record["origin"],
                template,
                1,
                lambda: video_clip(template),
            )
        }
        missing = {}
        if index == 1:
            missing["cover"] = "unsupported URL scheme 'ftp'"
        else:
            written["cover"] = self._file(
                folder,
                "cover",
                "cover.jpg",
                record["covering"],
                1000 + index % 40,
                1,
                lambda: jpeg_cover(index % 40),
            )
        return self._task(
            FACESWAP,
            "video_task_history",
            str(number),
            folder,
            created,
            record,
            written,
            missing,
            str(record["videoTemp"]["title"]),
        )

    def chanjing_task(self, index: int, unreadable: bool) -> ArchivedItem:
        """Chanjing task `index`; even ones carry `duration`, in milliseconds."""
        tid = hashlib.md5(f"lip-sync-{index}".encode(), usedforsecurity=False).hexdigest()
        created_ts = 1738636800 + index * 86400 * 11 + index * 1799
        base = f"https://res.chanjing.cc/xxx/lip-sync/{tid}"
        record: dict[str, Any] = {
            "id": tid,
            "status": 20,
            "progress": 100,
            "msg": "success",
            "video_url": f"{base}.mp4",
            "preview_url": f"{base}.jpg",
            "create_time": created_ts,
        }
        if index % 2 == 0:
            record["duration"] = 4000 + index * 1517
        created = _iso(created_ts)
        folder = _dated_folder(CHANJING, created, tid)
        written = {
            "video": self._file(
                folder,
                "video",
                "video.mp4",
                record["video_url"],
                50 + index % 4,
                1,
                lambda: video_clip(50 + index % 4),
            ),
            "preview": self._file(
                folder,
                "preview",
                "preview.jpg",
                record["preview_url"],
                2000 + index % 40,
                1,
                lambda: jpeg_cover(500 + index % 40),
            ),
        }
        item = self._task(
            CHANJING, "chanjing_lip_sync", tid, folder, created, record, written, {}, None
        )
        if unreadable:
            sidecar = self.root / folder / "metadata.json"
            sidecar.write_bytes(sidecar.read_bytes()[:40])
        return item

    def unarchived_rows(self) -> None:
        """A pending and a failed task: listed in the manifest, never shown in the catalog."""
        for item_id, state, error in (
            ("9000001", "pending", None),
            ("9000002", "failed", "HTTP 404"),
        ):
            self.db.execute(
                "INSERT INTO items (source, kind, item_id, state, folder, created_at,"
                " first_seen_run, last_seen_run, last_error)"
                " VALUES (?, 'task', ?, ?, ?, ?, 1, 1, ?)",
                (
                    FACESWAP,
                    item_id,
                    state,
                    f"{FACESWAP}/2026/11/{item_id}",
                    "2026-11-20T10:00:00Z",
                    error,
                ),
            )

    def _task(
        self,
        source: str,
        source_type: str,
        tid: str,
        folder: str,
        created: str | None,
        record: dict[str, Any],
        written: dict[str, dict[str, Any]],
        missing: dict[str, str],
        title: str | None,
    ) -> ArchivedItem:
        sidecar = {
            "source": source,
            "type": source_type,
            "kind": "task",
            "id": tid,
            "created_at": created,
            "archived_at": "2026-11-21T05:00:00Z",
            "record": record,
            "files": written,
            "missing": missing,
        }
        self._item(source, "task", tid, folder, created, sidecar)
        paths = {role: f"{folder}/{meta['name']}" for role, meta in written.items()}
        return ArchivedItem(source, "task", tid, folder, created, title, paths)

    def _item(
        self,
        source: str,
        kind: str,
        tid: str,
        folder: str,
        created: str | None,
        sidecar: dict[str, Any],
    ) -> None:
        text = json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n"
        (self.root / folder / "metadata.json").write_text(text, encoding="utf-8")
        self.db.execute(
            "INSERT INTO items (source, kind, item_id, state, folder, created_at, fingerprint, "
            "first_seen_run, last_seen_run, archived_run, archived_at, last_error) "
            "VALUES (?, ?, ?, 'archived', ?, ?, ?, 1, 1, 1, ?, NULL)",
            (
                source,
                kind,
                tid,
                folder,
                created,
                hashlib.sha256(text.encode()).hexdigest(),
                sidecar["archived_at"],
            ),
        )

    def _file(
        self,
        folder: str,
        role: str,
        name: str,
        url: str,
        variant: int,
        current: int,
        make: Callable[[], bytes],
    ) -> dict[str, Any]:
        """Write one media file (or link its twin) and its manifest row; return its sidecar part."""
        target = self.root / folder / name
        if folder not in self.made:  # one mkdir per item: on a big archive they add up
            target.parent.mkdir(parents=True)
            self.made.add(folder)
        twin = self.first_copy.get((name.rsplit(".", 1)[-1], variant))
        if self.shared_media and twin is not None:
            os.link(twin, target)
            data = _cached_digest(twin)
        else:
            payload = make()
            target.write_bytes(payload)
            self.first_copy[(name.rsplit(".", 1)[-1], variant)] = target
            data = (len(payload), hashlib.sha256(payload).hexdigest())
        content_type = _CONTENT_TYPES[name.rsplit(".", 1)[-1]]
        source, _, rest = folder.partition("/")
        kind = "template" if rest.startswith("templates/") else "task"
        self.db.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                source,
                kind,
                folder.rsplit("/", 1)[-1],
                name,
                role,
                f"{folder}/{name}",
                url,
                data[0],
                data[1],
                content_type,
                current,
            ),
        )
        return {
            "name": name,
            "url": url,
            "bytes": data[0],
            "sha256": data[1],
            "content_type": content_type,
        }


_CONTENT_TYPES = {"mp4": "video/mp4", "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@cache
def _cached_digest(path: Path) -> tuple[int, str]:
    payload = path.read_bytes()
    return len(payload), hashlib.sha256(payload).hexdigest()


def _template_record(number: int) -> dict[str, Any]:
    name = f"tpl{number:03d}"
    bucket = "https://media-bucket.s3.amazonaws.com/facewap"
    version = 2 if number == 2 else 1
    return {
        "id": number,
        "title": _TEMPLATE_TITLES[number - 1],
        "thumb": f"{bucket}/thumb/{name}.png?v=1",
        "covering": f"{bucket}/covering/{name}.webp?v=1",
        "video": f"{bucket}/video/{name}.mp4?v={version}",
        "pid": 0,
        "gid": 0,
        "favoriteCount": number * 3,
        "sort": 50 - number,
        "isHome": 1,
        "prompt": _PROMPTS[number - 1],
        "author": f"studio-{number}",
        "createdAt": 1753913160 + number * 86400,
        "updatedAt": 1761181034,
    }


def _s3(index: int, ext: str) -> str:
    return (
        f"https://media-bucket.s3.amazonaws.com/faceWap/test/original/17585{index:05d}_{ext}.{ext}"
    )


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dated_folder(source: str, created: str | None, tid: str) -> str:
    if created is None:
        return f"{source}/undated/{tid}"
    return f"{source}/{created[:4]}/{created[5:7]}/{tid}"


# --- media: real files a browser decodes, made by the stand-in's encoders ---


@cache
def jpeg_cover(seed: int) -> bytes:
    """A JPEG cover painted from `seed`."""
    return jpeg_image(Scene.from_seed(f"cover-{seed}"))


@cache
def png_thumb(seed: int) -> bytes:
    """A small PNG thumb painted from `seed`."""
    return png_image(Scene.from_seed(f"thumb-{seed}"), 160, 90)


@cache
def webp_cover(seed: int) -> bytes:
    """A small lossless WebP template cover painted from `seed`."""
    return webp_image(Scene.from_seed(f"cover-{seed}"), 160, 90)


@cache
def video_clip(seed: int) -> bytes:
    """A playable two-second MP4 painted from `seed`."""
    return mp4_video(Scene.from_seed(f"video-{seed}"))
