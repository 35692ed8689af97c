"""Lossless pictures: PNG, and WebP in its lossless (VP8L) form.

PNG is zlib over raw RGB rows. VP8L has no zlib to lean on: pixels are entropy coded with
Huffman codes built here from their histogram, after two of the format's transforms make the
numbers small (subtract green, then predict each pixel from its left neighbour), which on a
smooth scene leaves mostly zeros and ones to code.
"""

from __future__ import annotations

import heapq
import itertools
import struct
import zlib
from collections.abc import Sequence

from archiver.standin.encoders.bits import LsbBits
from archiver.standin.encoders.scene import Scene, to_bytes


def png_image(scene: Scene, width: int = 160, height: int = 90) -> bytes:
    """An RGB PNG of `scene`, `width` x `height` pixels."""
    red, green, blue = (to_bytes(channel) for channel in scene.paint(width, height).channels)
    rows = bytearray()
    for row in range(height):
        pixels = bytearray(3 * width)
        span = slice(row * width, (row + 1) * width)
        pixels[0::3], pixels[1::3], pixels[2::3] = red[span], green[span], blue[span]
        rows += b"\x00" + pixels  # filter type 0: zlib alone does well on a gradient
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


# --- WebP, lossless ---

_GREEN_ALPHABET = 256 + 24  # literals, then backward-reference lengths (never used here)
_CODE_LENGTH_ORDER = (17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
_SUBTRACT_GREEN, _PREDICTOR = 2, 0
_PREDICT_LEFT = 1


def webp_image(scene: Scene, width: int = 256, height: int = 144) -> bytes:
    """A lossless WebP of `scene`, `width` x `height` pixels (at most 16384 each way)."""
    red, green, blue = (to_bytes(channel) for channel in scene.paint(width, height).channels)
    # Subtract green: red and blue become differences from green, which vary far less.
    red = bytes((r - g) & 0xFF for r, g in zip(red, green, strict=True))
    blue = bytes((b - g) & 0xFF for b, g in zip(blue, green, strict=True))
    planes = [_left_residuals(plane, width) for plane in (green, red, blue)]

    bits = LsbBits()
    bits.write(0x2F, 8)  # the VP8L signature
    bits.write(width - 1, 14)
    bits.write(height - 1, 14)
    bits.write(0, 1)  # alpha is not used: every pixel is opaque
    bits.write(0, 3)  # version
    bits.write(1, 1)
    bits.write(_SUBTRACT_GREEN, 2)
    bits.write(1, 1)
    bits.write(_PREDICTOR, 2)
    bits.write(7, 3)  # predictor blocks of 512x512 pixels, each with its own mode ...
    bits.write(0, 1)  # ... in an image of modes without a colour cache, whose codes have
    for symbol in (_PREDICT_LEFT, 0, 0, 0, 0):  # one symbol each (green carries the mode),
        _simple_code(bits, symbol)  # so its pixels take no bits at all
    bits.write(0, 1)  # no more transforms
    bits.write(0, 1)  # no colour cache
    bits.write(0, 1)  # one set of prefix codes for the whole picture
    tables = [
        _normal_code(bits, plane, _GREEN_ALPHABET if index == 0 else 256)
        for index, plane in enumerate(planes)
    ]
    _simple_code(bits, 0)  # alpha: 255 everywhere, predicted exactly, so always 0
    _simple_code(bits, 0)  # distance: never used
    green_codes, red_codes, blue_codes = tables
    # A smooth picture repeats few (green, red, blue) residuals: code each once, as one write.
    pixel_codes: dict[tuple[int, int, int], tuple[int, int]] = {}
    for pixel in zip(*planes, strict=True):
        code = pixel_codes.get(pixel)
        if code is None:
            (g, g_bits), (r, r_bits), (b, b_bits) = (
                green_codes[pixel[0]],
                red_codes[pixel[1]],
                blue_codes[pixel[2]],
            )
            code = g | (r << g_bits) | (b << (g_bits + r_bits)), g_bits + r_bits + b_bits
            pixel_codes[pixel] = code
        bits.write(*code)
    payload = bits.flush()
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _left_residuals(plane: bytes, width: int) -> bytes:
    """Each sample minus its left neighbour's; a row's first minus the one above it.

    The very first sample is predicted as 0 (opaque black), as the decoder does.
    """
    out = bytearray(len(plane))
    out[1:] = bytes([(b - a) & 0xFF for a, b in itertools.pairwise(plane)])
    out[0] = plane[0]
    for start in range(width, len(plane), width):
        out[start] = (plane[start] - plane[start - width]) & 0xFF
    return bytes(out)


def _simple_code(bits: LsbBits, symbol: int) -> None:
    """A prefix code of one 8-bit symbol: it costs no bits to send."""
    bits.write(1, 1)  # simple code
    bits.write(0, 1)  # of one symbol
    bits.write(1, 1)  # written in 8 bits
    bits.write(symbol, 8)


def _normal_code(bits: LsbBits, plane: bytes, alphabet: int) -> list[tuple[int, int]]:
    """Write a Huffman code for `plane`'s samples; return symbol -> (bits to write, width)."""
    counts = [0] * alphabet
    for value in plane:
        counts[value] += 1
    if sum(1 for count in counts if count) == 1:
        counts[plane[0] ^ 1] = 1  # a real code needs two symbols; the spare one is never sent
    lengths = huffman_lengths(counts, 15)
    length_counts = [0] * 19
    for length in lengths:
        length_counts[length] += 1
    if sum(1 for count in length_counts if count) == 1:
        length_counts[length_counts.index(0)] = 1  # the same: keep the code two symbols wide
    length_lengths = huffman_lengths(length_counts, 7)
    written = max(4, 1 + max(i for i, s in enumerate(_CODE_LENGTH_ORDER) if length_lengths[s]))
    bits.write(0, 1)  # a normal code
    bits.write(written - 4, 4)
    for symbol in _CODE_LENGTH_ORDER[:written]:
        bits.write(length_lengths[symbol], 3)
    bits.write(0, 1)  # a length for every symbol of the alphabet follows
    length_codes = _lsb_codes(length_lengths)
    for length in lengths:
        bits.write(*length_codes[length])
    return _lsb_codes(lengths)


def huffman_lengths(counts: Sequence[int], limit: int) -> list[int]:
    """Code lengths of a complete prefix code for the used symbols, none over `limit` bits.

    A plain Huffman code, rebuilt with flattened counts while its longest code is too long:
    halving keeps every used symbol used and tends to equal counts, whose code is balanced.
    """
    weights = list(counts)
    while True:
        lengths = [0] * len(weights)
        heap: list[tuple[int, int, tuple[int, ...]]] = [
            (weight, symbol, (symbol,)) for symbol, weight in enumerate(weights) if weight
        ]
        heapq.heapify(heap)
        tiebreak = len(weights)
        while len(heap) > 1:
            first, _, first_symbols = heapq.heappop(heap)
            second, _, second_symbols = heapq.heappop(heap)
            for symbol in first_symbols + second_symbols:
                lengths[symbol] += 1
            heapq.heappush(heap, (first + second, tiebreak, first_symbols + second_symbols))
            tiebreak += 1
        if max(lengths) <= limit:
            return lengths
        weights = [(weight + 1) // 2 for weight in weights]


def _lsb_codes(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """The canonical codes of `lengths`, bit-reversed: VP8L reads a code from its low end."""
    codes = [(0, 0)] * len(lengths)
    code = 0
    for length in range(1, max(lengths) + 1):
        for symbol, symbol_length in enumerate(lengths):
            if symbol_length == length:
                codes[symbol] = (int(f"{code:0{length}b}"[::-1], 2), length)
                code += 1
        code <<= 1
    return codes
