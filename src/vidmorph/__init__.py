"""Vidmorph: a self-hosted video-to-video service speaking useapi.net's Runway v1 contract."""

from __future__ import annotations

__version__ = "0.1.0"
