"""Media file contents of the stand-in: deterministic bytes per path, made on demand.

A file is identified by its URL path (decoded, without the query: S3 ignores `?v=`, so an old
version URL serves the current file, exactly like the real bucket). Its bytes, size, ETag and
Last-Modified are a pure function of the seed, the path and how many times the file was
replaced, so nothing is stored but a replacement counter per replaced path.

By default a file is a valid header followed by random bytes, its size drawn between the
dataset's bounds: tests choose sizes, and the bytes are made in 64 KiB blocks, each from its
own seeded generator, so a range or a stream never needs the whole file in memory and a
resumed download gets exactly the bytes it would have got. With `decodable` media, a file is
a real picture or video (see `encoders`), whole in memory and as big as its encoding; the
pictures and the video of one task show one scene, as a real service's cover is a frame of
its video.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from pathlib import PurePosixPath

from archiver.standin.encoders import Scene, jpeg_image, mp4_video, png_image, webp_image

BLOCK_SIZE = 64 * 1024

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}

# Folders whose extensionless files are videos; every other extensionless file is a JPEG,
# because the generated data only leaves covers and previews without an extension.
_VIDEO_FOLDERS = frozenset({"video", "videos", "original"})

# A fixed instant inside the data's time span, so first Last-Modified values are stable.
_BASE_MTIME = 1_700_000_000


def _mp4_header(size: int) -> bytes:
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"mp42", 0, b"mp42", b"isom")
    return ftyp + struct.pack(">I4s", max(size - 24, 8), b"mdat")


def _jpeg_header(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def _png_header(size: int) -> bytes:
    ihdr = struct.pack(">II5B", 640, 360, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr


def _webp_header(size: int) -> bytes:
    return b"RIFF" + struct.pack("<I", size - 8) + b"WEBPVP8 "


_HEADERS = {
    "video/mp4": _mp4_header,
    "image/jpeg": _jpeg_header,
    "image/png": _png_header,
    "image/webp": _webp_header,
}

_MIN_SIZE = 64  # room for the longest magic header

# What a decodable file of each type is (each encoder's default size suits the catalog's
# cards, about 240 pixels wide); other types stay random bytes.
_ENCODERS: dict[str, Callable[[Scene], bytes]] = {
    "video/mp4": mp4_video,
    "image/jpeg": jpeg_image,
    "image/png": png_image,
    "image/webp": webp_image,
}
# Encoded files kept, the least recently used dropped first: a download may ask for a file's
# size, then its bytes, perhaps in ranges, and no ask should encode it again. Files are 3 to
# 100 KB; encoding one takes 5 to 15 ms, a template's WebP cover about 70.
_ENCODED_KEPT = 64


def content_type_for(path: str) -> str:
    """The Content-Type the media host sends for `path`."""
    pure = PurePosixPath(path)
    suffix = pure.suffix.lower()
    if suffix:
        return CONTENT_TYPES.get(suffix, "application/octet-stream")
    if _VIDEO_FOLDERS & set(pure.parent.parts):
        return "video/mp4"
    return "image/jpeg"


@dataclass(frozen=True, slots=True)
class MediaFile:
    """One version of one media file: what the host advertises and how to make its bytes."""

    path: str
    size: int
    etag: str  # quoted, as sent on the wire
    last_modified: str  # an HTTP date
    content_type: str
    key: bytes  # seeds the bytes of this version
    # The whole file, when it is a real picture or video (kept out of reprs: 100 KB of bytes).
    encoded: bytes | None = field(default=None, repr=False)

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes `[start, end)` in chunks of at most one block."""
        stop = self.size if end is None else min(end, self.size)
        if self.encoded is not None:
            for pos in range(start, stop, BLOCK_SIZE):
                yield self.encoded[pos : min(pos + BLOCK_SIZE, stop)]
            return
        pos = start
        while pos < stop:
            number, offset = divmod(pos, BLOCK_SIZE)
            block = self._block(number)
            chunk = block[offset : offset + (stop - pos)]
            yield chunk
            pos += len(chunk)

    def data(self) -> bytes:
        """The whole file (tests only: files are small there)."""
        return b"".join(self.read())

    def _block(self, number: int) -> bytes:
        length = min(BLOCK_SIZE, self.size - number * BLOCK_SIZE)
        seed = int.from_bytes(hashlib.sha256(self.key + number.to_bytes(8, "big")).digest())
        block = random.Random(seed).randbytes(length)
        if number == 0:
            make_header = _HEADERS.get(self.content_type)
            if make_header is not None:
                header = make_header(self.size)
                block = header + block[len(header) :]
        return block


