"""Media benchmark: Vidmorph's streamed decode -> encode (a `FrameReader` on its own thread
feeding `write_mp4`, as a task's stages run, in YUV420P as they run for engines that take it,
and in RGB as they run for the diffusion engines) on a 10 s 1080p clip against the ffmpeg CLI
doing the same work. Run `.venv/bin/python bench/media_bench.py [--runs 3] [--workdir DIR]`;
exits 2 when ffmpeg is missing.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model

from vidmorph.media.clip import RGB24, YUV420P, ClipStream
from vidmorph.media.decode import SCALER, FrameReader
from vidmorph.media.encode import write_mp4
from vidmorph.media.stream import Prefetch

SOURCE_SIZE = (1920, 1080)
SOURCE_FPS = 24
SOURCE_SECONDS = 10
OUT_WIDTH, OUT_HEIGHT, OUT_FPS = 1280, 768, 24.0
CRF, PRESET = 20, "veryfast"


def make_source(path: Path) -> None:
    """A textured, moving 1080p clip: scrolling grey grain under sliding tinted bars, plus noise.

    The grain is grey and in gamut, so the RGB round trip changes next to nothing and every
    pipeline hands x264 the same picture (saturated colour noise would be clipped on the way
    through RGB and leave less to encode). BT.709 limited range, tagged, as HD cameras write:
    no pipeline has a matrix to convert.
    """
    width, height = SOURCE_SIZE
    step_px = 7  # not a multiple of the grain size, so motion search has work to do
    frames = SOURCE_FPS * SOURCE_SECONDS
    rng = np.random.default_rng(0)
    grain = rng.integers(48, 208, (height // 2, (width + frames * step_px) // 2 + 1), np.uint8)
    grain = np.repeat(np.repeat(grain, 2, 0), 2, 1)
    xs = np.arange(width)
    tints = np.array([[1.0, 0.75, 0.75], [0.75, 1.0, 0.8], [0.8, 0.8, 1.0]])
    # Sensor-like noise that changes every frame, so motion search alone cannot predict it.
    noise = rng.integers(-8, 9, (7, height, width, 1), np.int16)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=SOURCE_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "21"}
        stream.colorspace = stream.color_primaries = stream.color_trc = 1  # BT.709
        stream.color_range = 1  # limited
        for index in range(frames):
            luma = grain[:, index * step_px : index * step_px + width, None]
            tint = tints[((xs + index * 8) // 160) % len(tints)]
            picture = (luma * tint + noise[index % len(noise)]).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=1, dst_color_range=1)
            frame.pts, frame.time_base = index, Fraction(1, SOURCE_FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def run_ours(source: Path, output: Path, pixel_format: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds over all threads) for the streamed decode -> encode."""
    cpu_before, wall_before = _cpu_s(resource.RUSAGE_SELF), time.perf_counter()
    with (
        FrameReader(
            source,
            width=OUT_WIDTH,
            height=OUT_HEIGHT,
            fps=OUT_FPS,
            max_seconds=SOURCE_SECONDS,
            pixel_format=pixel_format,
        ) as reader,
        Prefetch(reader.batches(), depth=2, name="bench-decode") as decoded,
    ):
        size = (reader.num_frames, reader.width, reader.height, reader.fps, pixel_format)
        write_mp4(ClipStream(decoded, *size), output, crf=CRF, preset=PRESET)
    return time.perf_counter() - wall_before, _cpu_s(resource.RUSAGE_SELF) - cpu_before


def ffmpeg_command(ffmpeg: str, source: Path, output: Path) -> list[str]:
    width, height = SOURCE_SIZE
    crop_w = round(height * OUT_WIDTH / OUT_HEIGHT)  # 1080p is wider than 5:3: crop the sides
    crop = f"crop={crop_w}:{height}:{(width - crop_w) // 2}:0"
    scale = f"scale={OUT_WIDTH}:{OUT_HEIGHT}:flags={SCALER}"
    # fps first: ffmpeg then scales only the frames it keeps, as read_clip does.
    filters = f"fps={OUT_FPS:g},{crop},{scale}"
    return [
        ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-threads", "0", "-i", str(source),
        "-t", str(SOURCE_SECONDS), "-vf", filters, "-c:v", "libx264", "-preset", PRESET,
        "-crf", str(CRF), "-pix_fmt", "yuv420p", "-threads", "0",
        "-movflags", "+faststart", "-an", str(output),
    ]  # fmt: skip


