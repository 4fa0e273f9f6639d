"""Temporal consistency as a number: the flow-warp error of an output video against its input.

Optical flow is computed on the INPUT video (OpenCV Farneback on grayscale, forward t->t+1 and
backward t+1->t). Output frame t+1 is warped back to frame t along the forward flow; pixels that
fail the forward-backward consistency test (occlusions, flow errors) or leave the frame are
masked out, and the error is the mean absolute RGB difference over the pixels left, on a 0..1
scale (1.0 = 255 levels), pooled over every frame pair of the clip. Lower is steadier. Because
the flow comes from the input, an output that changes the look but moves exactly like the input
(a consistent re-grade) scores as low as the input itself; flicker scores high.

    python bench/warp_error.py INPUT.mp4 OUTPUT.mp4   # the metric for one pair of files
    python bench/warp_error.py --engines              # preview (and tiny LTX/Wan) vs baselines
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Frames = npt.NDArray[np.uint8]
Flow = npt.NDArray[np.float32]
# The usual occlusion test (Sundaram et al. 2010, Ruder et al. 2016): a pixel is trusted when
# going forward then backward lands within this tolerance of where it started.
_CONSISTENCY_REL = 0.01
_CONSISTENCY_ABS_PX2 = 0.5
# OpenCV's documented example parameters: 3 pyramid levels, 15 px windows.
_FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


def warp_error(input_frames: Frames, output_frames: Frames) -> float:
    """Mean masked warp error (0..1) of `output_frames` along the flow of `input_frames`.

    Both are uint8 (T, H, W, 3) of the same shape. A clip of one frame has no pairs: 0.0.
    """
    if input_frames.shape != output_frames.shape or input_frames.ndim != 4:
        raise ValueError(
            f"input and output must both be (T, H, W, 3), got {input_frames.shape} "
            f"and {output_frames.shape}"
        )
    total_error, total_pixels = 0.0, 0
    grays = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in input_frames]
    for index in range(len(grays) - 1):
        error_sum, pixels = _pair_error(
            grays[index], grays[index + 1], output_frames[index], output_frames[index + 1]
        )
        total_error += error_sum
        total_pixels += pixels
    return total_error / total_pixels if total_pixels else 0.0


def _pair_error(
    gray_now: npt.NDArray[np.uint8],
    gray_next: npt.NDArray[np.uint8],
    out_now: Frames,
    out_next: Frames,
) -> tuple[float, int]:
    """Summed per-pixel error (0..1) and the number of trusted pixels for one frame pair."""
    forward = _flow(gray_now, gray_next)
    backward = _flow(gray_next, gray_now)
    height, width = gray_now.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + forward[..., 0], ys + forward[..., 1]
    warped = cv2.remap(out_next, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    backward_there = cv2.remap(backward, map_x, map_y, cv2.INTER_LINEAR)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    round_trip = np.sum((forward + backward_there) ** 2, axis=-1)
    magnitudes = np.sum(forward**2, axis=-1) + np.sum(backward_there**2, axis=-1)
    trusted = inside & (round_trip <= _CONSISTENCY_REL * magnitudes + _CONSISTENCY_ABS_PX2)
    difference = np.abs(out_now.astype(np.float32) - warped.astype(np.float32)).mean(axis=-1)
    return float(difference[trusted].sum() / 255.0), int(trusted.sum())


def _flow(source: npt.NDArray[np.uint8], target: npt.NDArray[np.uint8]) -> Flow:
    flow: Flow = cv2.calcOpticalFlowFarneback(source, target, None, **_FARNEBACK)
    return flow


def read_video(path: Path) -> Frames:
    """Every frame of the first video stream as RGB (T, H, W, 3)."""
    import av

    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    if not frames:
        raise ValueError(f"{path} has no video frames")
    return np.stack(frames)


def resize_frames(frames: Frames, width: int, height: int) -> Frames:
    """Area-resampled to `width` x `height` (a no-op when already that size)."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def files_warp_error(input_path: Path, output_path: Path) -> tuple[float, int]:
    """The metric for two video files, and the frame pairs it used.

    The input is resized to the output's size; when the frame counts differ (a different frame
    rate) the shorter length is used, which only makes sense for outputs at the input's fps.
    """
    output = read_video(output_path)
    source = resize_frames(read_video(input_path), output.shape[2], output.shape[1])
    count = min(len(source), len(output))
    if len(source) != len(output):
        print(
            f"warning: {len(source)} input frames vs {len(output)} output frames; "
            f"using the first {count}",
            file=sys.stderr,
        )
    return warp_error(source[:count], output[:count]), count - 1


FPS = 24.0
PREVIEW_PROMPTS = ("a watercolor painting", "film noir, black and white", "anime style")
ENGINE_STRENGTH = 0.6
TINY_PROMPT = "a red monkey dance in the rain"
INPUT_NOTE = "warp error 0..1 (mean abs RGB difference / 255), lower is steadier"


class _Hooks:
    def progress(self, ratio: float) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


