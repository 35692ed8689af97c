"""Pictures painted from a seed: the one drawing that every encoder of the stand-in shows.

A scene is a smooth two-colour gradient in a random direction with a few light or dark discs
on it, some glowing, some with a soft edge. It is defined on the unit square (discs are kept
round at the picture's aspect ratio), so a 160x90 thumb, a 256x144 cover and the frames of a
video painted from one seed show one picture. Only arithmetic and `sqrt` are used, which IEEE
floating point rounds exactly, never `sin` or `pow`, whose last bits may differ between C
libraries: the same seed gives the same bytes everywhere.
"""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass, replace

RGB = tuple[int, int, int]
Colour = tuple[float, float, float]
"""Three channels, 0 to 255: RGB, or YCbCr once a scene is converted with `ycbcr`."""


def to_ycbcr(rgb: Colour, *, video_range: bool = False) -> Colour:
    """BT.601 YCbCr: full range as JPEG has it, or the video range (16-235) H.264 players assume.

    Affine, so a blend of two colours converts to the blend of their conversions: a scene can
    be painted in either space.
    """
    red, green, blue = rgb
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    cb = 128 - 0.168736 * red - 0.331264 * green + 0.5 * blue
    cr = 128 + 0.5 * red - 0.418688 * green - 0.081312 * blue
    if video_range:
        return (
            16 + luma * (219 / 255),
            128 + (cb - 128) * (224 / 255),
            128 + (cr - 128) * (224 / 255),
        )
    return luma, cb, cr


def _hsv(h: float, s: float, v: float) -> RGB:
    red, green, blue = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return round(red * 255), round(green * 255), round(blue * 255)


@dataclass(frozen=True, slots=True)
class Disc:
    """A round shape: pixels inside move towards `colour`, most at the centre."""

    x: float  # centre, as a fraction of the width
    y: float  # centre, as a fraction of the height
    radius: float  # as a fraction of the height
    colour: Colour
    strength: float  # how far the centre moves towards `colour`, 0 to 1
    edge: float  # 0 for a glow that fades from the centre; above 1, a disc with a soft rim

    def weights(self, distances: list[float]) -> list[float]:
        """The blend weights at squared distances (in radii) from the centre."""
        strength, edge = self.strength, self.edge
        if edge:
            return [strength * min(1.0, (1.0 - d) * edge) if d < 1.0 else 0.0 for d in distances]
        return [strength * (1.0 - d) * (1.0 - d) if d < 1.0 else 0.0 for d in distances]


@dataclass(frozen=True, slots=True)
class Canvas:
    """Channel samples of a scene on a grid, row by row, `step` pixels apart, each centred in
    its step; `draw` changes them in place."""

    columns: int
    rows: int
    step: float
    width: int  # of the picture, in pixels
    height: int  # of the picture, in pixels: what disc radii are fractions of
    channels: tuple[list[float], list[float], list[float]]

    def draw(self, disc: Disc) -> None:
        """Blend `disc` in, touching only the samples inside it."""
        cx, cy, radius = disc.x * self.width, disc.y * self.height, disc.radius * self.height
        step, columns = self.step, self.columns
        first = max(0, math.floor((cx - radius) / step - 0.5))
        stop = min(columns, math.ceil((cx + radius) / step + 0.5))
        scale = 1.0 / (radius * radius)
        # Row by row, one list comprehension per pass: a Python loop per sample is 3x slower.
        offsets = [(col + 0.5) * step - cx for col in range(first, stop)]
        across = [x * x * scale for x in offsets]
        for row in range(max(0, math.floor((cy - radius) / step - 0.5)), self.rows):
            offset = (row + 0.5) * step - cy
            down = offset * offset * scale
            if down >= 1.0:
                if offset > 0:
                    break
                continue
            # Only the chord of the disc on this row (sqrt is exact in IEEE arithmetic).
            half = radius * math.sqrt(1.0 - down)
            left = max(first, math.floor((cx - half) / step - 0.5))
            right = min(stop, math.ceil((cx + half) / step + 0.5))
            weights = disc.weights([x + down for x in across[left - first : right - first]])
            span = slice(row * columns + left, row * columns + right)
            for channel, goal in zip(self.channels, disc.colour, strict=True):
                channel[span] = [
                    v + (goal - v) * w for v, w in zip(channel[span], weights, strict=True)
                ]


