"""Prompt to Look: the parameters of the preview engine's look transfer (a grade, not a model).

Whole words in the prompt pick named looks, merged in the fixed order of `NAMED_LOOKS`; any other
prompt gets a tasteful colour grade drawn from a stable hash of the prompt text and the seed.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Look:
    """Everything the preview renderer needs; the defaults are the identity look."""

    name: str = "identity"
    # Colour grade: saturation, then per-channel curves (white balance, exposure, tone, tints).
    saturation: float = 1.0
    white_balance: RGB = (1.0, 1.0, 1.0)
    exposure: float = 1.0
    gamma: float = 1.0
    contrast: float = 0.0
    fade: float = 0.0
    shadow_tint: RGB = (0.0, 0.0, 0.0)
    highlight_tint: RGB = (0.0, 0.0, 0.0)
    vignette: float = 0.0
    # Stylisation; sizes are fractions of the frame height so every resolution looks alike.
    posterize_levels: int = 0
    pixel_frac: float = 0.0
    blur_frac: float = 0.0
    paint_frac: float = 0.0
    edge_ink: float = 0.0
    edge_glow: float = 0.0
    glow_rgb: RGB = (1.0, 0.2, 0.9)
    hatch: float = 0.0
    texture: str = "none"
    texture_amount: float = 0.0
    #: seeds the fixed textures (grain, paper, canvas, rain) drawn once per task
    pattern_seed: int = 0

    def combine(self, other: Look) -> Look:
        """Both looks at once; where one value must win, `self` keeps its glow colour and the
        stronger texture wins."""
        merged: dict[str, Any] = {"name": f"{self.name}+{other.name}"}
        for spec in fields(self)[1:]:
            a, b, default = getattr(self, spec.name), getattr(other, spec.name), spec.default
            merged[spec.name] = _merge(_RULES[spec.name][0], a, b, default)
        if other.texture_amount > self.texture_amount:
            merged["texture"] = other.texture  # the texture goes with the amount that won
        return Look(**merged)

    def at_strength(self, strength: float) -> Look:
        """This look scaled from the identity (0) to itself (1)."""
        amounts = {"grade": grade_amount(strength), "style": style_amount(strength)}
        scaled: dict[str, Any] = {}
        for spec in fields(self)[1:]:
            value, (merge, kind) = getattr(self, spec.name), _RULES[spec.name]
            amount = amounts[kind]
            if merge == "levels":
                scaled[spec.name] = _levels_at(value, amount)
            elif merge != "first":
                scaled[spec.name] = _lerp(spec.default, value, amount)
        return replace(self, **scaled)


def grade_amount(strength: float) -> float:
    """How much of a look's palette shows at `strength`: eases in, so 0.3 is already half."""
    s = min(max(strength, 0.0), 1.0)
    return 1.0 - (1.0 - s) ** 2


def style_amount(strength: float) -> float:
    """How much of a look's stylisation (sizes, lines, textures) shows at `strength`."""
    # A square root: the contract's default strength (0.3) should show the medium, not hint at it.
    return math.sqrt(min(max(strength, 0.0), 1.0))


# How two looks merge (`combine`) and how strength scales each field (`at_strength`).
_RULES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(["contrast", "shadow_tint", "highlight_tint"], ("add", "grade")),
    **dict.fromkeys(["saturation", "white_balance", "exposure", "gamma"], ("mul", "grade")),
    **dict.fromkeys(["fade", "vignette"], ("max", "grade")),
    **dict.fromkeys(["pixel_frac", "blur_frac", "paint_frac", "hatch"], ("max", "style")),
    **dict.fromkeys(["edge_ink", "edge_glow", "texture_amount"], ("max", "style")),
    "posterize_levels": ("levels", "style"),
    **dict.fromkeys(["glow_rgb", "texture", "pattern_seed"], ("first", "style")),
}


def _merge(rule: str, a: Any, b: Any, default: Any) -> Any:
    if rule == "first":
        return a if a != default else b
    if rule == "levels":
        return min(a, b) if a and b else a or b
    if isinstance(a, tuple):
        return tuple(_merge(rule, x, y, d) for x, y, d in zip(a, b, default, strict=True))
    if rule == "mul":
        return a * b
    if rule == "add":
        return a + b
    return max(a, b)


