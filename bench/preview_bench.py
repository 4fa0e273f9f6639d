"""Preview engine benchmark: ms per 1280x768 frame per look, and decode -> engine -> encode.

Run `.venv/bin/python bench/preview_bench.py [--frames 48] [--repeat 3] [--skip-e2e]`. It prints
markdown for bench/RESULTS.md; end to end is compared with an identity engine in the same run.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe

from vidmorph.engines.base import EngineInfo, GenerationInput, generate_clip
from vidmorph.engines.looks import NAMED_LOOKS
from vidmorph.engines.preview import PreviewEngine
from vidmorph.media.clip import RGB24, YUV420P, Clip, ClipStream, Frames
from vidmorph.media.pixels import to_yuv

WIDTH, HEIGHT, FPS = 1280, 768, 24.0
E2E_PROMPT = "the same street at night in the rain"
E2E_STRENGTH = 0.6
E2E_SECONDS = 10.0


class _Hooks:
    def progress(self, ratio: float) -> None:
        pass

    def check_cancelled(self) -> None:
        pass


def synthetic_frames(
    count: int, width: int = WIDTH, height: int = HEIGHT, detail: int = 24
) -> np.ndarray:
    """A moving scene with gradients, hard edges and fine detail, like a real frame has."""
    rng = np.random.default_rng(7)
    grain = rng.integers(-detail, detail + 1, (height, width, 1), dtype=np.int16)
    ys, xs = np.mgrid[0:height, 0:width]
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        shift = 6 * index
        sky = np.stack([xs * 200 // width, ys * 220 // height, 180 + 0 * xs], axis=-1)
        bars = (((xs + shift) // 96) % 2 == 0) & (ys > height // 3)
        scene = np.where(bars[..., None], np.array([200, 60, 40]), sky) + grain
        frames[index] = np.clip(scene, 0, 255)
    return frames


def yuv_stream(frames: np.ndarray) -> ClipStream:
    """Frames already in memory as YUV420P, as a stream of 12-frame batches."""
    batches = [frames[start : start + 12] for start in range(0, len(frames), 12)]
    return ClipStream(batches, len(frames), WIDTH, HEIGHT, FPS, YUV420P)


def bench_looks(frame_count: int, repeat: int) -> list[tuple[str, list[float]]]:
    """Part A: ms per frame of PreviewEngine.generate per look, on RGB and on YUV420P frames
    (as a task runs it), 1 thread and the default; the best of `repeat` runs, since on a shared
    machine other work only ever adds time."""
    clip = Clip(frames=synthetic_frames(frame_count), fps=FPS)
    yuv = np.concatenate(list(to_yuv(clip.stream()).checked()))

    def run(engine: PreviewEngine, job: GenerationInput, pixel_format: str) -> None:
        if pixel_format == RGB24:
            generate_clip(engine, clip, job, _Hooks())
            return
        for _ in engine.generate(yuv_stream(yuv), job, _Hooks()):
            pass

    single, default = PreviewEngine(threads=1), PreviewEngine()
    warmup = Clip(frames=clip.frames[:2], fps=FPS)
    generate_clip(
        single, warmup, GenerationInput("oil sketch", 1.0, 1, WIDTH, HEIGHT, FPS), _Hooks()
    )
    rows = []
    for prompt in (*NAMED_LOOKS, "a quiet harbour", E2E_PROMPT):
        job = GenerationInput(prompt, 1.0, 42, WIDTH, HEIGHT, FPS)
        timings = []
        for pixel_format in (RGB24, YUV420P):
            for engine in (single, default):
                best_s = float("inf")
                for _ in range(repeat):
                    started = time.perf_counter()
                    run(engine, job, pixel_format)
                    best_s = min(best_s, time.perf_counter() - started)
                timings.append(1000.0 * best_s / frame_count)
        rows.append((prompt, timings))
        print(f"  {prompt:40s} {timings} ms/frame", file=sys.stderr)
    return rows


class IdentityEngine:
    """The baseline: hands the frames straight back, so decode + encode is all that is timed.
    It takes YUV420P first, as the preview engine does: neither side pays an RGB conversion."""

    info = EngineInfo("identity", ("cpu",), 60.0, deterministic=True, pixel_formats=(YUV420P,))

    def generate(self, clip: ClipStream, job: GenerationInput, hooks: _Hooks) -> Iterator[Frames]:
        yield from clip.checked()


class _StageHooks(_Hooks):
    """What the task's stages report to: here, when each stage handed on its last frame."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.done_at: dict[str, float] = {}

    def stage_done(self, stage: str, seconds: float) -> None:
        self.done_at[stage] = seconds


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_e2e_source(workdir: Path) -> Path:
    """10 s of 1920x1080: a detailed still panning steadily, BT.709-tagged as HD cameras
    write it (untagged input costs the YUV path a BT.601 -> BT.709 conversion)."""
    from tests.videos import make_video

    still = synthetic_frames(1, 1920, 1080, detail=6)[0]
    return make_video(
        workdir / "source.mp4", seconds=E2E_SECONDS, size=(1920, 1080), fps=FPS,
        pattern=lambda index: np.roll(still, 8 * index, axis=1), bt709=True,
    )  # fmt: skip


