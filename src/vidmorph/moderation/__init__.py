"""Offline text moderation of prompts: category word lists first, then a toxicity classifier.

`Moderator.check(text)` returns a `ModerationFlag` (category, user-facing message) or None.
"""

from __future__ import annotations
