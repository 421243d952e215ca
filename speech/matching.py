"""Turn recognised words into a menu choice or a digit string (pure, no vosk).

A vosk runtime grammar only biases decoding: it can return fragments of a
phrase, repeats, several phrases, "<UNK>" or nothing. So a choice is accepted
only when the whole recognised text is exactly one synonym of exactly one
choice, with enough confidence; anything else is "no match" and the flow
re-prompts or falls back to keys or a human.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Protocol

# Garbage words models use for out-of-vocabulary speech and noise.
NOISE_WORDS = frozenset({"[unk]", "<unk>", "<spoken_noise>", "[noise]", "<noise>", "<sil>"})

DIGIT_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
        "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    },
    # Sino-Korean digits, as Koreans read phone and account numbers.
    "ko": {
        "공": "0", "영": "0", "일": "1", "이": "2", "삼": "3", "사": "4", "오": "5",
        "육": "6", "륙": "6", "칠": "7", "팔": "8", "구": "9",
    },
}
# The grammar offered to the recogniser: the common spelling of each digit.
_DIGIT_GRAMMAR: dict[str, list[str]] = {
    "en": ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "ko": ["공", "영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"],
}


class HasWords(Protocol):
    """What matching needs from a Recognition (keeps this module free of vosk)."""

    @property
    def words(self) -> tuple[tuple[str, float], ...]: ...

    @property
    def confidence(self) -> float: ...


def normalise(text: str) -> str:
    """Case-fold, NFKC, drop punctuation and collapse spaces, so "Sales!" == "sales"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(text.split())


def _compact(text: str) -> str:
    """Spacing-insensitive key: Korean spacing varies ("영업 시간" / "영업시간")."""
    return normalise(text).replace(" ", "")


def _language(language: str) -> str:
    code = language.lower().replace("_", "-").split("-")[0]
    if code not in DIGIT_WORDS:
        raise ValueError(f"no digit words for language {language!r}")
    return code


def match_choice(
    recognition: HasWords,
    choices: Mapping[str, Sequence[str]],
    min_confidence: float = 0.6,
) -> str | None:
    """The one choice whose synonym the recognised words form, else None.

    None when nothing was heard, a garbage word was heard, the mean confidence
    is below `min_confidence`, the words are not exactly a synonym (fragments,
    repeats, two choices at once), or the synonym belongs to several choices.
    """
    words = [w for w, _ in recognition.words]
    if not words or recognition.confidence < min_confidence:
        return None
    if any(w.casefold() in NOISE_WORDS for w in words):
        return None
    heard = _compact(" ".join(words))
    if not heard:
        return None
    matched = {
        key for key, synonyms in choices.items()
        if any(_compact(s) == heard for s in synonyms)
    }
    return matched.pop() if len(matched) == 1 else None


def spoken_digits(
    recognition: HasWords, language: str, min_confidence: float = 0.0
) -> str | None:
    """Digit words -> "4122"; None if nothing was heard or any word is not a digit word."""
    table = DIGIT_WORDS[_language(language)]
    words = [w for w, _ in recognition.words]
    if not words or recognition.confidence < min_confidence:
        return None
    digits = []
    for word in words:
        key = normalise(word)
        if key.isdigit() and key.isascii():
            digits.append(key)
        elif key in table:
            digits.append(table[key])
        else:
            return None
    return "".join(digits)


def digit_grammar(language: str) -> list[str]:
    """Phrases for a digits-only recogniser grammar in `language`."""
    return list(_DIGIT_GRAMMAR[_language(language)])


def is_digit_grammar(phrases: Sequence[str]) -> bool:
    """True if every word of `phrases` is a digit word of one known language (or 0-9)."""
    words = {normalise(w) for p in phrases for w in p.split()} - {""}
    if not words:
        return False
    return any(
        all(w in table or (w.isdigit() and w.isascii()) for w in words)
        for table in DIGIT_WORDS.values()
    )


def choice_grammar(choices: Mapping[str, Sequence[str]]) -> list[str]:
    """All synonyms of all choices, de-duplicated in order, for the recogniser grammar."""
    seen: dict[str, None] = {}
    for synonyms in choices.values():
        for synonym in synonyms:
            seen.setdefault(normalise(synonym))
    return [s for s in seen if s]
