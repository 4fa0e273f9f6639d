"""The preview engine: a fast, seeded CPU look transfer (grade and stylise), not generative AI.

No weights: each frame is re-graded and stylised after the Look the prompt picks (`looks.py`),
with every texture drawn once per task so static regions stay static across frames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops, ImageFilter

from vidmorph.engines.base import EngineInfo, GenerationInput, RunHooks
from vidmorph.engines.looks import Look, look_for_prompt, style_amount
from vidmorph.engines.preview_yuv import YuvRenderer
from vidmorph.media.clip import RGB24, YUV420P, ClipStream, Frames

Frame = npt.NDArray[np.uint8]
Offsets = npt.NDArray[np.int16]
Noise = npt.NDArray[np.float64]
#: frames rendered between progress reports and cancellation checks
BATCH_FRAMES = 12
# Edge magnitude (|dx| + |dy| of luma over the span) where lines start and reach full weight;
# glow needs stronger edges, or foliage and noise would light up too.
_INK_EDGES, _GLOW_EDGES = (16.0, 72.0), (48.0, 160.0)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # Rec. 601, as Pillow's "L"


class PreviewEngine:
    """Look transfer on the CPU: fast, deterministic, departing further as strength grows."""

    info = EngineInfo(
        name="preview",
        devices=("cpu",),
        max_seconds=10.0,
        deterministic=True,
        pixel_formats=(YUV420P, RGB24),  # YUV: a grade costs a fifth (`preview_yuv`)
    )

    def __init__(self, threads: int | None = None) -> None:
        # Frames are independent and Pillow and numpy release the GIL, so threads scale.
        self.threads = threads or min(2, os.cpu_count() or 1)

    def load(self, device: str) -> None:
        if device != "cpu":
            raise ValueError(f"The preview engine runs on the CPU only, not {device!r}")

    def generate(self, clip: ClipStream, job: GenerationInput, hooks: RunHooks) -> Iterator[Frames]:
        if not 0.0 <= job.strength <= 1.0:
            raise ValueError(f"strength must be within 0..1, got {job.strength}")
        look = look_for_prompt(job.text_prompt, job.seed)
        rgb = LookRenderer(look, job.strength, clip.width, clip.height)
        if clip.pixel_format == YUV420P:
            return self._render(clip, YuvRenderer(rgb), hooks)
        if clip.pixel_format != RGB24:
            raise ValueError(f"The preview engine takes RGB or YUV420P, not {clip.pixel_format}")
        return self._render(clip, rgb, hooks)

    def _render(
        self, clip: ClipStream, renderer: LookRenderer | YuvRenderer, hooks: RunHooks
    ) -> Iterator[Frames]:
        """Batches of `BATCH_FRAMES`, rendered across the threads; a check before and after."""
        done, total = 0, clip.num_frames
        with ThreadPoolExecutor(self.threads, thread_name_prefix="preview") as pool:
            for frames in clip.rebatched(BATCH_FRAMES):
                hooks.check_cancelled()
                out = np.empty_like(frames)

                def render(index: int, frames: Frame = frames, out: Frame = out) -> None:
                    renderer.render(frames[index], out[index])

                list(pool.map(render, range(len(frames))))
                done += len(frames)
                hooks.progress(done / total)
                hooks.check_cancelled()
                yield out


class LookRenderer:
    """A Look at one strength and frame size: tables and textures built once, then per frame."""

    def __init__(self, look: Look, strength: float, width: int, height: int) -> None:
        self.look = scaled = look.at_strength(strength)
        self.size = (width, height)
        self.lut = _tone_lut(scaled)
        style = style_amount(strength)
        full_block_px = max(2, round(look.pixel_frac * height)) if look.pixel_frac else 1
        self.pixel_block = round(1 + style * (full_block_px - 1))
        # Washes and paint work on a smaller picture: cheaper and softer; the mix eases them in.
        self.work_factor = max(1, min(4, height // 96))
        self.soften_mix = min(1.0, 1.25 * style)
        self.edge_span_px = max(1, round(height / 384))
        ink, glow = _edge_ramp(*_INK_EDGES), _edge_ramp(*_GLOW_EDGES)
        self.ink_table = _table(255.0 * (1.0 - scaled.edge_ink * ink)) if scaled.edge_ink else None
        glow_rgb = scaled.glow_rgb if scaled.edge_glow else ()
        self.glow_tables = [_table(255.0 * scaled.edge_glow * c * glow) for c in glow_rgb]
        rng = np.random.default_rng(scaled.pattern_seed)
        self.hatch = _hatch_pattern(scaled.hatch, width, height, rng) if scaled.hatch else None
        self.gain = _vignette_gain(scaled.vignette, width, height) if scaled.vignette else None
        self.offset = _texture(scaled, width, height, rng) if scaled.texture_amount else None
        self._scratch = threading.local()
        styled = (scaled.blur_frac, scaled.paint_frac, scaled.edge_ink, scaled.edge_glow)
        textured = (self.hatch, self.gain, self.offset)
        self.is_identity = not (self.lut or scaled.saturation != 1.0 or self.pixel_block > 1)
        self.is_identity &= not any(styled) and all(layer is None for layer in textured)
        #: only a grade, vignette and texture: no lines, paint, pixels or posterized levels
        self.grade_only = self.pixel_block == 1 and self.hatch is None and not any(styled)
        self.grade_only &= not scaled.posterize_levels

    def render(self, frame: Frame, out: Frame) -> None:
        """Write the styled `frame` into `out`; depends on nothing but the frame itself."""
        if self.is_identity:
            np.copyto(out, frame)
            return
        image = Image.fromarray(frame)
        edges = self._edges(image) if self.ink_table or self.glow_tables else None
        if self.look.blur_frac or self.look.paint_frac:
            image = self._soften(image)
        else:
            image = self.grade(image)
        if self.hatch is not None:
            image = ImageChops.lighter(image, self.hatch)
        if edges is not None:
            image = self._draw_lines(image, edges)
        self._finish(image, out)

    def grade(self, image: Image.Image) -> Image.Image:
        block, size = self.pixel_block, image.size
        if block > 1:
            # Grade the small picture: cheaper, and the palette stays flat inside each block.
            image = image.reduce(block)
        saturation = self.look.saturation
        if saturation != 1.0:
            # Mixing with grey (Pillow clips when saturation > 1) is twice as fast as a matrix.
            grey = image.convert("L")
            grey_rgb = Image.merge("RGB", (grey, grey, grey))
            image = grey_rgb if saturation == 0.0 else Image.blend(grey_rgb, image, saturation)
        if self.lut:
            image = image.point(self.lut)
        if block > 1:
            width, height = image.size
            image = image.resize((width * block, height * block), Image.Resampling.NEAREST)
            image = image.crop((0, 0, *size))
        return image

    def _soften(self, image: Image.Image) -> Image.Image:
        """Washes (blur) or paint dabs (Kuwahara) on a smaller picture, graded on the way."""
        look, factor = self.look, self.work_factor
        small = image.reduce(factor)
        if look.blur_frac:
            small = small.filter(ImageFilter.GaussianBlur(look.blur_frac * self.size[1] / factor))
        if look.paint_frac:
            radius = max(1, round(look.paint_frac * self.size[1] / factor))
            small = Image.fromarray(_kuwahara(np.asarray(small), radius))
        if self.soften_mix >= 1.0:
            return _upscale(self.grade(small), self.size)  # grading 1/16 of the pixels is cheap
        return self.grade(Image.blend(image, _upscale(small, self.size), self.soften_mix))

    def _edges(self, image: Image.Image) -> Image.Image:
        """Luma gradient magnitude, 0..255, from central differences over a few pixels."""
        luma = np.asarray(image.convert("L"), dtype=np.int16)
        span = self.edge_span_px
        magnitude = np.zeros_like(luma)
        if luma.shape[1] > 2 * span:
            magnitude[:, span:-span] = np.abs(luma[:, 2 * span :] - luma[:, : -2 * span])
        if luma.shape[0] > 2 * span:
            magnitude[span:-span] += np.abs(luma[2 * span :] - luma[: -2 * span])
        np.clip(magnitude, 0, 255, out=magnitude)
        return Image.fromarray(magnitude.astype(np.uint8))

    def _draw_lines(self, image: Image.Image, edges: Image.Image) -> Image.Image:
        if self.ink_table:
            # Darken-only: ink can take light away but never adds it, as on paper.
            ink = edges.point(self.ink_table)
            image = ImageChops.darker(image, Image.merge("RGB", (ink, ink, ink)))
        if self.glow_tables:
            glow = [edges.point(table) for table in self.glow_tables]
            image = ImageChops.lighter(image, Image.merge("RGB", glow))
        return image

    def _finish(self, image: Image.Image, out: Frame) -> None:
        """Vignette and texture, in integers, straight into the output frame."""
        styled = np.asarray(image)
        if self.gain is None and self.offset is None:
            np.copyto(out, styled)
            return
        # One scratch frame per thread: fresh 6 MB arrays cost page faults on every frame.
        signed: npt.NDArray[np.int16] | None = getattr(self._scratch, "signed", None)
        if signed is None:
            signed = self._scratch.signed = np.empty(styled.shape, dtype=np.int16)
        if self.gain is not None:
            work = signed.view(np.uint16)  # values stay within 0..255, so the view is exact
            np.multiply(styled, self.gain, out=work)
            np.right_shift(work, 8, out=work)
        else:
            np.copyto(signed, styled)
        if self.offset is not None:
            np.add(signed, self.offset, out=signed)
            np.clip(signed, 0, 255, out=signed)
        np.copyto(out, signed, casting="unsafe")


def _edge_ramp(start: float, full: float) -> npt.NDArray[np.float64]:
    return np.clip((np.arange(256) - start) / (full - start), 0.0, 1.0)


def _table(values: npt.NDArray[np.float64]) -> list[int]:
    """Float levels to the list of ints Pillow's `point` takes."""
    rounded: list[int] = np.clip(np.rint(values), 0, 255).astype(np.int64).tolist()
    return rounded


