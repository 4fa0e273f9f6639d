"""The prompt check run at task admission: word lists by category first, then the classifier.

A flag becomes a FAILED task with reason SAFETY.INPUT.TEXT; wiring that up is the caller's job.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from vidmorph.moderation.blocklist import Blocklist
from vidmorph.moderation.classifier import DEFAULT_THRESHOLD, HARASSMENT, ToxicityClassifier

# The contract's own phrase, as Runway words a moderated prompt.
MODERATION_MESSAGE = "Text prompt did not pass moderation"

# Verdicts are remembered per exact prompt. With the classifier down to microseconds the word lists
# are most of a check (about 0.1 ms for a short prompt, 1.5 ms or more at 1000 characters), and
# clients often send one prompt with many videos or seeds, or retry it. A verdict depends only on
# the text (the moderator is immutable), so a hit is exact. functools.lru_cache keeps its own
# bookkeeping consistent across threads (at worst two threads compute one verdict each), and
# 4096 prompts within the API's 1000-character limit hold about 4 MB (16 MB if all were emoji).
CACHED_VERDICTS = 4096


@dataclass(frozen=True)
class ModerationFlag:
    """Why a prompt was refused: a category such as "violence/graphic", and a sentence to show."""

    category: str
    message: str

    @classmethod
    def for_category(cls, category: str) -> ModerationFlag:
        return cls(category, f"{MODERATION_MESSAGE} (category: {category}).")


class Moderator:
    """Checks prompts offline. Immutable after construction, so one instance serves all threads."""

    def __init__(
        self,
        *,
        classifier_threshold: float = DEFAULT_THRESHOLD,
        use_classifier: bool = True,
        blocklist: Blocklist | None = None,
    ) -> None:
        self._blocklist = blocklist or Blocklist.from_package()
        self._classifier = ToxicityClassifier(classifier_threshold) if use_classifier else None
        self._remembered = functools.lru_cache(maxsize=CACHED_VERDICTS)(self._verdict)

    def warm(self) -> None:
        """Load the classifier now (1-2 s) so the first admitted task does not pay for it."""
        if self._classifier is not None:
            self._classifier.warm()

    def check(self, text: str) -> ModerationFlag | None:
        """A flag when `text` should be refused, None when it may be generated."""
        return self._remembered(text)

    def _verdict(self, text: str) -> ModerationFlag | None:
        found, screened = self._blocklist.examine(text)
        if found is not None:
            return ModerationFlag.for_category(found.category)
        if self._classifier is not None and self._classifier.is_toxic(screened):
            return ModerationFlag.for_category(HARASSMENT)
        return None
