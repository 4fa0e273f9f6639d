"""Category word lists matched as whole normalised words and phrases, never as substrings.

The lists are the `*.txt` files beside this module (one entry a line, `#` starts a comment).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import NamedTuple

SEXUAL = "sexual"
SEXUAL_MINORS = "sexual/minors"
VIOLENCE_GRAPHIC = "violence/graphic"
HATE = "hate"
SELF_HARM = "self-harm"
ILLICIT_VIOLENT = "illicit/violent"

# Gravest first: a prompt that hits several lists is reported under the first of them.
CATEGORY_FILES: dict[str, str] = {
    SEXUAL_MINORS: "blocklist_sexual_minors.txt",
    ILLICIT_VIOLENT: "blocklist_illicit_violent.txt",
    HATE: "blocklist_hate.txt",
    VIOLENCE_GRAPHIC: "blocklist_violence_graphic.txt",
    SEXUAL: "blocklist_sexual.txt",
    SELF_HARM: "blocklist_self_harm.txt",
}
_PACKAGE = __name__.rpartition(".")[0]
ALLOW_FILE = "allowlist.txt"
MINOR_MARKERS_FILE = "minor_markers.txt"
SUGGESTIVE_FILE = "suggestive_terms.txt"

# Pseudo-categories for the helper lists; the leading "_" keeps them apart from real ones.
_ALLOW = "_allow"
_MINOR = "_minor"
_SUGGESTIVE = "_suggestive"

_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
# Cyrillic and Greek letters that look Latin, a cheap way to dodge a word list.
_HOMOGLYPHS = str.maketrans(
    {"а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ѕ": "s",
     "к": "k", "м": "m", "т": "t", "н": "h", "в": "b", "ο": "o", "α": "a", "ε": "e", "ι": "i"}
)  # fmt: skip
# What leetspeak reading can change: without any of these, it reads as the plain text.
_LEET_PRONE = re.compile(r"[013457@$!]")
_APOSTROPHES = re.compile(r"['’‘`´]")
_WORD = re.compile(r"[^\W_]+")
# Numbers and dates keep their digits: "1515" is a year, not "isis" in leetspeak.
_NUMERIC_CHUNK = re.compile(r"[\d.,:/%+-]+")
# "!" stands for "i" only inside a word; a final "!" is punctuation.
_INNER_BANG = re.compile(r"!(?=\w)")
_ELONGATED = re.compile(r"(\w)\1\1")
_REPEATS = re.compile(r"(\w)\1+")
_STRETCH = re.compile(r"(\w)\1{2,}")
_PLURALS = ("", "s", "es")
_AGE_UNITS = frozenset({"year", "years", "yr", "yrs", "yo"})
# fmt: off
_AGE_WORDS = {
    word: n for n, word in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    ))
}
# fmt: on
_AGE_WITH_UNIT = re.compile(r"(\d{1,2})(?:yo|yr|yrs|y)")


def tokenise(text: str, *, leet: bool = False) -> list[str]:
    """Casefolded, accent-free word tokens; with `leet`, "k1ll" and "@$$" read as letters."""
    return _tokens(_folded(text), leet)


def _folded(text: str) -> str:
    """Casefolded, accents and look-alike letters undone, apostrophes dropped."""
    if text.isascii():  # most prompts: no accents or look-alikes, and casefold() is lower()
        folded = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
        folded = folded.translate(_HOMOGLYPHS)
    return _APOSTROPHES.sub("", folded)


def _tokens(folded: str, leet: bool) -> list[str]:
    tokens: list[str] = []
    for chunk in folded.split():
        if leet and _LEET_PRONE.search(chunk) and not _NUMERIC_CHUNK.fullmatch(chunk):
            chunk = _INNER_BANG.sub("i", chunk).translate(_LEET)
        tokens.extend(_WORD.findall(chunk))
    return _join_spelled_out(tokens)


def _join_spelled_out(tokens: list[str]) -> list[str]:
    """Merge runs of three or more one-letter tokens: "p o r n" and "p.o.r.n" become "porn"."""
    joined: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if len(token) == 1:
            run.append(token)
            continue
        joined.extend(["".join(run)] if len(run) >= 3 else run)
        run = []
        if token:
            joined.append(token)
    return joined


def _squeezed(word: str) -> str:
    return "~" + _REPEATS.sub(r"\1", word)


def _text_keys(token: str) -> frozenset[str]:
    # Only a token stretched on purpose ("fuuuck", "kiiill") is compared with repeats squeezed,
    # so "con" never meets an entry like "coon".
    if _ELONGATED.search(token):
        return frozenset({token, _squeezed(token)})
    return frozenset({token})


def _entry_keys(word: str) -> frozenset[str]:
    forms = [word + suffix for suffix in _PLURALS]
    return frozenset(forms + [_squeezed(form) for form in forms])


@dataclass(frozen=True)
class _Phrase:
    words: tuple[frozenset[str], ...]
    entry: str
    category: str


@dataclass(frozen=True)
class BlocklistMatch:
    """A list entry found in a prompt: its category and the entry (normalised) that matched."""

    category: str
    entry: str


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    phrase: _Phrase


class _Reading(NamedTuple):
    """One reading of a prompt (literal or leetspeak): its tokens, the list entries found in
    them, and the positions an allowlisted phrase covers."""

    tokens: list[str]
    spans: list[_Span]
    masked: set[int]


class Blocklist:
    """Immutable word lists by category; safe to share between threads."""

    def __init__(
        self,
        categories: Mapping[str, Iterable[str]],
        *,
        allow: Iterable[str] = (),
        minor_markers: Iterable[str] = (),
        suggestive: Iterable[str] = (),
    ) -> None:
        self.categories = tuple(categories)
        self._index: dict[str, list[_Phrase]] = {}
        lists = [*categories.items(), (_ALLOW, allow), (_MINOR, minor_markers)]
        for category, entries in [*lists, (_SUGGESTIVE, suggestive)]:
            for entry in entries:
                self._add(entry, category)

    @classmethod
    def from_package(cls) -> Blocklist:
        """The lists shipped with Vidmorph, read once per process."""
        return _packaged()

    def sizes(self) -> dict[str, int]:
        """How many entries each category holds."""
        counts = dict.fromkeys(self.categories, 0)
        for phrase in {p for phrases in self._index.values() for p in phrases}:
            if phrase.category in counts:
                counts[phrase.category] += 1
        return counts

    def match(self, text: str) -> BlocklistMatch | None:
        """The gravest category found in `text`, read both literally and as leetspeak."""
        return self.examine(text)[0]

    def screened_texts(self, text: str) -> list[str]:
        """Readings of `text` for the classifier, allowlisted phrases taken out: plain, as
        leetspeak and, when a word is stretched ("fuuuck"), with the stretch undone."""
        return self.examine(text)[1]

    def examine(self, text: str) -> tuple[BlocklistMatch | None, list[str]]:
        """`match` and `screened_texts` at once: each reading of `text` is tokenised and
        scanned for entries once (a moderation check needs both, and this is most of it)."""
        folded = _folded(text)
        plain = self._reading(_tokens(folded, False))
        leet = plain  # unless leetspeak changes a word, it reads as the plain text
        if _LEET_PRONE.search(folded):
            tokens = _tokens(folded, True)
            if tokens != plain.tokens:
                leet = self._reading(tokens)
        readings = [plain, leet]
        return self._gravest(readings), _screened(readings)

    def _reading(self, tokens: list[str]) -> _Reading:
        spans = self._all_spans(tokens)
        return _Reading(tokens, spans, _allowed(spans))

    def _gravest(self, readings: list[_Reading]) -> BlocklistMatch | None:
        found: dict[str, str] = {}
        for _, spans, masked in readings:
            for span in spans:
                if span.phrase.category != _ALLOW and masked.isdisjoint(
                    range(span.start, span.end)
                ):
                    found[span.phrase.category] = span.phrase.entry
        sexual_entry = found.get(SEXUAL) or found.get(_SUGGESTIVE)
        if sexual_entry and (_MINOR in found or _mentions_minor_age(readings[0].tokens)):
            return BlocklistMatch(SEXUAL_MINORS, sexual_entry)
        for category in self.categories:
            if category in found:
                return BlocklistMatch(category, found[category])
        return None

    def _add(self, entry: str, category: str) -> None:
        words = tokenise(entry)
        if not words:
            return
        phrase = _Phrase(tuple(_entry_keys(w) for w in words), " ".join(words), category)
        for key in phrase.words[0]:
            self._index.setdefault(key, []).append(phrase)

    def _all_spans(self, tokens: list[str]) -> list[_Span]:
        keys = [_text_keys(t) for t in tokens]
        spans: list[_Span] = []
        for start, first in enumerate(keys):
            candidates = {p for key in first for p in self._index.get(key, ())}
            for phrase in candidates:
                end = start + len(phrase.words)
                rest = zip(keys[start + 1 : end], phrase.words[1:], strict=False)
                if end <= len(keys) and all(not k.isdisjoint(w) for k, w in rest):
                    spans.append(_Span(start, end, phrase))
        return spans


def _screened(readings: list[_Reading]) -> list[str]:
    texts = []
    for tokens, _, masked in readings:
        texts.append(" ".join(t for i, t in enumerate(tokens) if i not in masked))
    stretched = texts[-1]
    if _ELONGATED.search(stretched):
        # The model knows dictionary spellings; the stretched letter was single or double.
        texts += [_STRETCH.sub(r"\1", stretched), _STRETCH.sub(r"\1\1", stretched)]
    return texts


def _allowed(spans: list[_Span]) -> set[int]:
    """Token positions covered by an allowlisted phrase."""
    return {i for s in spans if s.phrase.category == _ALLOW for i in range(s.start, s.end)}


def _mentions_minor_age(tokens: list[str]) -> bool:
    """True for an age under 18: "12 year old", "twelve-year-old", "12yo", "aged 12"."""
    for i, token in enumerate(tokens):
        with_unit = _AGE_WITH_UNIT.fullmatch(token)
        if with_unit:
            age, unit_given = int(with_unit.group(1)), True
        elif token.isdecimal() and len(token) <= 2:
            age, unit_given = int(token), False
        elif token in _AGE_WORDS:
            age, unit_given = _AGE_WORDS[token], False
        else:
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        before = tokens[i - 1] if i else ""
        if 0 < age < 18 and (unit_given or after in _AGE_UNITS or before in {"age", "aged"}):
            return True
    return False


def read_list(name: str) -> list[str]:
    """Entries of one packaged list file, comments and blank lines dropped."""
    text = resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


@cache
def _packaged() -> Blocklist:
    return Blocklist(
        {category: read_list(name) for category, name in CATEGORY_FILES.items()},
        allow=read_list(ALLOW_FILE),
        minor_markers=read_list(MINOR_MARKERS_FILE),
        suggestive=read_list(SUGGESTIVE_FILE),
    )
