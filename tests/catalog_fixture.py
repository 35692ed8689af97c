"""Builds a small, realistic archive on disk for the catalog tests.

The archive follows the product's layout exactly: a manifest made from `archiver.schema.SCHEMA`,
`<source>/<YYYY>/<MM>/<id>/` task folders (`undated/` for a task with an unusable creation time),
`<source>/templates/<id>/` template folders, and a `metadata.json` sidecar beside the media.

The media are real files that a browser decodes, made here in pure Python so the tests need no
image or video tool: baseline JPEG covers (one flat colour per 8x8 block, so no DCT is needed),
PNG thumbs, lossless WebP template covers and H.264 MP4 videos (every macroblock sent raw as
I_PCM, which needs no encoder either). Content is deterministic: the same call builds the same
archive.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import os
import sqlite3
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from archiver.schema import SCHEMA, SCHEMA_VERSION

XSS_TITLE = "<img src=x onerror=alert(1)>"
FACESWAP = "faceswap"
CHANJING = "chanjing"
RGB = tuple[int, int, int]

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
            "thumb": ("thumb.v1.png", record["thumb"], lambda: png_image(160, 90, number)),
            "cover": ("cover.v1.webp", record["covering"], lambda: webp_solid(*_hue(number))),
            "video": (
                f"video.v{video_version}.mp4",
                record["video"],
                lambda: mp4_video(_hue(number)),
            ),
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
                    lambda: mp4_video(_hue(number + 7)),
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
                lambda: mp4_video(_hue(template)),
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
                lambda: mp4_video(_hue(50 + index % 4)),
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
            "INSERT INTO items VALUES (?, ?, ?, 'archived', ?, ?, ?, 1, 1, 1, ?, NULL)",
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


def _hue(seed: int) -> RGB:
    red, green, blue = colorsys.hsv_to_rgb((seed * 0.137) % 1.0, 0.55, 0.85)
    return round(red * 255), round(green * 255), round(blue * 255)


def _cover_pixel(seed: int, width: int, height: int) -> Callable[[int, int], RGB]:
    """A diagonal two-colour gradient with a soft disc: something to tell covers apart."""
    first, second = _hue(seed), _hue(seed + 3)
    centre_x, centre_y = width * (0.3 + (seed % 5) * 0.1), height * 0.5

    def pixel(x: int, y: int) -> RGB:
        mix = (x / width + y / height) / 2
        colour = [round(a + (b - a) * mix) for a, b in zip(first, second, strict=True)]
        distance = ((x - centre_x) ** 2 + (y - centre_y) ** 2) ** 0.5 / (height * 0.32)
        if distance < 1:
            colour = [round(c + (255 - c) * 0.55 * (1 - distance**2)) for c in colour]
        return colour[0], colour[1], colour[2]

    return pixel


# --- JPEG: baseline, 4:4:4, every 8x8 block one flat colour (DC only, AC is just EOB) ---


@cache
def jpeg_cover(seed: int, width: int = 256, height: int = 144) -> bytes:
    """A baseline JPEG of `width` x `height` (multiples of 8) painted from `seed`."""
    pixel = _cover_pixel(seed, width, height)
    dc_counts = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)  # the spec's luminance DC table
    dc_codes = _canonical_codes(dc_counts, range(12))
    bits = _MsbBits()
    predictors = [0, 0, 0]
    for block_y in range(0, height, 8):
        for block_x in range(0, width, 8):
            for component, value in enumerate(_ycbcr(pixel(block_x + 4, block_y + 4))):
                dc = round(value) - 128  # quantiser 8 turns DC 8*(v-128) back into v-128
                diff, predictors[component] = dc - predictors[component], dc
                size = abs(diff).bit_length()
                bits.write(*dc_codes[size])
                if size:
                    bits.write(diff if diff > 0 else diff + (1 << size) - 1, size)
                bits.write(0, 1)  # EOB, the only AC symbol, coded as a single 0 bit
    scan = bits.flush(pad_with_ones=True).replace(b"\xff", b"\xff\x00")
    components = b"".join(bytes((ident, 0x11, 0)) for ident in (1, 2, 3))
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + bytes([8] * 64)),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components),
            _segment(0xC4, b"\x00" + bytes(dc_counts) + bytes(range(12))),
            _segment(0xC4, b"\x10" + bytes((1,) + (0,) * 15) + b"\x00"),
            _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        )
    )


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


def _canonical_codes(counts: tuple[int, ...], symbols: range) -> dict[int, tuple[int, int]]:
    codes: dict[int, tuple[int, int]] = {}
    code, ordered = 0, iter(symbols)
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[next(ordered)] = (code, length)
            code += 1
        code <<= 1
    return codes


def _ycbcr(rgb: RGB) -> tuple[float, float, float]:
    red, green, blue = rgb
    return (
        0.299 * red + 0.587 * green + 0.114 * blue,
        128 - 0.168736 * red - 0.331264 * green + 0.5 * blue,
        128 + 0.5 * red - 0.418688 * green - 0.081312 * blue,
    )


class _MsbBits:
    """Bits packed most significant first, as JPEG and H.264 store them."""

    def __init__(self) -> None:
        self.value, self.count = 0, 0

    def write(self, value: int, width: int) -> None:
        self.value = (self.value << width) | (value & ((1 << width) - 1))
        self.count += width

    def ue(self, value: int) -> None:
        """Exp-Golomb, unsigned (H.264's ue(v))."""
        width = (value + 1).bit_length()
        self.write(value + 1, 2 * width - 1)

    def aligned(self) -> bool:
        return self.count % 8 == 0

    def flush(self, *, pad_with_ones: bool = False) -> bytes:
        pad = -self.count % 8
        self.write((1 << pad) - 1 if pad_with_ones else 0, pad)
        return self.value.to_bytes(self.count // 8, "big")


# --- PNG and lossless WebP ---


def png_image(width: int, height: int, seed: int) -> bytes:
    """An RGB PNG with the same gradient-and-disc picture as the covers."""
    pixel = _cover_pixel(seed, width, height)
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(rows, 9)),
            chunk(b"IEND", b""),
        )
    )


