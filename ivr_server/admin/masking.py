"""Caller numbers shown masked unless a role may reveal them: the country code and the last
two digits, enough to tell calls apart and to match a complaint, not to call anyone."""

from __future__ import annotations

import phonenumbers

DOT = "•"


def mask_number(number: str | None) -> str:
    """'+14155550123' -> '+1 ••••••••23'. Withheld callers, SIP and client identities are not
    phone numbers and pass unchanged; anything else number-like keeps its last two digits."""
    if not number:
        return ""
    text = number.strip()
    digits = text.lstrip("+")
    if not digits.isdigit():
        return text
    if len(digits) <= 4:
        return DOT * len(digits)
    try:
        parsed = phonenumbers.parse(text if text.startswith("+") else "+" + digits)
        national = str(parsed.national_number)
        if parsed.italian_leading_zero:
            national = "0" * (parsed.number_of_leading_zeros or 1) + national
        return f"+{parsed.country_code} {DOT * (len(national) - 2)}{national[-2:]}"
    except phonenumbers.NumberParseException:
        return DOT * (len(digits) - 2) + digits[-2:]