@dataclass(frozen=True, slots=True)
class Scene:
    """A gradient from `start` to `end` along `slope`, with `discs` drawn over it in order."""

    start: Colour
    end: Colour
    slope: tuple[float, float, float]  # t = a*u + b*v + c runs 0 to 1 across the unit square
    discs: tuple[Disc, ...]

    @classmethod
    def from_seed(cls, seed: int | str | bytes) -> Scene:
        """The scene of `seed`: the same seed, the same scene."""
        rng = random.Random(seed)
        base = rng.random()
        near = base + rng.choice((-1, 1)) * rng.uniform(0.06, 0.3)
        start = _hsv(base, rng.uniform(0.45, 0.8), rng.uniform(0.35, 0.6))
        end = _hsv(near, rng.uniform(0.35, 0.7), rng.uniform(0.8, 0.97))
        a, b = rng.uniform(-1.0, 1.0), rng.uniform(0.3, 1.0)
        if rng.random() < 0.5:
            a, b = b, a
        low, high = min(0.0, a) + min(0.0, b), max(0.0, a) + max(0.0, b)
        slope = (a / (high - low), b / (high - low), -low / (high - low))
        accent = near + 0.5  # the opposite side of the wheel, for a shape that stands out
        discs = []
        for _ in range(rng.randint(2, 4)):
            x, y, radius = rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.85), rng.uniform(0.12, 0.45)
            # A rim at least 5% of the height wide: JPEG's 8x8 blocks carry a ramp, not a step,
            # and a sharper rim would show them.
            rim = min(0.6, rng.uniform(0.05, 0.08) / radius)  # as a share of the radius
            edge = 1.0 / (1.0 - (1.0 - rim) * (1.0 - rim))  # weight 1 from (1 - rim) inwards
            kind = rng.random()
            if kind < 0.45:  # a glow of light
                colour, strength, edge = _hsv(near, rng.uniform(0.0, 0.25), 1.0), 0.75, 0.0
            elif kind < 0.8:  # a solid shape in the accent colour
                colour = _hsv(accent, rng.uniform(0.35, 0.6), rng.uniform(0.75, 0.95))
                strength = rng.uniform(0.55, 0.85)
            else:  # a dark shape, for depth
                colour = _hsv(base, rng.uniform(0.5, 0.8), rng.uniform(0.12, 0.3))
                strength = rng.uniform(0.4, 0.65)
            discs.append(Disc(x, y, radius, _float(colour), strength, edge))
        return cls(_float(start), _float(end), slope, tuple(discs))

    def ycbcr(self, *, video_range: bool = False) -> Scene:
        """The same scene with every colour in YCbCr, for the encoders that store that."""

        def convert(colour: Colour) -> Colour:
            return to_ycbcr(colour, video_range=video_range)

        return Scene(
            convert(self.start),
            convert(self.end),
            self.slope,
            tuple(replace(disc, colour=convert(disc.colour)) for disc in self.discs),
        )

    def paint(
        self,
        width: int,
        height: int,
        *,
        step: float = 1.0,
        columns: int | None = None,
        rows: int | None = None,
    ) -> Canvas:
        """Sample a `width` x `height` picture every `step` pixels, at each step's centre.

        `columns` and `rows` default to enough samples to cover the picture; more reach past
        its edge (an encoder padding to whole blocks), where the gradient simply continues.
        """
        columns = math.ceil(width / step) if columns is None else columns
        rows = math.ceil(height / step) if rows is None else rows
        a, b, c = self.slope
        us = [(col + 0.5) * step / width * a for col in range(columns)]
        mix: list[float] = []
        for row in range(rows):
            offset = (row + 0.5) * step / height * b + c
            # Smoothstep, clamped: the gradient eases in and out, with no hard band at its ends.
            mix += [
                0.0 if (t := u + offset) <= 0.0 else 1.0 if t >= 1.0 else t * t * (3.0 - 2.0 * t)
                for u in us
            ]
        deltas = [last - first for first, last in zip(self.start, self.end, strict=True)]
        one, two, three = (
            [first + delta * t for t in mix]
            for first, delta in zip(self.start, deltas, strict=True)
        )
        canvas = Canvas(columns, rows, step, width, height, (one, two, three))
        for disc in self.discs:
            canvas.draw(disc)
        return canvas


def _float(rgb: RGB) -> Colour:
    return float(rgb[0]), float(rgb[1]), float(rgb[2])


def to_bytes(values: list[float]) -> bytes:
    """Samples rounded to bytes.

    No clipping is needed: a scene only ever blends colours, so every sample lies between
    colours that are in range (in video range, too, once converted to it).
    """
    return bytes(map(round, values))