def webp_solid(red: int, green: int, blue: int, width: int = 160, height: int = 90) -> bytes:
    """A lossless WebP of one colour: five one-symbol prefix codes, so no pixel needs a bit."""
    bits: list[tuple[int, int]] = [(0x2F, 8), (width - 1, 14), (height - 1, 14), (0, 1), (0, 3)]
    bits += [(0, 1), (0, 1), (0, 1)]  # no transform, no colour cache, no meta prefix codes
    for symbol in (green, red, blue, 255, 0):  # green, red, blue, alpha, distance
        bits += [(1, 1), (0, 1), (1, 1), (symbol, 8)]  # simple code, one 8-bit symbol
    value, count = 0, 0
    for field_value, width_bits in bits:  # VP8L packs least significant bit first
        value |= field_value << count
        count += width_bits
    payload = value.to_bytes((count + 7) // 8, "little")
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


# --- H.264 (Constrained Baseline, every frame an IDR of I_PCM macroblocks) in MP4 ---


@cache
def mp4_video(colour: RGB, width: int = 96, height: int = 64, frames: int = 8) -> bytes:
    """A playable MP4 of a light band sweeping across `colour`, 4 frames a second."""
    sps, pps = _h264_parameter_sets(width // 16, height // 16)
    samples = [_avcc(_h264_frame(colour, width, height, index, frames)) for index in range(frames)]
    return _mp4(sps, pps, samples, width, height, sample_ms=250)


def _h264_parameter_sets(mbs_wide: int, mbs_high: int) -> tuple[bytes, bytes]:
    sps = _MsbBits()
    sps.write(66, 8)
    sps.write(0xC0, 8)  # constraint_set0 and 1: Constrained Baseline
    sps.write(30, 8)  # level 3.0
    for value in (0, 0, 2, 1):  # sps id, log2_max_frame_num-4, POC type 2, one reference frame
        sps.ue(value)
    sps.write(0, 1)
    sps.ue(mbs_wide - 1)
    sps.ue(mbs_high - 1)
    sps.write(0b1100, 4)  # frame_mbs_only, direct_8x8_inference, no cropping, no VUI
    pps = _MsbBits()
    pps.ue(0)
    pps.ue(0)
    pps.write(0, 2)  # CAVLC, no bottom-field POC
    for value in (0, 0, 0):  # one slice group, one reference in each list
        pps.ue(value)
    pps.write(0, 3)  # no weighted prediction
    for _ in range(3):  # QP, QS and chroma offsets all zero: se(0) is a single 1 bit
        pps.ue(0)
    pps.write(0b100, 3)  # deblocking control present, no constrained intra, no redundant pics
    return _nal(0x67, _rbsp(sps)), _nal(0x68, _rbsp(pps))


def _h264_frame(colour: RGB, width: int, height: int, index: int, frames: int) -> bytes:
    band = width * index / frames
    columns = []  # the picture only changes across, so one (Y, Cb, Cr) per column is enough
    for x in range(width):
        lift = 0.7 * max(0.0, 1 - abs(x - band) / (width * 0.18))
        rgb = [round(c + (255 - c) * lift) for c in colour]
        columns.append([_clip(value) for value in _ycbcr((rgb[0], rgb[1], rgb[2]))])
    head = _MsbBits()
    head.ue(0)  # first macroblock
    head.ue(7)  # I slice, and so are all others in the picture
    head.ue(0)  # pps id
    head.write(0, 4)  # frame_num
    head.ue(index % 2)  # idr_pic_id: consecutive IDRs must differ
    head.write(0, 2)  # dec_ref_pic_marking: keep prior pictures' output, not long-term
    head.ue(0)  # slice_qp_delta = se(0)
    head.ue(1)  # deblocking off
    head.ue(25)  # the first macroblock's mb_type, I_PCM; flush() adds the alignment zeros
    out = bytearray(head.flush())
    for mb_y in range(0, height, 16):
        for mb_x in range(0, width, 16):
            if mb_x or mb_y:
                out += b"\x0d\x00"  # ue(25) and alignment: later macroblocks start on a byte
            span = columns[mb_x : mb_x + 16]
            out += bytes(column[0] for column in span) * 16
            out += bytes(column[1] for column in span[::2]) * 8
            out += bytes(column[2] for column in span[::2]) * 8
    out.append(0x80)  # rbsp_stop_one_bit and the alignment zeros
    return _nal(0x65, bytes(out))


def _clip(value: float) -> int:
    return min(235, max(16, round(value)))  # video range, and never a zero byte


def _rbsp(bits: _MsbBits) -> bytes:
    bits.write(1, 1)  # rbsp_stop_one_bit, then zeros to the byte boundary
    return bits.flush()


def _nal(header: int, payload: bytes) -> bytes:
    """A NAL unit with emulation prevention: no 00 00 0x (x <= 3) may appear inside."""
    out, zeros = bytearray([header]), 0
    for byte in payload:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _avcc(nal: bytes) -> bytes:
    return struct.pack(">I", len(nal)) + nal


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", len(body) + 8) + kind + body


def _full_box(kind: bytes, version_flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version_flags), *parts)


def _mp4(
    sps: bytes, pps: bytes, samples: list[bytes], width: int, height: int, sample_ms: int
) -> bytes:
    duration = sample_ms * len(samples)
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    avcc = _box(
        b"avcC",
        bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),
        struct.pack(">H", len(sps)),
        sps,
        b"\x01",
        struct.pack(">H", len(pps)),
        pps,
    )
    avc1 = _box(
        b"avc1",
        b"\x00" * 6,
        struct.pack(">H", 1),
        b"\x00" * 16,
        struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1),
        b"\x00" * 32,
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )

    def moov(first_sample_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full_box(b"stsd", 0, struct.pack(">I", 1), avc1),
            _full_box(b"stts", 0, struct.pack(">III", 1, len(samples), sample_ms)),
            _full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, len(samples), 1)),
            _full_box(
                b"stsz",
                0,
                struct.pack(">II", 0, len(samples)),
                b"".join(struct.pack(">I", len(sample)) for sample in samples),
            ),
            _full_box(b"stco", 0, struct.pack(">II", 1, first_sample_offset)),
        )
        dinf = _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1), _full_box(b"url ", 1)))
        minf = _box(b"minf", _full_box(b"vmhd", 1, b"\x00" * 8), dinf, stbl)
        mdia = _box(
            b"mdia",
            _full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, 1000, duration, 0x55C4, 0)),
            _full_box(b"hdlr", 0, b"\x00" * 4, b"vide", b"\x00" * 12, b"VideoHandler\x00"),
            minf,
        )
        tkhd = _full_box(
            b"tkhd",
            3,
            struct.pack(">IIIII", 0, 0, 1, 0, duration),
            b"\x00" * 16,
            matrix,
            struct.pack(">II", width << 16, height << 16),
        )
        mvhd = _full_box(
            b"mvhd",
            0,
            struct.pack(">IIIIIH", 0, 0, 1000, duration, 0x10000, 0x100),
            b"\x00" * 10,
            matrix,
            b"\x00" * 24,
            struct.pack(">I", 2),
        )
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    offset = len(ftyp) + len(moov(0)) + 8  # moov first, so a player can start at once
    return ftyp + moov(offset) + _box(b"mdat", *samples)
