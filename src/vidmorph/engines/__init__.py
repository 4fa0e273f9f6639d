"""Engines turn a clip and a prompt into a new clip; they see frames, never files, rows or HTTP."""
