"""Digit checks a collect node applies before the flow acts on what the caller keyed."""

from __future__ import annotations

import pytest

from flows.validators import digits_valid, luhn_ok


@pytest.mark.parametrize("digits", ["79927398713", "4539578763621486", "0000000000", "18",
                                    "12345674"])
def test_luhn_accepts_valid_numbers(digits: str) -> None:
    assert luhn_ok(digits)


@pytest.mark.parametrize("digits", ["79927398710", "4539578763621487", "12345678", "0", "",
                                    "7992739871a", "7992 7398 713", "²3", "１８"])
def test_luhn_refuses_invalid_numbers(digits: str) -> None:
    assert not luhn_ok(digits)


def check(digits: str, *, min_digits: int = 4, max_digits: int = 6, luhn: bool = False,
          pattern: str | None = None) -> bool:
    return digits_valid(digits, min_digits=min_digits, max_digits=max_digits, luhn=luhn,
                        pattern=pattern)


@pytest.mark.parametrize("digits, ok", [("123", False), ("1234", True), ("123456", True),
                                        ("1234567", False), ("", False), ("12*4", False),
                                        ("１２３４", False)])
def test_length_limits_are_inclusive_and_only_ascii_digits_count(digits: str, ok: bool) -> None:
    assert check(digits) is ok


def test_luhn_is_applied_only_when_asked() -> None:
    assert check("12345678", min_digits=8, max_digits=8) is True
    assert check("12345678", min_digits=8, max_digits=8, luhn=True) is False
    assert check("12345674", min_digits=8, max_digits=8, luhn=True) is True


@pytest.mark.parametrize("digits, ok", [("9123", True), ("1234", False), ("91234", True)])
def test_pattern_must_match_the_whole_entry(digits: str, ok: bool) -> None:
    assert check(digits, pattern="9[0-9]+") is ok
    assert check(digits, pattern="9") is False  # fullmatch, not search
