"""Filler-word choice from a vocabulary: pure, no model, shown with an English vocabulary."""

from __future__ import annotations

from speech.garbage import filler_words
from speech.matching import match_choice

from .test_matching import heard

VOCAB = frozenset({
    "sales", "support", "sale", "salesman", "supporting", "sails", "sport", "help", "helper",
    "zebra", "pickle", "tundra", "mango", "orbit", "quiet", "marble", "window", "garden",
    "lantern", "a", "i", "extraordinarily", "<unk>", "[unk]", "#0", "!sil", "42", "예약", "안내",
    "sp0rt",
})
PHRASES = ["sales", "support"]


def test_fillers_come_from_the_vocabulary_and_are_never_a_phrase_or_part_of_one() -> None:
    fillers = filler_words(VOCAB, PHRASES, count=50, min_distance=0.0)
    assert set(fillers) <= VOCAB
    for excluded in ("sales", "support", "sale", "salesman", "supporting"):
        assert excluded not in fillers


def test_fillers_skip_markers_digits_other_scripts_and_overlong_words() -> None:
    fillers = filler_words(VOCAB, PHRASES, count=50, min_distance=0.0)
    assert not {"<unk>", "[unk]", "#0", "!sil", "42", "sp0rt", "예약", "안내"} & set(fillers)
    assert "extraordinarily" not in fillers  # longer than twice the longest phrase word
    assert {"zebra", "pickle", "mango", "i"} <= set(fillers)
    assert "a" not in fillers  # inside "sales"


def test_fillers_spelled_like_a_phrase_word_are_left_out() -> None:
    loose = filler_words(VOCAB, PHRASES, count=50, min_distance=0.0)
    strict = filler_words(VOCAB, PHRASES, count=50, min_distance=0.5)
    assert {"sails", "sport"} <= set(loose)
    assert not {"sails", "sport"} & set(strict)


def test_fillers_are_deterministic_and_capped() -> None:
    first = filler_words(VOCAB, PHRASES, count=3, min_distance=0.0)
    assert len(first) == 3
    assert filler_words(VOCAB, ["support", "sales", "sales"], count=3, min_distance=0.0) == first
    assert filler_words(VOCAB, PHRASES, count=0) == []
    assert filler_words(VOCAB, [], count=5) == []


def test_a_recognised_filler_is_never_a_choice() -> None:
    menu = {"s": ["sales"], "t": ["support"]}
    for filler in filler_words(VOCAB, PHRASES, count=50, min_distance=0.0):
        assert match_choice(heard(filler), menu) is None
        assert match_choice(heard(f"sales {filler}"), menu) is None
