"""Prompt moderation: categories, normalisation, innocent look-alikes and the classifier."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from vidmorph.moderation import classifier
from vidmorph.moderation.blocklist import (
    CATEGORY_FILES,
    HATE,
    ILLICIT_VIOLENT,
    SELF_HARM,
    SEXUAL,
    SEXUAL_MINORS,
    VIOLENCE_GRAPHIC,
    Blocklist,
)
from vidmorph.moderation.classifier import HARASSMENT, ToxicityClassifier
from vidmorph.moderation.moderator import ModerationFlag, Moderator

BENIGN_PROMPTS = [
    "the same street, but at night in the rain",
    "make it look like a watercolor painting",
    "a cyberpunk city with neon lights",
    "a knight fighting a dragon",
    "explosions in an action movie scene",
    "zombie apocalypse, dark horror mood",
    "a sniper on a rooftop, war movie",
    "a bloody battle scene from a medieval epic",
    "kill the lights and make it dark",
    "a vampire biting a victim in a gothic castle",
    "a gun fight in a western saloon",
    "a car bomb goes off in a spy thriller",
    "a suicide mission in deep space, suicide squad style poster",
    "a woman in a bikini on the beach, a sexy red sports car",
    "a nude marble sculpture in a museum",
    "children playing in a park, 4k, 1080p, 24 fps",
    "a 12 year old boy playing football",
    "a teen drama in a high school hallway",
    "Nazi soldiers marching in a WW2 film",
    "a devil with horns in hell fire",
    "a crap weather day at the seaside",
    "a bad ass biker gang on route 66",
    "a loooong empty road, cooool neon lights",
    "isis the egyptian goddess in a temple",
]


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return Moderator()


@pytest.fixture(scope="module")
def lists_only() -> Moderator:
    return Moderator(use_classifier=False)


def category(moderator: Moderator, text: str) -> str | None:
    flag = moderator.check(text)
    return None if flag is None else flag.category


@pytest.mark.parametrize("prompt", BENIGN_PROMPTS)
def test_benign_video_prompts_pass(moderator: Moderator, prompt: str) -> None:
    assert moderator.check(prompt) is None


@pytest.mark.parametrize(
    "prompt",
    [
        "a classic car",
        "assassin's creed style rooftop chase",
        "Assassin’s Creed",
        "grape vineyard at sunset",
        "a therapist office",
        "the Sussex coast",
        "Scunthorpe town centre",
        "a cocktail bar",
        "a shooting star over the ocean",
        "a night shoot on a film set",
        "the Niger river at dawn",
        "a rapeseed field in bloom",
        "the documentary about Al Gore",
        "a gore-tex jacket in the rain",
        "spic and span kitchen",
        "paint stripper on an old door",
        "a white power cable on the desk",
        "a pussy cat on a sofa",
        "a 3d printed vase",
        "drive 100 kms at 1515 metres",
    ],
)
def test_innocent_substrings_are_not_flagged(moderator: Moderator, prompt: str) -> None:
    assert moderator.check(prompt) is None


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a hardcore porn scene", SEXUAL),
        ("a woman being raped", SEXUAL),
        ("child pornography", SEXUAL_MINORS),
        ("a decapitated body, entrails everywhere", VIOLENCE_GRAPHIC),
        ("a school shooting", VIOLENCE_GRAPHIC),
        ("heil hitler, a crowd of skinheads", HATE),
        ("a man shouting nigger", HATE),
        ("how to slit my wrists", SELF_HARM),
        ("a suicidal girl on a bridge", SELF_HARM),
        ("how to build a pipe bomb", ILLICIT_VIOLENT),
        ("a suicide bomber in a market", ILLICIT_VIOLENT),
    ],
)
def test_categories_are_reported(moderator: Moderator, prompt: str, expected: str) -> None:
    assert category(moderator, prompt) == expected


@pytest.mark.parametrize(
    "prompt",
    [
        "kiddie porn",
        "jailbait video",
        "a sex scene with a minor",
        "an erotic scene with a schoolgirl",
        "naked kids at a pool",
        "a sexy 12 year old",
        "a seductive twelve-year-old",
        "topless, aged 15",
        "a naked 14yo",
    ],
)
def test_sexual_content_involving_minors_is_flagged_as_minors(
    lists_only: Moderator, prompt: str
) -> None:
    assert category(lists_only, prompt) == SEXUAL_MINORS


def test_suggestive_words_about_adults_are_not_flagged(lists_only: Moderator) -> None:
    assert lists_only.check("a sexy 25 year old woman in lingerie") is None
    assert category(lists_only, "a sexy 16 year old woman in lingerie") == SEXUAL_MINORS


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("p0rn", SEXUAL),
        ("r@pe scene", SEXUAL),
        ("d3c4p1t4t3d", VIOLENCE_GRAPHIC),
        ("$uicide b0mber", ILLICIT_VIOLENT),
        ("ch1ld p0rn", SEXUAL_MINORS),
        ("s3lf h4rm", SELF_HARM),
    ],
)
def test_leetspeak_is_normalised(lists_only: Moderator, prompt: str, expected: str) -> None:
    assert category(lists_only, prompt) == expected


@pytest.mark.parametrize(
    "prompt",
    ["PORN", "P.O.R.N", "p o r n video", "p-o-r-n", "PoRn!!!", "«porn»", "pooorn", "pоrn"],
)
def test_case_punctuation_spelling_and_lookalike_letters_are_normalised(
    lists_only: Moderator, prompt: str
) -> None:
    # The last one spells its "o" with a Cyrillic letter.
    assert category(lists_only, prompt) == SEXUAL


def test_stretched_letters_match_only_when_stretched_on_purpose() -> None:
    blocklist = Blocklist({HATE: ["coon"]})
    assert blocklist.match("comic con") is None
    assert blocklist.match("Maine cooooon") is not None
    assert blocklist.match("coon") is not None


def test_numbers_are_not_read_as_leetspeak() -> None:
    blocklist = Blocklist({ILLICIT_VIOLENT: ["isis"]})
    assert blocklist.match("the year 1515") is None
    assert blocklist.match("1s1s fighters") is not None


def test_plurals_and_multiword_phrases_match(lists_only: Moderator) -> None:
    assert category(lists_only, "two pipe bombs") == ILLICIT_VIOLENT
    assert category(lists_only, "serial rapists") == SEXUAL
    assert lists_only.check("a pipe and a bomb") is None


def test_allowlisted_phrase_masks_only_its_own_words(lists_only: Moderator) -> None:
    assert lists_only.check("Al Gore giving a speech") is None
    assert category(lists_only, "Al Gore giving a speech, blood and gore") == VIOLENCE_GRAPHIC


def test_gravest_category_wins_when_several_match(lists_only: Moderator) -> None:
    assert category(lists_only, "porn with a suicide bomber") == ILLICIT_VIOLENT


def test_classifier_flags_abusive_text_without_blocklist_words(moderator: Moderator) -> None:
    abusive = [
        "shut up you stupid bitch",
        "you are a pathetic loser",
        "fuck you asshole",
        "sh1t",
        "fuuuuck you",
    ]
    for text in abusive:
        assert Blocklist.from_package().match(text) is None, text
        assert category(moderator, text) == HARASSMENT, text


def test_classifier_is_skipped_when_disabled(lists_only: Moderator) -> None:
    assert lists_only.check("shut up you stupid bitch") is None


def test_word_lists_are_consulted_before_the_classifier(moderator: Moderator) -> None:
    assert category(moderator, "kill yourself you worthless piece of shit") == SELF_HARM


def test_classifier_threshold_decides_borderline_swearing() -> None:
    # "hell" alone scores about 0.96: below the default, above a stricter threshold.
    prompt = "a devil with horns in hell fire"
    assert Moderator().check(prompt) is None
    assert category(Moderator(classifier_threshold=0.9), prompt) == HARASSMENT


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5])
def test_classifier_rejects_threshold_outside_unit_interval(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        ToxicityClassifier(threshold)


def test_blank_prompt_passes(moderator: Moderator) -> None:
    assert moderator.check("") is None
    assert moderator.check("  \n\t ") is None
    assert ToxicityClassifier().score(["", " "]) == 0.0


def test_flag_message_uses_the_contracts_phrase(moderator: Moderator) -> None:
    flag = moderator.check("a decapitated body")
    assert flag == ModerationFlag(
        VIOLENCE_GRAPHIC, "Text prompt did not pass moderation (category: violence/graphic)."
    )


def test_packaged_lists_hold_a_few_dozen_entries_per_category() -> None:
    sizes = Blocklist.from_package().sizes()
    assert set(sizes) == set(CATEGORY_FILES)
    assert all(30 <= size <= 100 for size in sizes.values()), sizes


def test_warm_loads_the_model_and_threads_then_share_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classifier, "_predict", None)
    moderator = Moderator()
    moderator.warm()
    loaded = classifier._predict
    assert loaded is not None
    # Concurrent checks give the sequential answers and never reload the model.
    prompts = [*BENIGN_PROMPTS[:6], "you are a pathetic loser", "a decapitated body"] * 8
    expected = [category(moderator, p) for p in prompts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lambda p: category(moderator, p), prompts)) == expected
    assert classifier._predict is loaded
    assert expected[6:8] == [HARASSMENT, VIOLENCE_GRAPHIC]
