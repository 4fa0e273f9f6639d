"""The GPU benchmark's flow (`diffusion_bench.py --gpu`), run with the tiny LTX on the CPU.

GPU time is scarce: a mistake in the benchmark's own code should show here, not on the GPU.
The same function builds a model on disk, loads the engine the way a worker does, runs it cold
and warm, then a plain diffusers call of the same pipeline; only the model size and the device
differ from the GPU run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bench.diffusion_gpu import device_rows, ensure_model, print_device_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_gpu_flow_runs_end_to_end_with_tiny_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = device_rows("cpu", tmp_path, tiny=True)
    assert [name for name, _ in rows] == [
        "LtxEngine.generate (cold)",
        "LtxEngine.generate (warm)",
        "plain LTXConditionPipeline call (defaults)",
    ]
    for _, (wall_s, step_s, _steps, peak_gib) in rows:
        assert wall_s > 0 and step_s > 0 and math.isnan(peak_gib)  # no peak figure on a CPU
    # 10 s = 240 frames: two 161-frame windows, 4 of the 8 distilled steps each at strength 0.6,
    # and a report as each window's decode ends; the plain call runs 30 of its default 50 steps.
    assert [steps for _, (_, _, steps, _) in rows] == [2 * 4 + 2, 2 * 4 + 2, 30]
    print_device_rows(rows)
    assert "plain call / engine (warm) wall time" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # the model directory was removed


def test_a_kept_model_directory_is_built_once(tmp_path: Path) -> None:
    model = ensure_model(tmp_path / "ltx", tiny=True)
    built = (model / "model_index.json").stat().st_mtime_ns
    assert ensure_model(model, tiny=True) == model
    assert (model / "model_index.json").stat().st_mtime_ns == built
