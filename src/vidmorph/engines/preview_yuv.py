"""The preview engine on YUV420P frames: a grade in the encoder's own pixels, no RGB round trip.

A grade-only look (saturation, curves, tints, vignette, texture: night, rain, sunset, winter,
noir, sepia and every seeded look) runs as table lookups and fixed-point arithmetic on the
planes. The tables are the RGB renderer's own grade sampled once per task, so the YUV output
follows the RGB one:

- each chroma sample's cell is (Y >> 4, U >> 2, V >> 2), Y the mean of its 2x2 block, and the
  cell's colour graded at its centre gives U' and V' and how far that colour moves the luma
  of its grey's grade (a blue sky darkens more than a grey one under a warm cast);
- luma: `Y' = L[Y] + that correction`, L the grade of the grey of each luma, so saturation,
  white balance, curves and split toning all carry over, within the cells' resolution;
- vignette scales luma and chroma about black and neutral, texture adds to luma, as adding
  to R, G and B alike does.

Stylising looks (lines, paint, pixels, posterized levels) need RGB neighbourhoods: they convert
each frame to RGB, render there and convert back, the work the decoder and encoder would
otherwise have done.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from vidmorph.media.clip import RGB24, YUV420P, Frames
from vidmorph.media.pixels import Converter, planes

if TYPE_CHECKING:
    from vidmorph.engines.preview import LookRenderer

Floats = npt.NDArray[np.float64]
Table = npt.NDArray[np.int16]
Index = npt.NDArray[np.uint16]
Pairs = npt.NDArray[np.uint32]
# BT.709 luma weights and limited-range extents.
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
_Y_LOW, _Y_HIGH, _C_LOW, _C_HIGH = 16, 235, 16, 240
#: the tables' cells: Y >> 4, U >> 2, V >> 2 (16 x 64 x 64: a uint16 index, and three tables
#: of 128 KB that stay in cache); finer cells measured no closer to the RGB grade
_LUMA_SHIFT, _CHROMA_BITS = 4, 6
#: keeps packed luma sums positive: a colour moves its luma by less than this
_BIAS = 128
#: the luma vignette's fixed point: 128 keeps a pixel as it is
_GAIN_BITS = 7
_GAIN_ONE = 1 << _GAIN_BITS


class YuvRenderer:
    """`renderer`'s look on YUV420P frames of its size; `render` is safe across threads."""

    def __init__(self, renderer: LookRenderer) -> None:
        self.rgb = renderer
        width, height = renderer.size
        self.width, self.height = width, height
        self.graded = renderer.grade_only
        self._local = threading.local()
        if renderer.is_identity or not self.graded:
            return
        self.luma_pairs = _luma_pairs(renderer)
        self.luma_correction, self.chroma_tables = _cell_tables(renderer)
        # Vignette and texture as one multiply and one add per pixel: Y'' = Y' * gain / 128 +
        # shift, where the shift holds the texture, the vignette's pull towards black (16,
        # not 0) and the bias. The gain is in 1/128ths so a biased Y' times it fits 16 bits.
        self.gain_y: npt.NDArray[np.uint16] | None = None
        self.gain_c: npt.NDArray[np.int16] | None = None
        kept: Floats = np.ones((height, width))
        if renderer.gain is not None:
            gain = renderer.gain[..., 0]  # 8.8 fixed point
            self.gain_y = np.rint(gain / 2).astype(np.uint16)
            self.gain_c = np.ascontiguousarray(gain[::2, ::2], np.int16)
            kept = self.gain_y / _GAIN_ONE
        shift: Floats = _Y_LOW * (1 - kept) - _BIAS * kept
        if renderer.offset is not None:
            # An offset added to R, G and B alike moves luma by its share of the limited range.
            shift = shift + renderer.offset[..., 0] * ((_Y_HIGH - _Y_LOW) / 255.0)
        self.shift_y = np.rint(shift).astype(np.int16)

    def render(self, frame: Frames, out: Frames) -> None:
        """Write the styled YUV420P `frame` into `out`."""
        if self.rgb.is_identity:
            np.copyto(out, frame)
        elif self.graded:
            self._grade(frame, out)
        else:
            self._through_rgb(frame, out)

    def _grade(self, frame: Frames, out: Frames) -> None:
        # numpy's lookups and fixed-point ufuncs on reused arrays: a lookup costs about what
        # a pass of arithmetic does, so pixels are looked up in pairs where they can be.
        y_in, u_in, v_in = planes(frame)
        y_out, u_out, v_out = planes(out)
        scratch = self._scratch()
        index = self._cells(y_in, u_in, v_in, scratch)
        # Luma: the grey's grade of each pixel, plus what its block's colour changes in it
        # (biased by +_BIAS in both halves of each pair, so the packed add never borrows).
        wide, correction = scratch["wide"], scratch["correction"]
        np.take(self.luma_pairs, y_in.view(np.uint16), out=wide, mode="clip")
        np.take(self.luma_correction, index, out=correction, mode="clip")
        wide.reshape(self.height // 2, 2, self.width // 2)[:] += correction[:, None, :]
        if self.gain_y is not None:
            unsigned = wide.view(np.uint16)  # a biased Y' is under 512: times 128 fits
            unsigned *= self.gain_y
            unsigned >>= _GAIN_BITS
        signed = wide.view(np.int16)
        signed += self.shift_y
        np.clip(signed, _Y_LOW, _Y_HIGH, out=signed)
        np.copyto(y_out, signed, casting="unsafe")
        chroma = scratch["chroma"]
        for plane_out, table in zip((u_out, v_out), self.chroma_tables, strict=True):
            np.take(table, index, out=chroma, mode="clip")
            if self.gain_c is not None:
                chroma *= self.gain_c  # the vignette scales about neutral
                chroma >>= 8
            chroma += 128
            np.clip(chroma, _C_LOW, _C_HIGH, out=chroma)
            np.copyto(plane_out, chroma, casting="unsafe")

    @staticmethod
    def _cells(y: Frames, u: Frames, v: Frames, scratch: dict[str, Any]) -> Index:
        """Each chroma sample's table cell, from the mean luma of its 2x2 block (one pixel of
        it would alias the luma's fine detail into the chroma, which then costs x264 more), U
        and V. Indices are in range by construction: lookups skip numpy's bounds checks."""
        rows, index, part = scratch["rows"], scratch["index"], scratch["part"]
        np.add(y[0::2], y[1::2], out=rows, dtype=np.uint16)
        np.add(rows[:, 0::2], rows[:, 1::2], out=index)
        index >>= 2 + _LUMA_SHIFT
        index <<= 2 * _CHROMA_BITS
        np.right_shift(u, 8 - _CHROMA_BITS, out=part)
        part <<= _CHROMA_BITS
        index |= part
        np.right_shift(v, 8 - _CHROMA_BITS, out=part)
        index |= part
        cells: Index = index
        return cells

    def _through_rgb(self, frame: Frames, out: Frames) -> None:
        scratch = self._scratch()
        rgb = scratch["to_rgb"].convert(frame, scratch["rgb_in"])
        self.rgb.render(rgb, scratch["rgb_out"])
        scratch["to_yuv"].convert(scratch["rgb_out"], out)

    def _scratch(self) -> dict[str, Any]:
        """This thread's working arrays and converters (fresh pages every frame cost more
        than the work)."""
        scratch: dict[str, Any] | None = getattr(self._local, "scratch", None)
        if scratch is not None:
            return scratch
        size, half = (self.height, self.width), (self.height // 2, self.width // 2)
        if self.graded:
            scratch = {
                "wide": np.empty((self.height, self.width // 2), dtype=np.uint32),
                "rows": np.empty((self.height // 2, self.width), dtype=np.uint16),
                "index": np.empty(half, dtype=np.uint16),
                "part": np.empty(half, dtype=np.uint16),
                "correction": np.empty(half, dtype=np.uint32),
                "chroma": np.empty(half, dtype=np.int16),
            }
        else:
            scratch = {
                "to_rgb": Converter(YUV420P, RGB24, self.width, self.height),
                "to_yuv": Converter(RGB24, YUV420P, self.width, self.height),
                "rgb_in": np.empty((*size, 3), dtype=np.uint8),
                "rgb_out": np.empty((*size, 3), dtype=np.uint8),
            }
        self._local.scratch = scratch
        return scratch


def _to_rgb(y: Floats, u: Floats, v: Floats) -> Frames:
    """BT.709 limited-range YUV (floats) to full-range RGB bytes, clipped as a decoder does."""
    luma = (y - _Y_LOW) / (_Y_HIGH - _Y_LOW)
    pb, pr = (u - 128) / (_C_HIGH - _C_LOW), (v - 128) / (_C_HIGH - _C_LOW)
    red = luma + 2 * (1 - _KR) * pr
    blue = luma + 2 * (1 - _KB) * pb
    green = (luma - _KR * red - _KB * blue) / _KG
    rgb = np.stack([red, green, blue], axis=-1)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _to_yuv(rgb: Frames) -> tuple[Floats, Floats, Floats]:
    """Full-range RGB bytes to BT.709 limited-range YUV floats."""
    red, green, blue = (rgb[..., index].astype(np.float64) / 255.0 for index in range(3))
    luma = _KR * red + _KG * green + _KB * blue
    pb, pr = (blue - luma) / (2 * (1 - _KB)), (red - luma) / (2 * (1 - _KR))
    scale = _C_HIGH - _C_LOW
    return _Y_LOW + luma * (_Y_HIGH - _Y_LOW), 128 + pb * scale, 128 + pr * scale


def _graded(renderer: LookRenderer, rgb: Frames) -> Frames:
    """The renderer's grade (saturation and curves) of an (H, W, 3) picture."""
    return np.asarray(renderer.grade(Image.fromarray(rgb)))


def _luma_pairs(renderer: LookRenderer) -> Pairs:
    """For each pair of luma bytes read as one little-endian uint16, the pair of Y' (the luma
    of the graded grey of each), as the uint16 halves of a uint32."""
    levels = np.arange(256, dtype=np.float64)
    grey = _to_rgb(levels, np.full(256, 128.0), np.full(256, 128.0))[None]
    y_out = _to_yuv(_graded(renderer, grey))[0][0]
    table = np.clip(np.rint(y_out), _Y_LOW, _Y_HIGH).astype(np.uint32)
    # Row: the high byte (the second pixel), column: the low byte (the first).
    pairs: Pairs = table[:, None] << 16 | table[None, :]
    return pairs.ravel()


def _cell_tables(renderer: LookRenderer) -> tuple[Pairs, tuple[Table, Table]]:
    """For every (Y, U, V) cell (the luma's top `8 - _LUMA_SHIFT` bits, then U's and V's top
    `_CHROMA_BITS`), graded at its centre, flattened for `np.take`: what its colour adds to
    the luma of its grey's grade (plus _BIAS, in both halves of a uint32, as `_grade` adds it
    to a pair of pixels), and U' and V' as signed offsets from neutral."""
    cells = np.indices((256 >> _LUMA_SHIFT, 1 << _CHROMA_BITS, 1 << _CHROMA_BITS), np.float64)
    luma = cells[0] * (1 << _LUMA_SHIFT) + ((1 << _LUMA_SHIFT) - 1) / 2
    step = 1 << (8 - _CHROMA_BITS)
    u, v = (cells[axis] * step + (step - 1) / 2 for axis in (1, 2))
    shape = (-1, 1 << _CHROMA_BITS)
    yuv = _to_yuv(
        _graded(renderer, _to_rgb(luma.reshape(shape), u.reshape(shape), v.reshape(shape)))
    )
    y_out, u_out, v_out = (plane.reshape(cells.shape[1:]) for plane in yuv)
    neutral = np.full((luma.shape[0], 1), 128.0)
    grey = _to_yuv(_graded(renderer, _to_rgb(luma[:, :1, 0], neutral, neutral)))[0]
    correction = np.clip(np.rint(y_out - grey[:, :, None]), -_BIAS, _BIAS - 1)
    biased = (correction + _BIAS).astype(np.uint32)
    chroma = (np.rint(plane - 128).astype(np.int16).ravel() for plane in (u_out, v_out))
    return (biased | biased << 16).ravel(), tuple(chroma)  # type: ignore[return-value]