def bench_end_to_end(source: Path, workdir: Path, repeat: int) -> dict[str, list[dict[str, float]]]:
    """Part B: 10 s of 1080p decoded, generated and encoded to 1280x768 through the task's own
    overlapped stages (`service.render.run_stages`); preview against the identity engine,
    alternating, every run kept."""
    from vidmorph.media.decode import FrameReader
    from vidmorph.service.render import pixel_format, run_stages

    job = GenerationInput(E2E_PROMPT, E2E_STRENGTH, 42, WIDTH, HEIGHT, FPS)
    engines: dict[str, Any] = {"identity": IdentityEngine(), "preview": PreviewEngine()}
    # The same two through RGB frames, as every engine ran before YUV420P (the "before").
    for name in ("identity", "preview"):
        engines[f"{name}, RGB"] = rgb = type(engines[name])()
        rgb.info = replace(engines[name].info, pixel_formats=(RGB24,))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
    for name in list(engines) * repeat:
        hooks = _StageHooks()
        cpu_before = _cpu_s()
        started = time.perf_counter()
        with FrameReader(
            source,
            width=WIDTH,
            height=HEIGHT,
            fps=FPS,
            max_seconds=E2E_SECONDS,
            pixel_format=pixel_format(engines[name]),
        ) as reader:
            run_stages(reader, engines[name], job, hooks, workdir / "out.mp4", audio_from=source)
        times = {f"{stage}_s": at for stage, at in hooks.done_at.items()}
        times["total_s"] = time.perf_counter() - started
        times["cpu_s"] = _cpu_s() - cpu_before
        results[name].append(times)
        print(f"  {name}: {times}", file=sys.stderr)
    return results


def bench_breakdown(source: Path, repeat: int) -> dict[str, list[float]]:
    """Part C, where preview's extra CPU goes: the engine alone on frames already decoded into
    memory, and x264 encoding the preview's output against encoding the identity's (the same
    frames the end-to-end runs encode), CPU seconds, alternating."""
    from vidmorph.media.decode import FrameReader
    from vidmorph.media.encode import write_mp4

    with FrameReader(
        source, width=WIDTH, height=HEIGHT, fps=FPS, max_seconds=E2E_SECONDS, pixel_format=YUV420P
    ) as reader:
        identity = np.concatenate(list(reader.batches()))
    job = GenerationInput(E2E_PROMPT, E2E_STRENGTH, 42, WIDTH, HEIGHT, FPS)
    made = PreviewEngine().generate(yuv_stream(identity), job, _Hooks())
    preview = np.concatenate(list(made))
    results: dict[str, list[float]] = {"engine": [], "encode identity": [], "encode preview": []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repeat):
            before = _cpu_s()
            for _ in PreviewEngine().generate(yuv_stream(identity), job, _Hooks()):
                pass
            results["engine"].append(_cpu_s() - before)
            for name, frames in (("encode identity", identity), ("encode preview", preview)):
                before = _cpu_s()
                write_mp4(yuv_stream(frames), Path(scratch) / "out.mp4")
                results[name].append(_cpu_s() - before)
    return results


