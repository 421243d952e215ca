"""Checks on digits a caller keyed in, before the flow acts on them."""

from __future__ import annotations

import re


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) checksum used by card and many account numbers."""
    if not _ascii_digits(digits) or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _ascii_digits(text: str) -> bool:
    """0-9 only: str.isdigit() also accepts '²' or '１', which int() or a CRM would choke on."""
    return text.isascii() and text.isdigit()


def digits_valid(digits: str, *, min_digits: int, max_digits: int, luhn: bool,
                 pattern: str | None) -> bool:
    if not _ascii_digits(digits) or not min_digits <= len(digits) <= max_digits:
        return False
    if luhn and not luhn_ok(digits):
        return False
    return not (pattern and not re.fullmatch(pattern, digits))
