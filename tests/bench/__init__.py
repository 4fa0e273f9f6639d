"""Tests of the benchmark tools in bench/."""

from __future__ import annotations