def print_breakdown(results: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(runs) for name, runs in results.items()}
    count = E2E_SECONDS * FPS
    print("\n### Where the preview's extra CPU goes (CPU s per 10 s, medians and ranges)\n")
    print("| part | CPU s | ms per frame |")
    print("|---|---:|---:|")
    for name, runs in results.items():
        cells = f"{medians[name]:.2f} ({min(runs):.2f}–{max(runs):.2f})"
        print(f"| {name} | {cells} | {1000 * medians[name] / count:.2f} |")
    extra = medians["encode preview"] - medians["encode identity"]
    print(
        f"\nx264 spends {extra:+.2f} CPU s more on the preview's output than on the identity's "
        f"({medians['encode preview'] / medians['encode identity']:.2f}x): the look's static "
        "texture and vignette over moving content are residual motion search cannot predict."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    # Before any work, so the load average is other people's.
    machine_line = f"{describe()} (a shared machine: other work skews timings)"
    rows = bench_looks(args.frames, args.repeat)
    threads = PreviewEngine().threads
    print(
        f"### Preview engine, {WIDTH}x{HEIGHT}, strength 1.0, {args.frames} frames per look, "
        "ms per frame"
    )
    print(f"Machine: {machine_line}\n")
    print(
        f"| look (prompt) | RGB, 1 thread | RGB, {threads} threads | YUV420P, 1 thread "
        f"| YUV420P, {threads} threads (as tasks run) |"
    )
    print("|---|---:|---:|---:|---:|")
    for prompt, timings in rows:
        print(f"| {prompt} | " + " | ".join(f"{ms:.1f}" for ms in timings) + " |")
    means = [statistics.mean(timings[column] for _, timings in rows) for column in range(4)]
    print("| **mean** | " + " | ".join(f"**{ms:.1f}**" for ms in means) + " |")
    if args.skip_e2e:
        return
    with tempfile.TemporaryDirectory() as workdir:
        source = make_e2e_source(Path(workdir))
        results = bench_end_to_end(source, Path(workdir), args.repeat)
        breakdown = bench_breakdown(source, args.repeat)
    print_end_to_end(results)
    print_breakdown(breakdown)


def print_end_to_end(results: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n### End to end: 10 s 1920x1080 24 fps -> {WIDTH}x{HEIGHT} H.264, stages overlapped")
    print(
        f'Prompt "{E2E_PROMPT}", strength {E2E_STRENGTH}. Baseline: an identity engine in the same '
        "run (decode + encode only), through the same stages. Each stage's column is when it "
        "handed on its last frame, in seconds from the start; medians (ranges) of the runs.\n"
    )
    print(
        "| pipeline | decode done s | engine done s | encode done s = total | CPU s "
        "| cores busy | real-time factor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    medians = {}
    for name, runs in results.items():
        cells = []
        for key in ("decode_s", "engine_s", "encode_s"):
            values = [run[key] for run in runs]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})")
        medians[name] = statistics.median(run["total_s"] for run in runs)
        cpu_s = statistics.median(run["cpu_s"] for run in runs)
        print(
            f"| {name} | {' | '.join(cells)} | {cpu_s:.2f} | {cpu_s / medians[name]:.2f} "
            f"| {E2E_SECONDS / medians[name]:.2f}x |"
        )
    for suffix in ("", ", RGB"):
        identity, preview = results[f"identity{suffix}"], results[f"preview{suffix}"]
        pairs = [p["total_s"] / i["total_s"] for i, p in zip(identity, preview, strict=True)]
        ratio = medians[f"preview{suffix}"] / medians[f"identity{suffix}"]
        print(
            f"\nPreview / identity{suffix or ', YUV420P (as tasks run)'}: {ratio:.2f}x (medians);"
            f" run by run {min(pairs):.2f}x–{max(pairs):.2f}x."
        )


if __name__ == "__main__":
    main()
