"""Prompt to Look: which words pick which look, how looks combine, and how seeds vary them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vidmorph.engines.looks import NAMED_LOOKS, Look, look_for_prompt, matched_looks


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a busy street at NIGHT", "night"),
        ("golden hour over the bay", "sunset"),
        ("a snowy village", "winter"),
        ("neon signs everywhere", "neon"),
        ("film noir detective", "noir"),
        ("an old sepia photograph", "sepia"),
        ("a pencil sketch of a cat", "sketch"),
        ("soft watercolour washes", "watercolor"),
        ("Watercolor landscape", "watercolor"),
        ("an oil painting of the harbour", "oil painting"),
        ("thick oil on canvas", "oil painting"),
        ("a comic book panel", "comic"),
        ("pixel art castle", "pixel art"),
        ("pixel", "pixel art"),
        ("an 8-bit video game", "pixel art"),
    ],
)
def test_prompt_words_pick_their_named_look(prompt: str, expected: str) -> None:
    assert matched_looks(prompt) == (expected,)
    assert look_for_prompt(prompt, 1).name == expected


@pytest.mark.parametrize("prompt", ["a nightingale sings", "an oily rag", "a comical dog"])
def test_words_only_match_whole_words(prompt: str) -> None:
    assert matched_looks(prompt) == ()


def test_every_named_look_has_words_that_find_it() -> None:
    for name in NAMED_LOOKS:
        assert name in matched_looks(name)


def test_several_looks_combine_in_a_fixed_order() -> None:
    neon_night = look_for_prompt("neon night", 5)
    assert neon_night == look_for_prompt("a night of neon", 5)
    assert neon_night.name == "night+neon"
    night, neon = look_for_prompt("night", 5), look_for_prompt("neon", 5)
    # Both show: night's darkness and vignette, neon's glowing edges.
    assert neon_night.exposure < min(night.exposure, neon.exposure)
    assert neon_night.vignette == night.vignette
    assert neon_night.edge_glow == neon.edge_glow


def test_rain_adds_to_night() -> None:
    look = look_for_prompt("the same street at night in the rain", 3)
    assert look.name == "night+rain" and look.texture == "rain"
    assert look.exposure < look_for_prompt("night", 3).exposure


def test_same_prompt_and_seed_give_the_identical_look() -> None:
    assert look_for_prompt("winter sunset", 42) == look_for_prompt("winter sunset", 42)
    assert look_for_prompt("a red balloon", 42) == look_for_prompt("A  red balloon", 42)


def test_looks_do_not_depend_on_the_process_hash_seed() -> None:
    code = (
        "from vidmorph.engines.looks import look_for_prompt;"
        "print(look_for_prompt('a red balloon', 9), look_for_prompt('sketch', 9))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_seed_varies_a_named_look_but_keeps_its_theme() -> None:
    nights = [look_for_prompt("night", seed) for seed in range(1, 6)]
    assert len(set(nights)) == len(nights)
    for night in nights:
        assert night.exposure < 0.7
        assert night.white_balance[2] > 1.1 > 0.8 > night.white_balance[0]


def test_seed_never_tints_noir() -> None:
    for seed in range(1, 6):
        assert look_for_prompt("noir", seed).white_balance == (1.0, 1.0, 1.0)


def test_unknown_prompt_gets_a_seeded_look() -> None:
    look = look_for_prompt("a dog running on the beach", 1)
    assert look.name == "seeded"
    assert look != Look(name="seeded")
    assert look != look_for_prompt("a dog running on the beach", 2)
    assert look != look_for_prompt("a cat sleeping on a sofa", 1)


def test_strength_zero_is_the_identity_grade_and_one_is_the_look() -> None:
    look = look_for_prompt("watercolor sunset", 8)
    assert look.at_strength(1.0) == look
    faded = look.at_strength(0.0)
    identity = Look()
    for name in ("saturation", "white_balance", "exposure", "contrast", "vignette"):
        assert getattr(faded, name) == getattr(identity, name)
    assert faded.blur_frac == faded.edge_ink == faded.texture_amount == 0.0
    assert faded.posterize_levels == 0


def test_posterize_levels_ease_from_none_to_the_looks_levels() -> None:
    comic = look_for_prompt("comic", 1)
    levels = [comic.at_strength(s).posterize_levels for s in (0.3, 0.6, 1.0)]
    assert levels[0] > levels[1] > levels[2] == comic.posterize_levels
