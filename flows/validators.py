"""Checks on digits a caller keyed in, before the flow acts on them."""

from __future__ import annotations

import re


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) checksum used by card and many account numbers."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def digits_valid(digits: str, *, min_digits: int, max_digits: int, luhn: bool,
                 pattern: str | None) -> bool:
    if not digits.isdigit() or not min_digits <= len(digits) <= max_digits:
        return False
    if luhn and not luhn_ok(digits):
        return False
    return not (pattern and not re.fullmatch(pattern, digits))
