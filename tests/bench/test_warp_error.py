"""The warp-error metric ranks steady outputs below flickering ones, whatever their colours."""

from __future__ import annotations

import numpy as np
import pytest
from bench.warp_error import flicker, scene_painter, warp_error

WIDTH, HEIGHT, FRAMES = 96, 64, 8


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    paint = scene_painter(WIDTH, HEIGHT)
    return np.stack([paint(index) for index in range(FRAMES)])


def test_identity_output_is_near_zero(source: np.ndarray) -> None:
    # Not exactly 0: Farneback flow is imperfect and bilinear warping softens edges.
    assert warp_error(source, source) < 0.03


def test_flickering_output_scores_far_higher_than_identity(source: np.ndarray) -> None:
    steady = warp_error(source, source)
    flickering = warp_error(source, flicker(source))
    assert flickering > 0.05
    assert flickering > 4 * steady


def test_consistent_recolouring_scores_low_like_the_input(source: np.ndarray) -> None:
    recoloured = warp_error(source, 255 - source)
    assert recoloured == pytest.approx(warp_error(source, source), abs=1e-3)
    assert recoloured < warp_error(source, flicker(source)) / 4


def test_a_static_output_over_a_moving_input_is_penalised(source: np.ndarray) -> None:
    # The output ignores the motion the input has: the flow says pixels moved, they did not.
    frozen = np.repeat(source[:1], FRAMES, axis=0)
    assert warp_error(source, frozen) > 2 * warp_error(source, source)


def test_one_frame_has_no_pairs_and_mismatched_shapes_are_refused(source: np.ndarray) -> None:
    assert warp_error(source[:1], source[:1]) == 0.0
    with pytest.raises(ValueError, match="must both be"):
        warp_error(source, source[:, :32])
