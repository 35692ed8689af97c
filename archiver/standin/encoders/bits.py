"""Bit writers: most significant bit first (JPEG, H.264) and least significant first (WebP).

Both keep at most a few bytes in a Python int and move whole bytes out as they fill, because
one ever-growing int would be copied on every write and make a picture quadratic to encode.
"""

from __future__ import annotations


class MsbBits:
    """Bits packed most significant first, as JPEG and H.264 store them."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._value = 0
        self._count = 0

    def write(self, value: int, width: int) -> None:
        """Append the low `width` bits of `value`."""
        self._value = (self._value << width) | (value & ((1 << width) - 1))
        self._count += width
        if self._count >= 32:
            keep = self._count % 8
            self._out += (self._value >> keep).to_bytes((self._count - keep) // 8, "big")
            self._value &= (1 << keep) - 1
            self._count = keep

    def ue(self, value: int) -> None:
        """Exp-Golomb, unsigned (H.264's ue(v))."""
        width = (value + 1).bit_length()
        self.write(value + 1, 2 * width - 1)

    def flush(self, *, pad_with_ones: bool = False) -> bytes:
        """Pad to a byte boundary, return everything written, and start empty again."""
        pad = -self._count % 8
        self.write((1 << pad) - 1 if pad_with_ones else 0, pad)
        out = bytes(self._out) + self._value.to_bytes(self._count // 8, "big")
        self._out, self._value, self._count = bytearray(), 0, 0
        return out


class LsbBits:
    """Bits packed least significant first, as WebP's lossless format stores them."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._value = 0
        self._count = 0

    def write(self, value: int, width: int) -> None:
        """Append the low `width` bits of `value`."""
        self._value |= (value & ((1 << width) - 1)) << self._count
        self._count += width
        if self._count >= 32:
            whole = self._count // 8
            self._out += (self._value & ((1 << (whole * 8)) - 1)).to_bytes(whole, "little")
            self._value >>= whole * 8
            self._count -= whole * 8

    def flush(self) -> bytes:
        """Everything written, zero-padded to a byte boundary."""
        return bytes(self._out) + self._value.to_bytes((self._count + 7) // 8, "little")
