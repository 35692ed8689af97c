"""Short MP4 videos of a scene: a glowing orb circles over it, in a loop.

The frames are H.264 (see `h264`): the scene is drawn once, and only the macroblocks the orb
covers or leaves change from one frame to the next, so a video costs little more than its
first frame, to make and to store. The container holds one video track with the `moov` box
before the media data, so a player can start before it has the whole file.
"""

from __future__ import annotations

import functools
import itertools
import random
import struct
from dataclasses import dataclass

from archiver.standin.encoders import h264
from archiver.standin.encoders.scene import Scene, to_bytes, to_ycbcr

# The cosine of k/16 of a turn, written out: computing it could differ in the last bit between
# C libraries, and the same seed must give the same bytes everywhere. sin(k) is cos(k - 4).
_HALF_TURN = (1.0, 0.92388, 0.70711, 0.38268, 0.0, -0.38268, -0.70711, -0.92388)
_COS = _HALF_TURN + tuple(-c for c in _HALF_TURN)
_CIRCLE = tuple((_COS[k], _COS[(k - 4) % 16]) for k in range(16))
_ORB_COLOUR = (255.0, 248.0, 225.0)  # a warm white
_ORB_RADIUS = 0.13  # of the height


def mp4_video(scene: Scene, width: int = 192, height: int = 108, fps: int = 8) -> bytes:
    """A two-second loop of `scene`, `width` x `height` (even), `fps` frames a second.

    `fps` must divide 1000: the track counts time in milliseconds.
    """
    frame = _Frame(-(-width // 16) * 16, -(-height // 16) * 16)
    # The scene is painted at chroma resolution and its luma interpolated up: a scene has no
    # detail finer than that, and a quarter of the samples is a quarter of the time.
    canvas = scene.ycbcr(video_range=True).paint(
        width, height, step=2, columns=frame.width // 2, rows=frame.height // 2
    )
    # In video range no sample is zero, so no emulation prevention bytes are ever needed.
    luma = _doubled(to_bytes(canvas.channels[0]), frame.width // 2)
    cb, cr = to_bytes(canvas.channels[1]), to_bytes(canvas.channels[2])
    background = [frame.macroblock(luma, cb, cr, n) for n in range(frame.macroblock_count)]
    orb = _orb(2 * round(_ORB_RADIUS * height / 2))  # even: chroma gets half of it
    rng = random.Random(repr(scene))
    start, turn = rng.randrange(16), rng.choice((1, -1))
    centre_x, centre_y = rng.uniform(0.35, 0.65) * width, rng.uniform(0.4, 0.6) * height
    pictures = []
    previous: list[bytes] = []
    for index in range(2 * fps):
        x, y = _CIRCLE[(start + turn * index * 16 // (2 * fps)) % 16]
        # Even coordinates, so that the orb sits alike on the luma and the chroma grid.
        left = 2 * round((centre_x + 0.25 * width * x - orb.radius) / 2)
        top = 2 * round((centre_y + 0.3 * height * y - orb.radius) / 2)
        planes = orb.drawn_on(frame, (luma, cb, cr), left, top)
        blocks = list(background)  # untouched macroblocks stay the very same objects
        for number in frame.macroblocks_under(left, top, 2 * orb.radius):
            blocks[number] = frame.macroblock(*planes, number)
        if index == 0:
            pictures.append(h264.idr_picture(blocks))
        else:
            pictures.append(h264.p_picture(blocks, previous, index))
        previous = blocks
    sps, pps = h264.parameter_sets(
        frame.width, frame.height, crop_right=frame.width - width, crop_bottom=frame.height - height
    )
    samples = [struct.pack(">I", len(nal)) + nal for nal in pictures]
    return _mp4(sps, pps, samples, width, height, fps)


_Planes = tuple[bytes, bytes, bytes]


@dataclass(frozen=True, slots=True)
class _Frame:
    """The coded size of the frames (whole macroblocks) and how to cut them into macroblocks."""

    width: int
    height: int

    @property
    def macroblock_count(self) -> int:
        return (self.width // 16) * (self.height // 16)

    def macroblock(self, luma: bytes, cb: bytes, cr: bytes, number: int) -> bytes:
        """Macroblock `number`'s samples, in the order `h264` wants them."""
        top, left = divmod(number, self.width // 16)
        base, half = top * 16 * self.width + left * 16, self.width // 2
        luma_rows = range(base, base + 16 * self.width, self.width)
        chroma_base = top * 8 * half + left * 8
        chroma_rows = range(chroma_base, chroma_base + 8 * half, half)
        return b"".join(
            (
                b"".join(luma[start : start + 16] for start in luma_rows),
                b"".join(cb[start : start + 8] for start in chroma_rows),
                b"".join(cr[start : start + 8] for start in chroma_rows),
            )
        )

    def macroblocks_under(self, left: int, top: int, size: int) -> list[int]:
        """The macroblocks a `size`-wide square with its corner at (`left`, `top`) touches."""
        columns = range(max(0, left // 16), min(self.width // 16, (left + size - 1) // 16 + 1))
        rows = range(max(0, top // 16), min(self.height // 16, (top + size - 1) // 16 + 1))
        return [y * (self.width // 16) + x for y in rows for x in columns]


def _doubled(half: bytes, half_width: int) -> bytes:
    """A plane at twice the width and height, new samples the mean of their neighbours."""
    rows = []
    for start in range(0, len(half), half_width):
        row = half[start : start + half_width]
        line = bytearray(2 * half_width)
        line[0::2] = row
        line[1::2] = bytes([(a + b + 1) >> 1 for a, b in itertools.pairwise(row)] + [row[-1]])
        rows.append(bytes(line))
    out = []
    for upper, lower in itertools.pairwise([*rows, rows[-1]]):
        out += [upper, bytes([(a + b + 1) >> 1 for a, b in zip(upper, lower, strict=True)])]
    return b"".join(out)


@functools.cache
def _orb(radius: int) -> _Orb:
    return _Orb(radius)  # its tables take longer to make than a frame to draw: make them once


class _Orb:
    """A round light, drawn with byte translation tables: no arithmetic per sample in Python.

    Its blend weights come in eighths, and each row is a few runs of one weight; a run is
    blended by `bytes.translate` with the table of its weight.
    """

    def __init__(self, radius: int) -> None:
        self.radius = radius  # in luma samples; chroma has half as many each way
        goals = [round(value) for value in to_ycbcr(_ORB_COLOUR, video_range=True)]
        tables = [
            [bytes(round(v + (goal - v) * level / 8) for v in range(256)) for level in range(9)]
            for goal in goals
        ]
        self.luma = [(y, x, n, tables[0][level]) for y, x, n, level in _runs(radius)]
        self.chroma = [
            (y, x, n, tables[1][level], tables[2][level]) for y, x, n, level in _runs(radius // 2)
        ]

    def drawn_on(self, frame: _Frame, planes: _Planes, left: int, top: int) -> _Planes:
        """Copies of the planes with the orb's corner at (`left`, `top`), even numbers."""
        luma, cb, cr = bytearray(planes[0]), bytearray(planes[1]), bytearray(planes[2])
        width, half = frame.width, frame.width // 2
        size = 2 * self.radius
        if 0 <= left <= width - size and 0 <= top <= frame.height - size:
            # Wholly inside, as it mostly is: no run needs clipping.
            for y, x, length, table in self.luma:
                start = (top + y) * width + left + x
                luma[start : start + length] = luma[start : start + length].translate(table)
            for y, x, length, cb_table, cr_table in self.chroma:
                start = (top // 2 + y) * half + left // 2 + x
                cb[start : start + length] = cb[start : start + length].translate(cb_table)
                cr[start : start + length] = cr[start : start + length].translate(cr_table)
            return bytes(luma), bytes(cb), bytes(cr)
        for y, x, length, table in self.luma:
            span = _clipped(width, frame.height, left + x, top + y, length)
            if span is not None:
                luma[span] = luma[span].translate(table)
        for y, x, length, cb_table, cr_table in self.chroma:
            span = _clipped(half, frame.height // 2, left // 2 + x, top // 2 + y, length)
            if span is not None:
                cb[span] = cb[span].translate(cb_table)
                cr[span] = cr[span].translate(cr_table)
        return bytes(luma), bytes(cb), bytes(cr)


def _runs(radius: int) -> list[tuple[int, int, int, int]]:
    """(row, first column, length, weight in eighths) of an orb, from its top-left corner."""
    runs = []
    for y in range(2 * radius):
        dy = y + 0.5 - radius
        levels = []
        for x in range(2 * radius):
            dx = x + 0.5 - radius
            d2 = (dx * dx + dy * dy) / (radius * radius)
            # Bright to near the rim, then a short fade: a ball of light, not a flat disc.
            levels.append(round(7.6 * min(1.0, (1.0 - d2) * 3.0)) if d2 < 1.0 else 0)
        x = 0
        while x < len(levels):
            end = x
            while end < len(levels) and levels[end] == levels[x]:
                end += 1
            if levels[x]:
                runs.append((y, x, end - x, levels[x]))
            x = end
    return runs


def _clipped(width: int, height: int, x: int, y: int, length: int) -> slice | None:
    """The part of a run of `length` samples from (`x`, `y`) inside the plane, if any."""
    first, stop = max(0, x), min(width, x + length)
    if 0 <= y < height and first < stop:
        return slice(y * width + first, y * width + stop)
    return None


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", len(body) + 8) + kind + body


def _full_box(kind: bytes, version_flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", version_flags), *parts)


def _mp4(sps: bytes, pps: bytes, samples: list[bytes], width: int, height: int, fps: int) -> bytes:
    sample_ms = 1000 // fps
    duration = sample_ms * len(samples)
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    avcc = _box(
        b"avcC",
        bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),  # 4-byte lengths, one SPS
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
            _full_box(b"stss", 0, struct.pack(">II", 1, 1)),  # only the first is a key frame
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
            3,  # enabled, in the movie
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
