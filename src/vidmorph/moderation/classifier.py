"""Toxicity score from alt-profanity-check's bundled linear model (no download, no network).

Importing it loads scikit-learn and two joblib files (1-2 s), so that waits for the first score
or an explicit `warm()`, and happens once per process whichever thread gets there first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

HARASSMENT = "harassment"
# The model scores bag-of-words profanity and insults, not intent. Directed abuse ("you stupid
# cunt", "shut up you stupid bitch") scores 0.996-1.000; dark but ordinary video prompts stay
# far lower ("zombie apocalypse, dark horror mood" 0.11), yet a single mild swear word in a
# creative prompt reaches 0.95-0.98 ("a devil with horns in hell fire" 0.96, "a crap weather
# day" 0.96). 0.99 lets those through and still catches the insults.
DEFAULT_THRESHOLD = 0.99

_Predict = Callable[[list[str]], Any]
_load_lock = threading.Lock()
_predict: _Predict | None = None


def _model() -> _Predict:
    global _predict
    if _predict is None:
        with _load_lock:
            if _predict is None:
                # Deferred on purpose: this import is what costs the seconds.
                from profanity_check import predict_prob

                _predict = predict_prob
    return _predict


class ToxicityClassifier:
    """Flags text whose profanity probability reaches `threshold` (0 < threshold <= 1).

    Thread-safe: the model is loaded under a lock and only read afterwards.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold

    def warm(self) -> None:
        """Load the model now rather than on the first call."""
        _model()

    def score(self, texts: Sequence[str]) -> float:
        """The highest probability among `texts` (several readings of one prompt); 0 if blank."""
        readings = [text for text in texts if text.strip()]
        if not readings:
            return 0.0
        return float(max(_model()(readings)))

    def is_toxic(self, texts: Sequence[str]) -> bool:
        """Whether any reading of the prompt scores at or above the threshold."""
        return self.score(texts) >= self.threshold