def scene_painter(width: int, height: int) -> Callable[[int], Frames]:
    """A textured background panning 2 px per frame with a square crossing it: flow to find."""
    rng = np.random.default_rng(3)
    coarse = rng.uniform(0, 255, (height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (width + 64, height), interpolation=cv2.INTER_CUBIC)
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    side_px = max(8, height // 4)

    def paint(index: int) -> Frames:
        frame = np.ascontiguousarray(texture[:, 2 * index % 64 : 2 * index % 64 + width])
        left, top = (3 * index) % (width - side_px), (2 * index) % (height - side_px)
        frame[top : top + side_px, left : left + side_px] = (230, 60, 40)
        return frame

    return paint


def flicker(frames: Frames, seed: int = 0) -> Frames:
    """Each frame on its own: a random brightness offset (+-32 levels) and pixel noise (sd 8)."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-32, 32, (len(frames), 1, 1, 1))
    noise = rng.normal(0, 8, frames.shape)
    return np.clip(frames + offsets + noise, 0, 255).astype(np.uint8)


def report_engines(seconds: float, width: int, height: int) -> None:
    """Print a markdown table: baselines, the preview engine, and the tiny diffusion engines."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.videos
    from tests.videos import make_video

    from vidmorph.engines.base import GenerationInput, generate_clip
    from vidmorph.engines.preview import PreviewEngine
    from vidmorph.media.decode import read_clip

    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(
            Path(tmp) / "in.mp4",
            seconds=seconds,
            size=(width, height),
            fps=FPS,
            pattern=scene_painter(width, height),
        )
        clip = read_clip(path, width=width, height=height, fps=FPS, max_seconds=seconds)
        rows = [
            ("identity (output = input)", warp_error(clip.frames, clip.frames)),
            ("re-coloured (255 - input)", warp_error(clip.frames, 255 - clip.frames)),
            ("flicker (per-frame offset + noise)", warp_error(clip.frames, flicker(clip.frames))),
        ]
        preview = PreviewEngine()
        preview.load("cpu")
        for prompt in PREVIEW_PROMPTS:
            job = GenerationInput(prompt, ENGINE_STRENGTH, 7, width, height, FPS)
            out = generate_clip(preview, clip, job, _Hooks())
            rows.append(
                (
                    f"preview, {prompt!r}, strength {ENGINE_STRENGTH}",
                    warp_error(clip.frames, out.frames),
                )
            )
        rows += _tiny_engine_rows(clip, Path(tmp))
    print(f"{clip.num_frames} frames, {width}x{height} at {FPS:g} fps, {INPUT_NOTE}\n")
    print("| output | warp error |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.4f} |")
    print(
        "\nTiny LTX/Wan models have random weights and emit noise: their rows only prove the tool"
    )
    print("runs on those engines. Real figures need the real weights on a GPU.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="?", type=Path, help="the source video")
    parser.add_argument("output", nargs="?", type=Path, help="the generated video")
    parser.add_argument(
        "--engines",
        action="store_true",
        help="measure the preview engine (and the tiny LTX/Wan engines) against baselines",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="--engines clip length")
    parser.add_argument("--size", default="320x192", help="--engines frame size WxH")
    args = parser.parse_args(argv)
    if args.engines:
        width, height = (int(v) for v in args.size.lower().split("x"))
        report_engines(seconds=args.seconds, width=width, height=height)
        return 0
    if args.input is None or args.output is None:
        parser.error("give INPUT and OUTPUT videos, or --engines")
    value, pairs = files_warp_error(args.input, args.output)
    print(f"warp error {value:.5f} (mean abs RGB difference, 0..1 scale; {pairs} frame pairs)")
    return 0


def _tiny_engine_rows(clip: Any, tmp: Path) -> list[tuple[str, float]]:
    """The tiny random LTX and Wan engines (tests/engines) through their registry factories."""
    from vidmorph.engines.base import GenerationInput, generate_clip

    rows = []
    for name in ("ltx", "wan"):
        try:
            engine = _tiny_engine(name, tmp / name)
            engine.load("cpu")
            job = GenerationInput(TINY_PROMPT, ENGINE_STRENGTH, 7, clip.width, clip.height, FPS)
            out = generate_clip(engine, clip, job, _Hooks())
        except Exception as error:  # a missing or half-built engine must not sink the report
            print(f"tiny {name}: skipped ({type(error).__name__}: {error})", file=sys.stderr)
            continue
        label = f"tiny {name} (random weights: noise), strength {ENGINE_STRENGTH}"
        rows.append((label, warp_error(clip.frames, out.frames)))
    return rows


def _tiny_engine(name: str, path: Path) -> Any:
    from vidmorph.config import Settings

    if name == "ltx":
        from tests.engines.tiny_pipelines import build_tiny_ltx

        from vidmorph.engines.ltx import create as create_ltx

        settings = Settings(ltx_model=str(build_tiny_ltx(path)), engine_device="cpu")
        return create_ltx(settings)
    from tests.engines.tiny_wan import build_tiny_wan

    from vidmorph.engines.wan import create as create_wan

    return create_wan(Settings(wan_model=str(build_tiny_wan(path)), engine_device="cpu"))


if __name__ == "__main__":
    raise SystemExit(main())
