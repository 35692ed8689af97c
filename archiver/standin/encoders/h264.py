"""H.264 without an encoder: every changed macroblock sent raw (I_PCM), every other one skipped.

I_PCM carries a macroblock's samples verbatim, so there is no transform, prediction or
entropy coding to write. The first frame is an IDR picture made only of I_PCM macroblocks;
each later frame is a P picture that skips the macroblocks equal to the previous frame's
(P_Skip copies them: with deblocking off and every motion vector predicted as zero, exactly)
and sends the others as I_PCM again. A picture where only a small shape moves costs the
macroblocks it touched, not the whole frame. Constrained Baseline profile, 4:2:0, CAVLC.
"""

from __future__ import annotations

from collections.abc import Sequence

from archiver.standin.encoders.bits import MsbBits

_IDR, _NON_IDR = 0x65, 0x61  # NAL headers: nal_ref_idc 3, types 5 and 1
_I_PCM_IN_I, _I_PCM_IN_P = 25, 30  # mb_type of I_PCM: P slices number intra types from 5
_SLICE_I_ONLY, _SLICE_P_ONLY = 7, 5  # slice_type: +5 says every slice of the picture is so
_LOG2_MAX_FRAME_NUM = 4


def parameter_sets(
    width: int, height: int, *, crop_right: int = 0, crop_bottom: int = 0
) -> tuple[bytes, bytes]:
    """The SPS and PPS NAL units for frames of `width` x `height` (coded) pixels.

    `crop_right` columns and `crop_bottom` rows (even numbers) are cut from the decoded
    picture, for sizes that are not whole macroblocks, like 108 rows.
    """
    sps = MsbBits()
    sps.write(66, 8)  # profile: Baseline ...
    sps.write(0xC0, 8)  # ... with constraint_set0 and 1: Constrained Baseline
    sps.write(30, 8)  # level 3.0
    sps.ue(0)  # sps id
    sps.ue(_LOG2_MAX_FRAME_NUM - 4)
    sps.ue(2)  # picture order = decoding order: no B frames
    sps.ue(1)  # one reference frame: the previous one
    sps.write(0, 1)  # no gaps in frame_num
    sps.ue(width // 16 - 1)
    sps.ue(height // 16 - 1)
    sps.write(0b11, 2)  # frames only (no fields), direct_8x8_inference
    cropped = bool(crop_right or crop_bottom)
    sps.write(int(cropped), 1)
    if cropped:
        for offset in (0, crop_right, 0, crop_bottom):  # left, right, top, bottom ...
            sps.ue(offset // 2)  # ... in units of two samples, for 4:2:0
    sps.write(0, 1)  # no VUI
    pps = MsbBits()
    pps.ue(0)  # pps id
    pps.ue(0)  # sps id
    pps.write(0, 2)  # CAVLC, no bottom-field picture order
    pps.ue(0)  # one slice group
    pps.ue(0)  # one reference in list 0 ...
    pps.ue(0)  # ... and in list 1
    pps.write(0, 3)  # no weighted prediction
    for _ in range(3):  # QP, QS and chroma offsets all zero: se(0) is ue(0)
        pps.ue(0)
    pps.write(0b100, 3)  # deblocking control present, no constrained intra, no redundant pics
    return _nal(0x67, _rbsp(sps)), _nal(0x68, _rbsp(pps))


def idr_picture(blocks: Sequence[bytes]) -> bytes:
    """The first picture: every macroblock as I_PCM.

    `blocks` holds each macroblock's samples in raster order: 16 rows of 16 luma samples, then
    8 rows of 8 Cb and 8 rows of 8 Cr, all in video range (16 to 235 or 240, never zero).
    """
    head = MsbBits()
    head.ue(0)  # first macroblock
    head.ue(_SLICE_I_ONLY)
    head.ue(0)  # pps id
    head.write(0, _LOG2_MAX_FRAME_NUM)  # frame_num
    head.ue(0)  # idr_pic_id
    head.write(0, 2)  # output prior pictures, not a long-term reference
    head.ue(0)  # slice_qp_delta = se(0)
    head.ue(1)  # deblocking off, so a skipped macroblock is copied exactly
    out = bytearray()
    for block in blocks:
        head.ue(_I_PCM_IN_I)
        out += head.flush()  # pcm_alignment_zero_bits, then the samples
        out += block
    out.append(0x80)  # rbsp_stop_one_bit and its alignment zeros
    return _nal(_IDR, bytes(out))


def p_picture(blocks: Sequence[bytes], previous: Sequence[bytes], frame_num: int) -> bytes:
    """A picture that skips every macroblock equal to `previous`'s and sends the rest raw.

    An unchanged macroblock is best the very same object as before: it compares at once.
    """
    head = MsbBits()
    head.ue(0)  # first macroblock
    head.ue(_SLICE_P_ONLY)
    head.ue(0)  # pps id
    head.write(frame_num % (1 << _LOG2_MAX_FRAME_NUM), _LOG2_MAX_FRAME_NUM)
    head.write(0, 1)  # the PPS's one reference picture
    head.write(0, 1)  # reference list as is
    head.write(0, 1)  # sliding-window reference marking
    head.ue(0)  # slice_qp_delta = se(0)
    head.ue(1)  # deblocking off
    out = bytearray()
    skipped = 0
    for block, old in zip(blocks, previous, strict=True):
        if block == old:
            skipped += 1
            continue
        head.ue(skipped)  # mb_skip_run
        head.ue(_I_PCM_IN_P)
        out += head.flush()
        out += block
        skipped = 0
    if skipped:
        head.ue(skipped)
    head.write(1, 1)  # rbsp_stop_one_bit
    out += head.flush()
    return _nal(_NON_IDR, bytes(out))


def _rbsp(bits: MsbBits) -> bytes:
    bits.write(1, 1)  # rbsp_stop_one_bit, then zeros to the byte boundary
    return bits.flush()


def _nal(header: int, payload: bytes) -> bytes:
    """A NAL unit with emulation prevention: no 00 00 0x (x <= 3) may appear inside."""
    if b"\x00\x00" not in payload:  # PCM samples are never zero: the usual, quick case
        return bytes([header]) + payload
    out, zeros = bytearray([header]), 0
    for byte in payload:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)
