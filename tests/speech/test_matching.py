"""Matching recognised words to choices and digits: pure, no model needed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from speech.matching import (
    choice_grammar,
    digit_grammar,
    is_digit_grammar,
    match_choice,
    normalise,
    spoken_digits,
)


@dataclass(frozen=True)
class Heard:
    words: tuple[tuple[str, float], ...]

    @property
    def confidence(self) -> float:
        return sum(c for _, c in self.words) / len(self.words) if self.words else 0.0


def heard(text: str, conf: float = 1.0) -> Heard:
    return Heard(tuple((w, conf) for w in text.split()))


MENU = {"sales": ["sales", "buy something"], "support": ["support", "help"],
        "hours": ["영업 시간"], "agent": ["상담원"]}


@pytest.mark.parametrize("text,expected", [
    ("sales", "sales"), ("buy something", "sales"), ("HELP", "support"),
    ("영업 시간", "hours"), ("영업시간", "hours"), ("상담원", "agent"),
])
def test_whole_synonym_matches(text: str, expected: str) -> None:
    assert match_choice(heard(text), MENU) == expected


@pytest.mark.parametrize("text", [
    "", "buy", "sales sales", "sales help", "영업", "상담원 <UNK>", "<UNK>", "[unk]",
    "something buy",
])
def test_fragments_repeats_mixtures_and_garbage_are_rejected(text: str) -> None:
    assert match_choice(heard(text), MENU) is None


def test_low_confidence_is_rejected() -> None:
    assert match_choice(heard("sales", 0.4), MENU, min_confidence=0.6) is None
    assert match_choice(heard("sales", 0.7), MENU, min_confidence=0.6) == "sales"


def test_ambiguous_synonym_is_rejected() -> None:
    assert match_choice(heard("help"), {"a": ["help"], "b": ["Help!"]}) is None


def test_normalise() -> None:
    assert normalise("  Buy,  Something! ") == "buy something"


@pytest.mark.parametrize("text,language,expected", [
    ("four one two two", "en", "4122"), ("oh nine", "en-US", "09"),
    ("사 일 이 이", "ko", "4122"), ("공 영 구", "ko_KR", "009"), ("칠 팔 육 오 삼", "ko", "78653"),
    ("4 1", "en", "41"),
])
def test_spoken_digits(text: str, language: str, expected: str) -> None:
    assert spoken_digits(heard(text), language) == expected


@pytest.mark.parametrize("text", ["", "four apples", "사 <UNK>", "예약"])
def test_non_digit_words_give_none(text: str) -> None:
    assert spoken_digits(heard(text), "ko" if not text.startswith("four") else "en") is None


def test_spoken_digits_confidence_floor() -> None:
    assert spoken_digits(heard("one", 0.2), "en", min_confidence=0.5) is None


def test_grammars() -> None:
    assert len(digit_grammar("ko")) == 11 and "구" in digit_grammar("ko")
    assert "nine" in digit_grammar("en")
    assert choice_grammar(MENU) == ["sales", "buy something", "support", "help", "영업 시간",
                                    "상담원"]
    with pytest.raises(ValueError):
        digit_grammar("xx")


def test_digit_grammars_are_recognised_as_such() -> None:
    assert is_digit_grammar(digit_grammar("ko")) and is_digit_grammar(digit_grammar("en"))
    assert is_digit_grammar(["one two", "3"])
    assert not is_digit_grammar(["예약", "환불"]) and not is_digit_grammar(["one", "sales"])
    assert not is_digit_grammar([])