def _lerp(start: Any, end: Any, amount: float) -> Any:
    if isinstance(end, tuple):
        return tuple(_lerp(x, y, amount) for x, y in zip(start, end, strict=True))
    return start + amount * (end - start)


def _levels_at(levels: int, amount: float) -> int:
    """Posterize levels eased geometrically from 256 (no posterizing) to `levels`."""
    if levels == 0 or amount <= 0.0:
        return 0
    eased = round(256.0 ** (1.0 - amount) * levels**amount)
    return 0 if eased >= 256 else int(eased)


_MAGENTA, _CYAN, _LIME = (1.0, 0.2, 0.9), (0.15, 0.9, 1.0), (0.6, 1.0, 0.2)

# The words are whole-word, case-insensitive alternatives; several looks may match at once.
_TABLE: tuple[tuple[str, str, Look], ...] = (
    ("pixel art", "pixel art|pixel|pixels|pixelated|pixelart|8-bit|8 bit|8bit|16-bit|retro game",
     Look(pixel_frac=1 / 96, posterize_levels=6, saturation=1.25, contrast=0.1)),
    ("comic", "comic|comics|comic book|cartoon|cartoonish|manga|cel shaded|cel-shaded",
     Look(posterize_levels=5, edge_ink=1.0, saturation=1.35, contrast=0.25)),
    ("sketch", "sketch|sketched|sketchy|pencil|drawing|drawn|charcoal|graphite",
     Look(saturation=0.0, exposure=1.3, gamma=0.8, fade=0.04, white_balance=(1.0, 0.98, 0.93),
          edge_ink=1.0, hatch=0.8, texture="paper", texture_amount=0.025)),
    ("watercolor", "watercolor|watercolour|watercolors|watercolours|aquarelle",
     Look(saturation=1.15, exposure=1.1, gamma=0.9, fade=0.06, blur_frac=0.004,
          posterize_levels=14, edge_ink=0.45, texture="paper", texture_amount=0.035)),
    ("oil painting", "oil painting|oil|oils|oil-painted|impasto",
     Look(saturation=1.3, contrast=0.2, paint_frac=0.016, texture="canvas",
          texture_amount=0.035)),
    ("night", "night|nighttime|night-time|midnight|moonlight|moonlit|nocturnal|dark",
     Look(saturation=0.6, white_balance=(0.72, 0.88, 1.25), exposure=0.55, gamma=1.15,
          contrast=0.15, shadow_tint=(0.0, 0.01, 0.05), vignette=0.35, texture="grain",
          texture_amount=0.025)),
    ("rain", "rain|rainy|raining|storm|stormy|wet|drizzle",
     Look(saturation=0.8, white_balance=(0.92, 0.97, 1.08), exposure=0.85, contrast=0.2,
          texture="rain", texture_amount=0.09)),
    ("sunset", "sunset|sunrise|dusk|dawn|golden hour|golden-hour|sundown|evening",
     Look(saturation=1.2, white_balance=(1.18, 0.98, 0.72), contrast=0.1,
          shadow_tint=(0.05, 0.0, 0.07), highlight_tint=(0.1, 0.04, -0.04), vignette=0.2,
          texture="grain", texture_amount=0.012)),
    ("winter", "winter|wintry|snow|snowy|snowing|frozen|frost|frosty|icy|ice|cold|blizzard",
     Look(saturation=0.6, white_balance=(0.88, 0.98, 1.15), exposure=1.1, gamma=0.9,
          fade=0.06, contrast=-0.05, highlight_tint=(0.0, 0.02, 0.05), texture="grain",
          texture_amount=0.012)),
    ("neon", "neon|cyberpunk|synthwave|vaporwave|glowing|fluorescent",
     Look(saturation=1.7, contrast=0.35, exposure=0.6, gamma=1.25, shadow_tint=(0.06, 0.0, 0.14),
          highlight_tint=(0.04, -0.02, 0.06), edge_glow=0.85, glow_rgb=_MAGENTA)),
    ("noir", "noir|black and white|black-and-white|b&w|monochrome|grayscale|greyscale",
     Look(saturation=0.0, contrast=0.45, gamma=1.1, vignette=0.45, texture="grain",
          texture_amount=0.04)),
    ("sepia", "sepia|vintage|antique|old photo|old film",
     Look(saturation=0.0, white_balance=(1.07, 0.87, 0.64), fade=0.08, contrast=0.05,
          vignette=0.3, texture="grain", texture_amount=0.03)),
)  # fmt: skip

