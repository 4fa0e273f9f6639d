"""Toxicity score from alt-profanity-check's bundled linear model (no download, no network).

Importing it loads scikit-learn and two joblib files (1-2 s), so that waits for the first score
or an explicit `warm()`, and happens once per process whichever thread gets there first.

The model is a TfidfVectorizer (word unigrams, English stop words, l2 norm) feeding a
CalibratedClassifierCV: five LinearSVC folds, each with a sigmoid calibrator, whose positive-class
probabilities are averaged. `profanity_check.predict_prob` spends 5-10 ms a call in scikit-learn's
input validation and sparse-matrix plumbing, while the arithmetic is a few dozen multiplications.
So the scores come from `_LinearScorer`, which reads the fitted numbers once and redoes that
arithmetic; it gives the same probabilities (to about 1e-16) in microseconds.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

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

# Largest gap from scikit-learn's own answer that the fast path may show on the probe texts.
TOLERANCE = 1e-9
# Checked once at load, so a model or scikit-learn upgrade that the fast path does not reproduce
# falls back to scikit-learn instead of silently changing verdicts.
_PROBES = (
    "",
    "!!! ...",
    "the same street, but at night in the rain",
    "a devil with horns in hell fire",
    "shut up you stupid bitch",
    "fuck you fuck you asshole, the the the",
    "Café naïve 東京 déjà vu",
)
# exp() overflows past about 709; a calibrated logit beyond this bound could not be reproduced.
_MAX_LOGIT = 700.0


class UnsupportedModelError(Exception):
    """The fitted model is not the shape `_LinearScorer` knows how to reproduce."""


def _sklearn(module: str, name: str) -> Any:
    # Looked up by name because scikit-learn ships no type information for mypy to read.
    return getattr(importlib.import_module(module), name)


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedModelError(what)


class _LinearScorer:
    """`profanity_check.predict_prob` recomputed from the fitted model's numbers.

    Plain Python floats rather than numpy: a prompt has a handful of known words, and at that
    size each numpy call's fixed cost (about 1 us) outweighs the arithmetic it would vectorise.
    Immutable after construction, so threads share one instance without locking.
    """

    def __init__(self, vectorizer: Any, model: Any) -> None:
        """Read the fitted numbers; UnsupportedModelError if they are not the expected shape."""
        _check_vectorizer(vectorizer)
        folds = _check_calibrated_model(model, len(vectorizer.vocabulary_))
        # The vectorizer's own analyser: same lowercasing, token pattern and stop words.
        self._analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
        idf: list[float] = vectorizer.idf_.tolist()
        by_fold: list[list[float]] = [fold.estimator.coef_[0].tolist() for fold in folds]
        # Each known word's idf and its weight in every fold, found with one dict lookup.
        self._features: dict[str, tuple[float, tuple[float, ...]]] = {
            token: (idf[column], tuple(weights[column] for weights in by_fold))
            for token, column in vectorizer.vocabulary_.items()
        }
        self._intercepts = tuple(float(fold.estimator.intercept_[0]) for fold in folds)
        self._calibrators = tuple(
            (float(fold.calibrators[0].a_), float(fold.calibrators[0].b_)) for fold in folds
        )
        # An l2-normalised row x has |x @ w| <= |w|: that bounds every logit math.exp() will see.
        for weights, intercept, (slope, offset) in zip(
            by_fold, self._intercepts, self._calibrators, strict=True
        ):
            largest = abs(slope) * (math.hypot(*weights) + abs(intercept)) + abs(offset)
            _require(largest < _MAX_LOGIT, "calibrated logits could overflow exp()")

    def __call__(self, texts: list[str]) -> list[float]:
        """The positive-class probability of each text, as `predict_prob` gives it."""
        return [self._probability(text) for text in texts]

    def _probability(self, text: str) -> float:
        # Each fold's sigmoid calibrator gives P(toxic) = 1 / (1 + exp(a * d + b)). In the binary
        # case scikit-learn sets P(clean) = 1 - P(toxic) per fold and then averages each class
        # over the folds (summed in fold order, then divided), so this is the same sum.
        toxic = (
            1.0 / (1.0 + math.exp(slope * decision + offset))
            for decision, (slope, offset) in zip(
                self._decisions(text), self._calibrators, strict=True
            )
        )
        return sum(toxic) / len(self._calibrators)

    def _decisions(self, text: str) -> tuple[float, ...]:
        """Every fold's LinearSVC decision value for `text`'s l2-normalised tf-idf row."""
        counts: dict[str, int] = {}
        for token in self._analyze(text):
            if token in self._features:
                counts[token] = counts.get(token, 0) + 1
        if not counts:
            # An all-zero row stays zero through normalisation: only the intercepts remain.
            return self._intercepts
        dots = [0.0] * len(self._intercepts)
        squares = 0.0
        for token, count in counts.items():
            idf, weights = self._features[token]
            value = count * idf
            squares += value * value
            for fold, weight in enumerate(weights):
                dots[fold] += value * weight
        # Dividing the dot product by the norm equals normalising the row first, to rounding.
        norm = math.sqrt(squares)
        return tuple(dot / norm + b for dot, b in zip(dots, self._intercepts, strict=True))


def _check_vectorizer(vectorizer: Any) -> None:
    _require(
        isinstance(vectorizer, _sklearn("sklearn.feature_extraction.text", "TfidfVectorizer")),
        "vectorizer is not a TfidfVectorizer",
    )
    _require(vectorizer.norm == "l2" and vectorizer.use_idf, "tf-idf is not idf-weighted l2")
    _require(not vectorizer.binary and not vectorizer.sublinear_tf, "term counts are rescaled")
    _require(len(vectorizer.idf_) == len(vectorizer.vocabulary_), "idf and vocabulary differ")


def _check_calibrated_model(model: Any, n_features: int) -> list[Any]:
    """The calibrated folds, each a binary LinearSVC with one sigmoid calibrator."""
    _require(
        isinstance(model, _sklearn("sklearn.calibration", "CalibratedClassifierCV")),
        "model is not a CalibratedClassifierCV",
    )
    _require(list(model.classes_) == [0, 1], "model is not binary over classes 0 and 1")
    linear_svc = _sklearn("sklearn.svm", "LinearSVC")
    folds = list(model.calibrated_classifiers_)
    _require(bool(folds), "model has no calibrated folds")
    for fold in folds:
        estimator = fold.estimator
        _require(fold.method == "sigmoid", "calibration is not sigmoid")
        _require(isinstance(estimator, linear_svc), "a fold's estimator is not a LinearSVC")
        _require(
            list(fold.classes) == [0, 1] and list(estimator.classes_) == [0, 1],
            "a fold is not binary over classes 0 and 1",
        )
        _require(
            estimator.coef_.shape == (1, n_features) and estimator.intercept_.shape == (1,),
            "a fold's weights do not match the vocabulary",
        )
        _require(len(fold.calibrators) == 1, "a binary fold has more than one calibrator")
    return folds


def _load() -> _Predict:
    # Deferred on purpose: this import is what costs the seconds.
    import profanity_check.profanity_check as fitted

    slow: _Predict = fitted.predict_prob
    try:
        scorer = _LinearScorer(fitted.vectorizer, fitted.model)
    except UnsupportedModelError as error:
        log.warning("profanity model not reproducible (%s); scoring with scikit-learn", error)
        return slow
    probes = list(_PROBES)
    pairs = zip(scorer(probes), slow(probes), strict=True)
    gap = max(abs(fast - expected) for fast, expected in pairs)
    if not gap <= TOLERANCE:
        log.warning("fast profanity scores differ by %.3g; scoring with scikit-learn", gap)
        return slow
    return scorer


def _model() -> _Predict:
    global _predict
    if _predict is None:
        with _load_lock:
            if _predict is None:
                _predict = _load()
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
        # One call for all readings; most prompts read the same plain and as leetspeak, so the
        # duplicates go first (the highest score is the same with or without them).
        return float(max(_model()(list(dict.fromkeys(readings)))))

    def is_toxic(self, texts: Sequence[str]) -> bool:
        """Whether any reading of the prompt scores at or above the threshold."""
        return self.score(texts) >= self.threshold
