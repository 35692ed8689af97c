"""Baseline JPEG, 4:4:4, each 8x8 block a flat colour plus a linear ramp across and down.

A real encoder runs a DCT over every block; that is slow in pure Python. A scene is smooth, so
each block is described by its mean (the DC coefficient) and its slope across and down, which
are the first two AC coefficients: a ramp `g * (x - 3.5)` over eight pixels has AC1 =
`sqrt(2) * g * sum((x - 3.5) * cos((2x + 1) * pi / 16))`, and little else. The blocks then
join into smooth gradients, where flat blocks would show a mosaic. Two fixed Huffman tables
cover every symbol this encoder emits, so none is computed per picture.
"""

from __future__ import annotations

import functools
import math
import struct

from archiver.standin.encoders.bits import MsbBits
from archiver.standin.encoders.scene import Scene

# AC1 (or AC2) of a block whose samples rise by one per pixel across (or down) it: see above.
_RAMP_GAIN = -18.2216
# Quarter-block samples are 4 pixels apart and two pairs are averaged: a slope per pixel is
# (sum of the two differences) / 8.
_SLOPE_GAIN = _RAMP_GAIN / 8
# DC quantised by 8 keeps whole sample levels (the DC of a flat block is 8 * (level - 128));
# the two slopes by 1 keep ramps as gentle as 0.06 levels a pixel. Nothing else is coded.
_QUANT = bytes([8, 1, 1] + [16] * 61)
_MAX_AC = 1023  # the largest magnitude the AC table below has a size category for

# The standard's luminance DC table (K.3): sizes 0 to 11, for DC differences up to 2047.
_DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_SYMBOLS = bytes(range(12))
# AC symbols are (zero run << 4) | size: end-of-block, AC1 with run 0 and AC2 after a zero AC1
# with run 1. The lengths leave the all-ones codes unused, as JPEG requires.
_AC_COUNTS = (0, 1, 2, 4, 4, 4, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_AC_SYMBOLS = bytes([0x00, *range(0x01, 0x0B), *range(0x11, 0x1B)])


def _canonical_codes(counts: tuple[int, ...], symbols: bytes) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length) of the canonical Huffman code JPEG builds from a DHT."""
    codes: dict[int, tuple[int, int]] = {}
    code, ordered = 0, iter(symbols)
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[next(ordered)] = (code, length)
            code += 1
        code <<= 1
    return codes


_DC_CODES = _canonical_codes(_DC_COUNTS, _DC_SYMBOLS)
_AC_CODES = _canonical_codes(_AC_COUNTS, _AC_SYMBOLS)


def jpeg_image(scene: Scene, width: int = 256, height: int = 144) -> bytes:
    """A baseline JPEG of `scene`, `width` x `height` pixels."""
    blocks_wide, blocks_high = math.ceil(width / 8), math.ceil(height / 8)
    # Four samples a block, at the centres of its 4x4 quarters: 4 pixels apart each way.
    columns = 2 * blocks_wide
    canvas = scene.ycbcr().paint(width, height, step=4, columns=columns, rows=2 * blocks_high)
    coded = [_blocks(samples, columns, blocks_high) for samples in canvas.channels]
    bits = MsbBits()
    predictors = [0, 0, 0]
    for block in range(blocks_wide * blocks_high):
        for component, (means, slopes) in enumerate(coded):
            dc = means[block]
            code, width_bits = _coded(0x100, dc - predictors[component])
            predictors[component] = dc
            more, more_bits = slopes[block]
            bits.write((code << more_bits) | more, width_bits + more_bits)
    scan = bits.flush(pad_with_ones=True).replace(b"\xff", b"\xff\x00")
    components = b"".join(bytes((ident, 0x11, 0)) for ident in (1, 2, 3))
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, b"\x00" + _QUANT),
            _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components),
            _segment(0xC4, b"\x00" + bytes(_DC_COUNTS) + _DC_SYMBOLS),
            _segment(0xC4, b"\x10" + bytes(_AC_COUNTS) + _AC_SYMBOLS),
            _segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00"),
            scan,
            b"\xff\xd9",
        )
    )


def _blocks(
    samples: list[float], columns: int, blocks_high: int
) -> tuple[list[int], list[tuple[int, int]]]:
    """Per block, in order: the DC level, and the coded rest (AC1, AC2, end of block).

    Whole rows at a time, by slicing and comprehensions: a loop per block is 3x slower.
    """
    tl: list[float] = []  # the top-left, top-right, bottom-left and bottom-right samples
    tr: list[float] = []
    bl: list[float] = []
    br: list[float] = []
    for row in range(0, 2 * blocks_high, 2):
        top, bottom = row * columns, (row + 1) * columns
        tl += samples[top:bottom:2]
        tr += samples[top + 1 : bottom : 2]
        bl += samples[bottom : bottom + columns : 2]
        br += samples[bottom + 1 : bottom + columns : 2]
    means = [round((a + b + c + d) / 4) - 128 for a, b, c, d in zip(tl, tr, bl, br, strict=True)]
    slopes = [
        _slopes(round((b - a + d - c) * _SLOPE_GAIN), round((c - a + d - b) * _SLOPE_GAIN))
        for a, b, c, d in zip(tl, tr, bl, br, strict=True)
    ]
    return means, slopes


@functools.cache
def _slopes(across: int, down: int) -> tuple[int, int]:
    """AC1 and AC2 of a block, then its end, coded as one (bits, width)."""
    across = max(-_MAX_AC, min(_MAX_AC, across))
    down = max(-_MAX_AC, min(_MAX_AC, down))
    parts = []
    if across:
        parts.append(_coded(0x00, across))
        if down:
            parts.append(_coded(0x00, down))
    elif down:
        parts.append(_coded(0x10, down))  # AC1 is zero: a run of one zero, then AC2
    parts.append(_AC_CODES[0x00])  # end of block
    value, width = 0, 0
    for more, more_bits in parts:
        value, width = (value << more_bits) | more, width + more_bits
    return value, width


@functools.cache
def _coded(table: int, value: int) -> tuple[int, int]:
    """A coefficient's Huffman code and magnitude bits, as one (bits, width).

    `table` 0x100 codes a DC difference; otherwise it is the zero run (high nibble) of an AC
    symbol. Cached: a picture codes the same few hundred values thousands of times.
    """
    size = abs(value).bit_length()
    code, length = _DC_CODES[size] if table == 0x100 else _AC_CODES[table | size]
    magnitude = value if value >= 0 else value + (1 << size) - 1
    return (code << size) | magnitude, length + size


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body
