"""The in-process pool: fails fast on an engine that cannot load, re-runs pending tasks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vidmorph.config import Settings
from vidmorph.container import build_services


def test_engine_that_cannot_load_stops_start_up(make_settings: Callable[..., Settings]) -> None:
    services = build_services(make_settings(engine="tests.engines.fixtures:fails_in_load"))
    with pytest.raises(RuntimeError, match="no weights"):
        services.start()
    services.close()


def test_unknown_engine_name_is_a_clear_error(make_settings: Callable[..., Settings]) -> None:
    services = build_services(make_settings(engine="nosuch"))
    with pytest.raises(ValueError, match="Unknown engine 'nosuch'"):
        services.start()
    services.close()
