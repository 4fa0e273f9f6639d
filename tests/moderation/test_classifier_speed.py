"""The classifier's fast path: scikit-learn's exact probabilities and verdicts, in microseconds."""

from __future__ import annotations

import ast
import copy
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import profanity_check.profanity_check as fitted
import pytest

from vidmorph.moderation import classifier
from vidmorph.moderation.blocklist import Blocklist
from vidmorph.moderation.classifier import TOLERANCE, ToxicityClassifier
from vidmorph.moderation.moderator import CACHED_VERDICTS, Moderator

EDGE_CASES = [
    "",
    " ",
    "\n\t ",
    "!!!",
    "?!.,;:-_()[]{}<>/\\|@#$%^&*~`'\"",
    "a",
    "I",
    "42",
    "1080p 4k 24fps",
    "the and of to a in",  # stop words only
    "FUCK YOU",
    "FuCk YoU aSsHoLe",
    "f*ck you a$$hole",
    "sh1t b1tch",
    "fuuuuuuuck",
    "shit shit shit shit shit shit shit",
    "hell",
    "damn it",
    "café naïve déjà vu résumé",
    "Ünïcödé wörds everywhere",
    "東京の夜景、雨の中",
    "ночной город под дождём",
    "مدينة في الليل",
    "पुराना शहर",
    "🔥🔥🔥 lit 💯",
    "emoji 🤬 rage 😡",
    "pоrn with a Cyrillic o",
    "don't can't won't you're",
    "under_score snake_case_words",
    "tabs\tand\nnew\nlines",
    "x" * 1000,
    "word " * 200,
]


def _literals_of_the_moderator_tests() -> list[str]:
    # Every string literal in test_moderator.py: a superset of its prompts that stays in step
    # with that file (the odd category name or message among them is just one more input).
    tree = ast.parse((Path(__file__).parent / "test_moderator.py").read_text(encoding="utf-8"))
    found = (node.value for node in ast.walk(tree) if isinstance(node, ast.Constant))
    return sorted({value for value in found if isinstance(value, str)})


def _generated_texts(count: int) -> Iterator[str]:
    """Seeded random mixes of the model's own words, unknown words and punctuation."""
    rng = random.Random(20240607)
    vocabulary = sorted(fitted.vectorizer.vocabulary_)
    filler = ["zzqx", "the", "of", "!!", ",", "ünïcode", "42", "a"]
    for _ in range(count):
        words = [
            rng.choice(vocabulary) if rng.random() < 0.7 else rng.choice(filler)
            for _ in range(rng.randint(1, 40))
        ]
        yield " ".join(word.upper() if rng.random() < 0.1 else word for word in words)
    # 1000-character prompts, the API's longest, dense with known words.
    for _ in range(5):
        yield " ".join(rng.choice(vocabulary) for _ in range(400))[:1000]


def _corpus() -> list[str]:
    prompts = [*EDGE_CASES, *_literals_of_the_moderator_tests()]
    blocklist = Blocklist.from_package()
    # The readings the moderator actually scores, leetspeak and unstretched ones included.
    readings = [reading for prompt in prompts for reading in blocklist.screened_texts(prompt)]
    return list(dict.fromkeys([*prompts, *readings, *_generated_texts(150)]))


CORPUS = _corpus()


@pytest.fixture(scope="module")
def fast() -> classifier._LinearScorer:
    scorer = classifier._model()
    assert isinstance(scorer, classifier._LinearScorer), "fast path fell back to scikit-learn"
    return scorer


def test_corpus_is_large_and_varied() -> None:
    assert len(CORPUS) >= 200
    assert "" in CORPUS
    assert max(len(text) for text in CORPUS) >= 1000


def test_fast_probabilities_equal_scikit_learns(fast: classifier._LinearScorer) -> None:
    expected = fitted.predict_prob(CORPUS)
    got = fast(CORPUS)
    gaps = {text: abs(g - e) for text, g, e in zip(CORPUS, got, expected, strict=True)}
    worst = max(gaps, key=gaps.__getitem__)
    assert gaps[worst] <= TOLERANCE, (worst[:80], gaps[worst])
    # Not a vacuous match: the corpus spans clean to abusive.
    assert min(expected) < 0.1 and max(expected) > 0.999


def test_each_text_scores_the_same_alone_as_in_a_batch(fast: classifier._LinearScorer) -> None:
    batch = fast(CORPUS[:50])
    assert [fast([text])[0] for text in CORPUS[:50]] == batch


def _verdicts(prompts: list[str]) -> list[tuple[str | None, float]]:
    moderator, scorer = Moderator(), ToxicityClassifier()
    blocklist = Blocklist.from_package()
    verdicts = []
    for prompt in prompts:
        flag = moderator.check(prompt)
        score = scorer.score(blocklist.screened_texts(prompt))
        verdicts.append((None if flag is None else flag.category, score))
    return verdicts


def test_moderator_verdicts_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts = [*_literals_of_the_moderator_tests(), *EDGE_CASES]
    with monkeypatch.context() as patch:
        patch.setattr(classifier, "_predict", fitted.predict_prob)
        slow = _verdicts(prompts)
    fast = _verdicts(prompts)
    assert [category for category, _ in fast] == [category for category, _ in slow]
    for (_, fast_score), (_, slow_score) in zip(fast, slow, strict=True):
        assert fast_score == pytest.approx(slow_score, abs=TOLERANCE, rel=0)


def test_duplicate_readings_score_like_one() -> None:
    scorer = ToxicityClassifier()
    assert scorer.score(["fuck you", "fuck you"]) == scorer.score(["fuck you"])
    assert scorer.score(["a calm lake", "fuck you"]) == scorer.score(["fuck you"])


def test_threads_share_the_fast_scorer(fast: classifier._LinearScorer) -> None:
    texts = CORPUS[:64] * 4
    expected = [fast([text])[0] for text in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lambda text: fast([text])[0], texts)) == expected


def test_warm_score_takes_well_under_a_millisecond(fast: classifier._LinearScorer) -> None:
    # scikit-learn took 8-10 ms a call. The best of many runs shrugs off a busy machine.
    for text in ["the same street, but at night in the rain", CORPUS[-1]]:
        timings = []
        for _ in range(50):
            start = time.perf_counter()
            fast([text, text.upper()])
            timings.append(time.perf_counter() - start)
        assert min(timings) < 1e-3, (len(text), min(timings))


def test_moderator_remembers_a_bounded_number_of_verdicts() -> None:
    moderator = Moderator()
    first = moderator.check("shut up you stupid bitch")
    assert first is not None
    assert moderator.check("shut up you stupid bitch") is first
    info = moderator._remembered.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, CACHED_VERDICTS)


def _reload(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(classifier, "_predict", None)
    return classifier._model()


def test_an_unexpected_model_falls_back_to_scikit_learn(monkeypatch: pytest.MonkeyPatch) -> None:
    sublinear = copy.copy(fitted.vectorizer)
    sublinear.sublinear_tf = True
    monkeypatch.setattr(fitted, "vectorizer", sublinear)
    with pytest.raises(classifier.UnsupportedModelError, match="rescaled"):
        classifier._LinearScorer(sublinear, fitted.model)
    assert _reload(monkeypatch) is fitted.predict_prob


def test_a_fast_path_that_disagrees_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def off_by_a_little(self: classifier._LinearScorer, texts: list[str]) -> list[float]:
        return [p + 1e-6 for p in fitted.predict_prob(texts)]

    monkeypatch.setattr(classifier._LinearScorer, "__call__", off_by_a_little)
    assert _reload(monkeypatch) is fitted.predict_prob