NAMED_LOOKS: tuple[str, ...] = tuple(name for name, _, _ in _TABLE)

_PATTERNS = [
    (name, re.compile(r"(?<![a-z0-9])(?:" + words + r")(?![a-z0-9])")) for name, words, _ in _TABLE
]


def matched_looks(text_prompt: str) -> tuple[str, ...]:
    """The named looks whose words appear in the prompt, in merge order."""
    text = text_prompt.lower()
    return tuple(name for name, pattern in _PATTERNS if pattern.search(text))


def look_for_prompt(text_prompt: str, seed: int) -> Look:
    """The Look for a prompt and seed; the same pair always gives the identical Look."""
    names = matched_looks(text_prompt)
    if not names:
        return _seeded_look(text_prompt, seed)
    looks = {name: look for name, _, look in _TABLE}
    merged = looks[names[0]]
    for name in names[1:]:
        merged = merged.combine(looks[name])
    return _vary_with_seed(replace(merged, name="+".join(names)), seed)


def _rng(*parts: str) -> np.random.Generator:
    # hashlib, not hash(): Python salts str hashes per process, and looks must repeat forever.
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _vary_with_seed(look: Look, seed: int) -> Look:
    """Keep the theme, move the details: colour temperature, exposure, the texture pattern."""
    rng = _rng("named", look.name, str(seed))
    warmth = float(rng.uniform(-0.04, 0.04)) if look.saturation > 0 else 0.0  # noir stays grey
    red, green, blue = look.white_balance
    glow = look.glow_rgb
    if look.edge_glow > 0:
        glow = (look.glow_rgb, _CYAN, _LIME)[int(rng.integers(3))]
    return replace(
        look,
        white_balance=(red * (1 + warmth), green, blue * (1 - warmth)),
        exposure=look.exposure * float(rng.uniform(0.96, 1.04)),
        glow_rgb=glow,
        pattern_seed=int(rng.integers(2**62)),
    )


def _tint(hue_deg: float, amount: float) -> RGB:
    """A zero-sum RGB offset pointing at `hue_deg`: it colours without brightening."""
    h = math.radians(hue_deg)
    return (
        amount * math.cos(h),
        amount * math.cos(h - 2 * math.pi / 3),
        amount * math.cos(h + 2 * math.pi / 3),
    )


def _seeded_look(text_prompt: str, seed: int) -> Look:
    """A random but tasteful grade: warm or cool balance, split toning, a touch of contrast."""
    rng = _rng("seeded", " ".join(text_prompt.lower().split()), str(seed))
    temperature = float(rng.uniform(0.3, 1.0) * rng.choice((-1.0, 1.0)))
    tint = float(rng.uniform(-1.0, 1.0))
    highlight_hue = float(rng.uniform(0.0, 360.0))
    return Look(
        name="seeded",
        saturation=float(rng.uniform(0.8, 1.35)),
        white_balance=(1 + 0.1 * temperature, 1 + 0.04 * tint, 1 - 0.1 * temperature),
        gamma=float(rng.uniform(0.9, 1.1)),
        contrast=float(rng.uniform(0.05, 0.3)),
        fade=float(rng.uniform(0.0, 0.05)),
        highlight_tint=_tint(highlight_hue, float(rng.uniform(0.04, 0.09))),
        shadow_tint=_tint(highlight_hue + 180.0, float(rng.uniform(0.03, 0.07))),
        vignette=float(rng.uniform(0.0, 0.3)),
        texture="grain",
        texture_amount=float(rng.uniform(0.005, 0.02)),
        pattern_seed=int(rng.integers(2**62)),
    )
