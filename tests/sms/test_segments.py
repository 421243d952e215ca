"""Segment counts against the GSM 03.38 / UCS-2 rules carriers bill by."""

from __future__ import annotations

import pytest

from sms.errors import TemplateTooLong
from sms.segments import encoding, fit, length, segments, shorten_to_fit

EMOJI = "\U0001F600"  # one code point, a UTF-16 surrogate pair


@pytest.mark.parametrize("n, expected", [
    (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4),
])
def test_gsm7_text_is_160_septets_alone_then_153_per_segment(n: int, expected: int) -> None:
    assert segments("a" * n) == expected


def test_an_empty_text_is_no_segments() -> None:
    assert segments("") == 0


@pytest.mark.parametrize("ch", list("^{}\\[~]|€\f"))
def test_extension_characters_stay_gsm7_but_cost_two_septets(ch: str) -> None:
    assert encoding(ch) == "GSM-7"
    assert length(ch) == 2
    assert segments(ch * 80) == 1
    assert segments(ch * 81) == 2


def test_a_single_euro_sign_counts_two() -> None:
    assert length("€") == 2
    assert segments("a" * 158 + "€") == 1
    assert segments("a" * 159 + "€") == 2


def test_an_escape_pair_is_not_split_across_segments() -> None:
    # 152 septets then a 2-septet character: it does not fit in segment one's last septet.
    text = "a" * 152 + "€" + "a" * 152
    assert length(text) == 306
    assert segments(text) == 3
    assert segments("a" * 151 + "€" + "a" * 153) == 2


def test_accented_letters_in_the_gsm_table_stay_gsm7() -> None:
    assert encoding("Café Müller, Ñoño, £5 @ 10¥ §Δ") == "GSM-7"


@pytest.mark.parametrize("text", ["ç", "Ê", "“quoted”", "it’s", "naïve", "Ñandú", "\x1b",
                                  "é\u0301"])
def test_characters_outside_gsm7_switch_the_whole_text_to_ucs2(text: str) -> None:
    assert encoding("plain ascii " + text) == "UCS-2"


@pytest.mark.parametrize("n, expected", [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3)])
def test_ucs2_text_is_70_units_alone_then_67_per_segment(n: int, expected: int) -> None:
    assert segments("ж" * n) == expected


def test_korean_text_is_ucs2() -> None:
    text = "고객센터 대기 순서는 3번째입니다"
    assert encoding(text) == "UCS-2"
    assert segments("가" * 70) == 1
    assert segments("가" * 71) == 2


def test_an_emoji_counts_two_code_units() -> None:
    assert encoding(EMOJI) == "UCS-2"
    assert length(EMOJI) == 2
    assert segments(EMOJI * 35) == 1
    assert segments(EMOJI * 36) == 2


def test_a_surrogate_pair_is_not_split_across_segments() -> None:
    text = "ж" * 66 + EMOJI + "ж" * 66  # 134 units, but the pair cannot start at unit 67
    assert length(text) == 134
    assert segments(text) == 3
    assert segments("ж" * 65 + EMOJI + "ж" * 67) == 2


def test_fit_returns_a_text_within_the_budget() -> None:
    assert fit("a" * 306) == "a" * 306


def test_fit_names_the_counts_when_the_text_is_too_long() -> None:
    with pytest.raises(TemplateTooLong) as err:
        fit("a" * 307, max_segments=2, template="wait_estimate")
    assert (err.value.segments, err.value.max_segments, err.value.encoding) == (3, 2, "GSM-7")
    assert "'wait_estimate'" in str(err.value)
    assert "307 characters of GSM-7 need 3 segments" in str(err.value)


def test_shorten_leaves_a_text_that_fits_alone() -> None:
    assert shorten_to_fit("short", 1) == "short"


def test_shorten_cuts_at_a_word_boundary_and_fits() -> None:
    text = " ".join(["word"] * 60)  # 299 characters
    out = shorten_to_fit(text, 1)
    assert out.endswith("word...")
    assert segments(out) == 1
    assert len(out) > 150  # it keeps as much as fits, not a token prefix


def test_shorten_cuts_a_single_huge_word_mid_word() -> None:
    out = shorten_to_fit("x" * 500, 1)
    assert out == "x" * 157 + "..."


def test_shorten_may_drop_the_character_that_forced_ucs2() -> None:
    text = "a " * 100 + EMOJI
    out = shorten_to_fit(text, 1)
    assert encoding(out) == "GSM-7"
    assert segments(out) == 1


def test_shorten_rejects_a_budget_below_one() -> None:
    with pytest.raises(ValueError):
        shorten_to_fit("text", 0)