def _tone_lut(look: Look) -> list[int] | None:
    """Per-channel curves: white balance and exposure, S-contrast, gamma, tints, fade, levels."""
    base = np.arange(256) / 255.0
    channels = []
    tints = zip(look.white_balance, look.shadow_tint, look.highlight_tint, strict=True)
    for balance, shadow, highlight in tints:
        c = np.clip(base * balance * look.exposure, 0.0, 1.0)
        c = c + look.contrast * (c * c * (3.0 - 2.0 * c) - c)
        c = np.clip(c, 0.0, 1.0) ** look.gamma
        c = np.clip(c + shadow * (1.0 - c) ** 2 + highlight * c**2, 0.0, 1.0)
        c = look.fade + (1.0 - look.fade) * c
        if look.posterize_levels:
            steps = look.posterize_levels - 1
            c = np.rint(c * steps) / steps
        channels.extend(_table(c * 255.0))
    if channels == list(range(256)) * 3:
        return None
    return channels


def _upscale(small: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Bilinear to half size, then nearest: a soft picture looks the same at a third the cost."""
    width, height = size
    half = ((width + 1) // 2, (height + 1) // 2)
    if small.size[0] < half[0]:
        small = small.resize(half, Image.Resampling.BILINEAR)
    return small.resize(size, Image.Resampling.NEAREST)


def _kuwahara(picture: Frame, radius: int) -> Frame:
    """Kuwahara filter: each pixel takes the mean of its least varied quadrant (paint dabs)."""
    height, width = picture.shape[:2]
    planes = np.moveaxis(picture, 2, 0).astype(np.float32)
    luma = np.tensordot(_LUMA, planes, axes=1)
    planes = np.concatenate([planes, luma[None], (luma * luma)[None]])
    padded = np.pad(planes, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    box = _box_mean(padded, radius + 1)
    best_mean = box[:3, :height, :width].copy()
    best_variance = box[4, :height, :width] - box[3, :height, :width] ** 2
    for dy, dx in ((0, radius), (radius, 0), (radius, radius)):
        quadrant = box[:, dy : dy + height, dx : dx + width]
        variance = quadrant[4] - quadrant[3] ** 2
        np.copyto(best_mean, quadrant[:3], where=variance < best_variance)
        np.minimum(best_variance, variance, out=best_variance)
    dabs: Frame = np.clip(np.rint(np.moveaxis(best_mean, 0, 2)), 0, 255).astype(np.uint8)
    return dabs


def _box_mean(planes: npt.NDArray[np.float32], size: int) -> npt.NDArray[np.float32]:
    """Mean over size x size windows anchored at the top left, per plane of (C, H, W)."""
    # Shifted adds beat cumsum here: windows are a few pixels and cumsum across rows is slow.
    rows = planes[:, : planes.shape[1] - size + 1].copy()
    for shift in range(1, size):
        rows += planes[:, shift : shift + rows.shape[1]]
    sums = rows[:, :, : rows.shape[2] - size + 1].copy()
    for shift in range(1, size):
        sums += rows[:, :, shift : shift + sums.shape[2]]
    sums *= 1.0 / size**2
    return sums


def _vignette_gain(amount: float, width: int, height: int) -> npt.NDArray[np.uint16]:
    """Darkening towards the corners as 8.8 fixed point (256 = unchanged), per channel."""
    ys = np.linspace(-1.0, 1.0, height)[:, None]
    xs = np.linspace(-1.0, 1.0, width)[None, :]
    radius = np.sqrt((xs**2 + ys**2) / 2.0)
    falloff = np.clip((radius - 0.35) / 0.65, 0.0, 1.0) ** 2
    gain = np.rint(256.0 * (1.0 - amount * falloff)).astype(np.uint16)
    # Full (H, W, 3): numpy broadcasting over a last axis of 1 runs five times slower.
    return np.repeat(gain[..., None], 3, axis=2)


def _hatch_pattern(amount: float, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Diagonal pencil strokes: lighten-blended, they show only where the picture is darker."""
    period_px = max(4.0, height / 110)
    phase = rng.uniform(0.0, period_px)
    diagonal = np.arange(width)[None, :] + np.arange(height)[:, None] + phase
    wave = np.abs((diagonal % period_px) / period_px - 0.5) * 2.0  # 1 on a stroke, 0 between
    level = 255.0 * amount * 0.75 * (1.0 - wave)
    strokes = Image.fromarray(np.rint(level).astype(np.uint8))
    return Image.merge("RGB", (strokes, strokes, strokes))


def _noise(rng: np.random.Generator, size: tuple[int, int], cell_px: tuple[float, float]) -> Noise:
    """Smooth value noise with features about `cell_px` (wide, tall), unit deviation."""
    (width, height), (cell_w, cell_h) = size, cell_px
    grid = (max(2, round(width / cell_w) + 1), max(2, round(height / cell_h) + 1))
    coarse = rng.standard_normal((grid[1], grid[0])).astype(np.float32)
    smooth = Image.fromarray(coarse).resize(size, Image.Resampling.BILINEAR)  # float: mode F
    field = np.asarray(smooth, dtype=np.float64)
    unit: Noise = (field - field.mean()) / max(float(field.std()), 1e-6)
    return unit


def _texture(look: Look, width: int, height: int, rng: np.random.Generator) -> Offsets:
    """The fixed texture of the task as int16 offsets (H, W, 3), drawn once from the seed."""
    size = (width, height)
    field = rng.standard_normal((height, width))  # film grain: one pixel, unit deviation
    if look.texture == "paper":
        field = 0.6 * field + 0.6 * _noise(rng, size, (height / 12, height / 12))
    elif look.texture == "canvas":
        period_px = max(3.0, height / 180)
        ys, xs = np.mgrid[0:height, 0:width]
        weave = np.sin(2 * np.pi * xs / period_px) * np.sin(2 * np.pi * ys / period_px)
        strokes = _noise(rng, size, (height / 20, max(2.0, height / 200)))
        field = 0.8 * weave + 0.5 * strokes + 0.3 * field
    elif look.texture == "rain":
        # Only the brightest of long, thin vertical streaks: sparse drops running down glass.
        streaks = _noise(rng, size, (max(1.0, height / 500), height / 14))
        field = 3.0 * np.maximum(streaks - 2.0, 0.0)
    offset = np.rint(field * look.texture_amount * 255.0).astype(np.int16)
    return np.repeat(offset[..., None], 3, axis=2)