class MediaContents:
    """The media files of one dataset: sizes, validators and bytes, per path and version."""

    def __init__(
        self, seed: int, min_bytes: int, max_bytes: int, *, decodable: bool = False
    ) -> None:
        self._seed = seed
        self._min = max(min_bytes, _MIN_SIZE)
        self._max = max(max_bytes, self._min)
        self._decodable = decodable
        # path -> (times replaced, Last-Modified as Unix seconds)
        self._replaced: dict[str, tuple[int, int]] = {}
        self._encoded: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def file(self, path: str) -> MediaFile:
        """The current version of the file at `path` (whether or not a record uses it)."""
        version, mtime = self._replaced.get(path, (0, 0))
        key = hashlib.sha256(f"{self._seed}\0{path}\0{version}".encode()).digest()
        content_type = content_type_for(path)
        if content_type == "application/json":  # a subtitle timeline: always real JSON
            encoded: bytes | None = subtitles_json(key)
        elif self._decodable:
            encoded = self._encode(path, version, content_type)
        else:
            encoded = None
        if encoded is not None:
            size = len(encoded)
        else:
            size = self._min + int.from_bytes(key[:8]) % (self._max - self._min + 1)
        if not mtime:
            mtime = _BASE_MTIME + int.from_bytes(key[8:12]) % 50_000_000
        return MediaFile(
            path=path,
            size=size,
            etag=f'"{key[12:28].hex()}"',
            last_modified=formatdate(mtime, usegmt=True),
            content_type=content_type,
            key=key,
            encoded=encoded,
        )

    def replace(self, path: str) -> MediaFile:
        """Put new content at `path`: new bytes, a new ETag and a later Last-Modified."""
        before = self.file(path)
        version, _ = self._replaced.get(path, (0, 0))
        previous = _parse_http_date(before.last_modified)
        # One second later at least, so that Last-Modified changes even at HTTP's resolution.
        self._replaced[path] = (version + 1, max(int(time.time()), previous + 1))
        return self.file(path)

    def _encode(self, path: str, version: int, content_type: str) -> bytes | None:
        encoder = _ENCODERS.get(content_type)
        if encoder is None:
            return None
        cached = self._encoded.get((path, version))
        if cached is None:
            scene = f"{self._seed}\0{scene_name(path)}\0{version}"
            cached = self._encoded[(path, version)] = encoder(Scene.from_seed(scene))
            if len(self._encoded) > _ENCODED_KEPT:
                self._encoded.popitem(last=False)
        else:
            self._encoded.move_to_end((path, version))
        return cached


def subtitles_json(key: bytes) -> bytes:
    """A subtitle timeline as Chanjing's `subtitle_data_url` serves it, made from `key`."""
    rng = random.Random(key)
    lines, start = [], 0
    for number in range(rng.randrange(2, 6)):
        end = start + rng.randrange(800, 4000)
        lines.append(
            {"start_time": start, "end_time": end, "text": f"第{number + 1}句 line {number}"}
        )
        start = end
    return json.dumps({"subtitles": lines}, ensure_ascii=False).encode()


def scene_name(path: str) -> str:
    """What the picture of the file at `path` is painted from: one name for a task's files.

    A task keeps its files in a folder of its own, named by its numeric id, or side by side
    with other tasks' under one stem in sibling folders (`lip-sync/<id>.mp4` and `<id>.jpg`,
    `thumb/<name>.png` and `video/<name>.mp4`).
    """
    pure = PurePosixPath(path)
    if pure.parent.name.isdigit():
        return str(pure.parent)
    return f"{pure.parent.parent}/{pure.stem}"


def _parse_http_date(value: str) -> int:
    return int(parsedate_to_datetime(value).timestamp())
