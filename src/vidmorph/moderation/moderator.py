"""The prompt check run at task admission: word lists by category first, then the classifier.

A flag becomes a FAILED task with reason SAFETY.INPUT.TEXT; wiring that up is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidmorph.moderation.blocklist import Blocklist
from vidmorph.moderation.classifier import DEFAULT_THRESHOLD, HARASSMENT, ToxicityClassifier

# The contract's own phrase, as Runway words a moderated prompt.
MODERATION_MESSAGE = "Text prompt did not pass moderation"


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

    def warm(self) -> None:
        """Load the classifier now (1-2 s) so the first admitted task does not pay for it."""
        if self._classifier is not None:
            self._classifier.warm()

    def check(self, text: str) -> ModerationFlag | None:
        """A flag when `text` should be refused, None when it may be generated."""
        found = self._blocklist.match(text)
        if found is not None:
            return ModerationFlag.for_category(found.category)
        if self._classifier is not None and self._classifier.is_toxic(
            self._blocklist.screened_texts(text)
        ):
            return ModerationFlag.for_category(HARASSMENT)
        return None
