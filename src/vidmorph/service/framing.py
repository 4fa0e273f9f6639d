"""Output frames: the size of each aspect the surfaces name, and the one nearest an input's
shape (Runway's Aleph keeps the input's framing)."""

from __future__ import annotations

import math

from vidmorph.domain.models import Asset

#: output frames by aspect: useapi's Gen-3 two, then Runway's targetAspectRatio values, each
#: exactly its ratio at about Runway's 1280x720 (0.77-0.92 megapixels), sides multiples of 16
#: (the diffusion engines pad to their own multiple and crop back)
FRAME_SIZES = {
    "landscape": (1280, 768),
    "portrait": (768, 1280),
    "16:9": (1280, 720),
    "9:16": (720, 1280),
    "4:3": (1088, 816),
    "3:4": (816, 1088),
    "3:2": (1152, 768),
    "2:3": (768, 1152),
    "1:1": (960, 960),
    "21:9": (1344, 576),
}


def nearest_ratio(video: Asset) -> str:
    """Of Runway's targetAspectRatio values, the nearest to `video`'s shape as displayed
    (by the log of width over height, so 2:1 and 1:2 are as far from 1:1); 16:9 unknown."""
    meta = video.meta
    if meta is None or meta.width <= 0 or meta.height <= 0:
        return "16:9"
    shape = math.log(meta.width / meta.height)
    ratios = [r for r in FRAME_SIZES if ":" in r]
    return min(ratios, key=lambda r: abs(math.log(_width_over_height(r)) - shape))


def _width_over_height(ratio: str) -> float:
    width, height = FRAME_SIZES[ratio]
    return width / height
