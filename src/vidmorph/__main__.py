"""`python -m vidmorph` runs the command line."""

from __future__ import annotations

from vidmorph.cli import app

app()
