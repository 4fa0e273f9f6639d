"""Engine names to factories: the built-in ones, or `package.module:factory` for a plugin."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from vidmorph.engines.base import Engine


def _preview() -> Engine:
    from vidmorph.engines.preview import PreviewEngine

    return PreviewEngine()


BUILTIN: dict[str, Callable[[], Engine]] = {"preview": _preview}


def create(name: str) -> Engine:
    """A new, not yet loaded engine; ValueError for an unknown name."""
    if name in BUILTIN:
        return BUILTIN[name]()
    if ":" in name:
        module_name, _, attr = name.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        engine: Engine = factory()
        return engine
    raise ValueError(f"Unknown engine {name!r}; choose one of {sorted(BUILTIN)} or module:factory")