def run_ffmpeg(command: list[str]) -> tuple[float, float]:
    cpu_before, wall_before = _cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - wall_before, _cpu_s(resource.RUSAGE_CHILDREN) - cpu_before


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def ffmpeg_version(ffmpeg: str) -> str:
    first = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout
    return " ".join(first.splitlines()[0].split()[:3]) if first else "unknown"


@dataclass
class Side:
    """One pipeline's timed runs: (wall s, CPU s) each, and the file its last run wrote."""

    label: str
    output: Path
    runs: list[tuple[float, float]] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return statistics.median(wall for wall, _ in self.runs)

    @property
    def best_s(self) -> float:
        return min(wall for wall, _ in self.runs)

    @property
    def cpu_s(self) -> float:
        return statistics.median(cpu for _, cpu in self.runs)

    @property
    def output_mb(self) -> float:
        return self.output.stat().st_size / 1e6

    def row(self) -> str:
        runs = ", ".join(f"{wall:.2f}" for wall, _ in self.runs)
        return (
            f"| {self.label} | {self.wall_s:.2f} | {self.best_s:.2f} | {self.cpu_s:.2f} "
            f"| {self.output_mb:.1f} | {runs} |"
        )


def report(sides: list[Side], theirs: Side, ffmpeg: str) -> None:
    libavcodec = ".".join(map(str, av.library_versions["libavcodec"]))
    print("\n### Media: decode + crop/scale + 24 fps + encode, 10 s 1080p -> 1280x768\n")
    print(f"Machine: `nproc` = {os.cpu_count()}, CPU: {cpu_model()}, no GPU.")
    print(
        f"PyAV {av.__version__} (libavcodec {libavcodec}) vs {ffmpeg_version(ffmpeg)}; "
        f"libx264 preset {PRESET}, crf {CRF}, threads auto, scaler {SCALER}; "
        f"{len(theirs.runs)} alternating runs after one untimed round.\n"
    )
    print("| pipeline | wall s (median) | wall s (best) | CPU s (median) | output MB | runs |")
    print("|---|---:|---:|---:|---:|---|")
    for side in (*sides, theirs):
        print(side.row())
    for side in sides:
        print(
            f"| {side.label} / ffmpeg | {side.wall_s / theirs.wall_s:.2f}x "
            f"| {side.best_s / theirs.best_s:.2f}x | {side.cpu_s / theirs.cpu_s:.2f}x | | |"
        )


def main() -> int:
    # Both sides center-crop to 5:3, scale to 1280x768 with the same scaler, resample to 24 fps
    # and encode libx264 with the same preset, crf, yuv420p, faststart and automatic threads.
    # After one untimed round the runs alternate, so background load hits both alike.
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the source clip here between runs")
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("ffmpeg not found: install it (apt-get install -y ffmpeg) to run this benchmark.")
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        source = workdir / "source_1080p_10s.mp4"
        if not source.exists():
            print(f"making {source} ...", flush=True)
            make_source(source)
        ours = {
            fmt: Side(f"Vidmorph, streamed, {fmt}", workdir / f"out_vidmorph_{fmt}.mp4")
            for fmt in (YUV420P, RGB24)
        }
        theirs = Side("`ffmpeg` CLI, same work", workdir / "out_ffmpeg.mp4")
        command = ffmpeg_command(ffmpeg, source, theirs.output)
        # One untimed round first: page cache, lazy library loading, CPU frequency.
        for fmt, side in ours.items():
            run_ours(source, side.output, fmt)
        run_ffmpeg(command)
        steps = [
            *(lambda fmt=fmt, side=side: side.runs.append(run_ours(source, side.output, fmt))
              for fmt, side in ours.items()),
            lambda: theirs.runs.append(run_ffmpeg(command)),
        ]  # fmt: skip
        for run in range(args.runs):
            for step in steps[run % len(steps) :] + steps[: run % len(steps)]:  # rotate the order
                step()
            times = ", ".join(f"{fmt} {side.runs[-1][0]:.2f} s" for fmt, side in ours.items())
            print(f"run {run + 1}: ours {times}, ffmpeg {theirs.runs[-1][0]:.2f} s")
        report(list(ours.values()), theirs, ffmpeg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
