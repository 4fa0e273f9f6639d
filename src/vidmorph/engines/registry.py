"""Engine names to factories: the built-in ones, or `package.module:factory` for a plugin."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from vidmorph.config import Settings
from vidmorph.engines.base import Engine


def _preview(settings: Settings) -> Engine:
    from vidmorph.engines.preview import PreviewEngine

    return PreviewEngine()


def _ltx(settings: Settings) -> Engine:
    from vidmorph.engines.ltx import create as create_ltx

    return create_ltx(settings)


def _wan(settings: Settings) -> Engine:
    from vidmorph.engines.wan import create as create_wan

    return create_wan(settings)


#: built-in engines; each factory reads only its own settings (torch loads only when chosen)
BUILTIN: dict[str, Callable[[Settings], Engine]] = {"preview": _preview, "ltx": _ltx, "wan": _wan}


def create(name: str, settings: Settings) -> Engine:
    """A new, not yet loaded engine; ValueError for an unknown name.

    A plugin (`package.module:factory`) is called with no arguments.
    """
    if name in BUILTIN:
        return BUILTIN[name](settings)
    if ":" in name:
        module_name, _, attr = name.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        engine: Engine = factory()
        return engine
    raise ValueError(f"Unknown engine {name!r}; choose one of {sorted(BUILTIN)} or module:factory")
