"""Which numbers may be called back, and the time zones a number may be in.

Calling back costs money and reaches a person, so the rule is narrow: a phone we can ring
and a person can answer. Allowed: MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE, TOLL_FREE (a
company switchboard asking to be called back is fine, and free to call), VOIP,
PERSONAL_NUMBER and UAN (company numbers that route to a person). Refused: a withheld
caller, anything unparseable or invalid, emergency numbers and short codes, PREMIUM_RATE
and SHARED_COST (we would pay, or be made to pay), PAGER, VOICEMAIL and numbers whose type
the metadata does not know.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    shortnumberinfo,
    timezone,
)

from .errors import NotCallable

# Twilio's From for a caller who hides their number: the words, or the keypad spellings of
# ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN and UNAVAILABLE; compared without case or a "+".
WITHHELD = frozenset({
    "anonymous", "restricted", "unknown", "private", "unavailable", "blocked", "withheld",
    "266696687", "86282452253", "7378742833", "2562533", "8656696",
})
CALLABLE_TYPES = frozenset({
    PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
})
REFUSED_TYPES: dict[int, tuple[str, str]] = {  # type -> (code, words)
    PhoneNumberType.PREMIUM_RATE: ("premium_rate", "a premium-rate number"),
    PhoneNumberType.SHARED_COST: ("shared_cost", "a shared-cost number"),
    PhoneNumberType.PAGER: ("pager", "a pager"),
    PhoneNumberType.VOICEMAIL: ("voicemail", "a voicemail access number"),
    PhoneNumberType.UNKNOWN: ("unknown_type", "of a type the numbering plan does not know"),
}
UNKNOWN_ZONE = "Etc/Unknown"


def _withheld(raw: str | None) -> bool:
    text = (raw or "").strip().lower()
    return not text or text in WITHHELD or text.lstrip("+") in WITHHELD


def _region(number: PhoneNumber, default_region: str) -> str:
    region = phonenumbers.region_code_for_country_code(number.country_code)
    return default_region if region in (None, "ZZ", "001") else region


def callable_number(raw: str | None, default_region: str = "US") -> str:
    """The number as E.164, or NotCallable saying why we must never dial it (module doc)."""
    if _withheld(raw):
        raise NotCallable("the number is withheld", "withheld")
    assert raw is not None
    region = default_region.upper()
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except NumberParseException:
        raise NotCallable(f"{raw.strip()!r} is not a phone number", "unparseable") from None
    national = phonenumbers.national_significant_number(number)
    if shortnumberinfo.is_emergency_number(national, _region(number, region)):
        raise NotCallable(f"{raw.strip()!r} is an emergency number", "emergency")
    if not phonenumbers.is_valid_number(number):
        if shortnumberinfo.is_possible_short_number(number):
            raise NotCallable(f"{raw.strip()!r} is a short code, not a phone", "short_code")
        raise NotCallable(f"{raw.strip()!r} is not a valid number", "invalid")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    kind = phonenumbers.number_type(number)
    if kind in CALLABLE_TYPES:
        return e164
    code, words = REFUSED_TYPES.get(kind, REFUSED_TYPES[PhoneNumberType.UNKNOWN])
    raise NotCallable(f"{e164} is {words}", code)


@lru_cache(maxsize=1024)
def _loadable(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # not found, a bad key, a directory
        return False
    return True


def time_zones(number: str, fallback: str) -> tuple[str, ...]:
    """The IANA zones the number may be in (one for most landlines; a whole country for a
    mobile or toll-free number in a country that spans several), or `(fallback,)` when the
    metadata knows none that this machine can load."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return (fallback,)
    names = timezone.time_zones_for_number(parsed)
    zones = tuple(n for n in names if n != UNKNOWN_ZONE and _loadable(n))
    return zones or (fallback,)
