"""Which caller numbers may be texted, and one spelling (E.164) for keying opt-outs and caps.

Textable: MOBILE, FIXED_LINE_OR_MOBILE (the US, Canada and other NANP regions cannot tell a
landline from a mobile, so refusing these would refuse every caller there; Twilio reports a
landline as undeliverable) and VOIP (app and softphone numbers such as GB 056 or KR 070 often
take texts, and the caller just called us from it; pass allow_voip=False to refuse them).

Refused, each with its own reason code: FIXED_LINE where the metadata knows it is one;
TOLL_FREE (a caller's 0800/1-800 number is a company switchboard that cannot reliably take
texts); PREMIUM_RATE, SHARED_COST, UAN and PERSONAL_NUMBER (redirecting or paid ranges, never
a person's phone); PAGER, VOICEMAIL; short codes; and a number whose type is unknown.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    shortnumberinfo,
)

from .errors import NotTextable

# Twilio's From for a caller who hides their number: the keypad spellings of ANONYMOUS,
# RESTRICTED, BLOCKED, UNKNOWN and UNAVAILABLE, or the words (as ivr_server.calllog has them).
WITHHELD_NUMBERS = frozenset({"266696687", "7378742833", "2562533", "8656696", "86282452253"})
WITHHELD_WORDS = frozenset({"anonymous", "restricted", "blocked", "unknown", "unavailable",
                            "private", "withheld"})
NOT_PHONE_PREFIXES = ("client:", "sip:", "sips:")  # Twilio Client and SIP callers

TEXTABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
                            PhoneNumberType.VOIP})
REFUSED_TYPES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.VOIP: "voip",  # only when allow_voip=False
    PhoneNumberType.UNKNOWN: "unknown_type",
}


def is_withheld(raw: str | None) -> bool:
    """True when Twilio's From names no phone: empty, a word, a keypad placeholder, SIP."""
    text = (raw or "").strip().lower()
    if not text or text in WITHHELD_WORDS or text.startswith(NOT_PHONE_PREFIXES):
        return True
    return text.lstrip("+") in WITHHELD_NUMBERS


def _parse(raw: str, default_region: str) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(raw.strip(), default_region.upper())
    except NumberParseException:
        return None


def _e164(number: PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalise(raw: str | None, default_region: str) -> str | None:
    """E.164 for any parseable number, valid or not, so "(415) 555-0100", "14155550100" and
    "+1 415 555 0100" key the same opt-out; None when there is no number at all.

    Deliberately lenient: an opt-out must be recorded even for a range the metadata does not
    know yet. Whether the number may be texted is textable()'s question.
    """
    if is_withheld(raw):
        return None
    number = _parse(raw or "", default_region)
    return _e164(number) if number is not None else None


def textable(raw: str, default_region: str, *, allow_voip: bool = True) -> str:
    """The E.164 number to text, or NotTextable saying why it must not be (see module doc)."""
    if is_withheld(raw):
        raise NotTextable(raw, "withheld", "the caller's number was withheld or is not a phone")
    number = _parse(raw, default_region)
    if number is None:
        raise NotTextable(raw, "unparseable")
    e164 = _e164(number)
    if not phonenumbers.is_valid_number(number):
        if _is_short_code(number, default_region):
            raise NotTextable(raw, "short_code", "a short code, not a phone")
        raise NotTextable(raw, "invalid", f"{e164} is not a valid number")
    kind = phonenumbers.number_type(number)
    if kind in TEXTABLE_TYPES and (allow_voip or kind != PhoneNumberType.VOIP):
        return e164
    reason = REFUSED_TYPES.get(kind, "unknown_type")
    raise NotTextable(raw, reason, f"{e164} is of type {reason}")


def _is_short_code(number: PhoneNumber, default_region: str) -> bool:
    """A 3-6 digit service number (911, 72345): senders' codes, never a caller's phone."""
    if shortnumberinfo.is_possible_short_number(number):
        return True
    return shortnumberinfo.is_valid_short_number_for_region(number, default_region.upper())
