"""Textable numbers, checked against phonenumbers' own example numbers rather than guesses."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from sms.errors import NotTextable
from sms.numbers import is_withheld, normalise, textable


def example(region: str, kind: int) -> str:
    """The metadata's example number of that type, as E.164."""
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def national(region: str, kind: int) -> str:
    """The same example as a caller in that region would type it."""
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)


def reason(raw: str, region: str = "US", **kw: bool) -> str:
    with pytest.raises(NotTextable) as err:
        textable(raw, region, **kw)
    return err.value.reason


@pytest.mark.parametrize("region", ["US", "GB", "DE", "KR", "FR", "AU"])
def test_mobile_numbers_are_textable_in_e164(region: str) -> None:
    assert textable(example(region, PhoneNumberType.MOBILE), "US") == \
        example(region, PhoneNumberType.MOBILE)


@pytest.mark.parametrize("region", ["GB", "DE", "KR"])
def test_a_nationally_written_mobile_is_read_in_the_default_region(region: str) -> None:
    assert textable(national(region, PhoneNumberType.MOBILE), region) == \
        example(region, PhoneNumberType.MOBILE)


def test_us_numbers_are_textable_as_fixed_line_or_mobile() -> None:
    # NANP metadata cannot tell landlines from mobiles; refusing them would refuse everyone.
    number = phonenumbers.parse(example("US", PhoneNumberType.FIXED_LINE))
    assert phonenumbers.number_type(number) == PhoneNumberType.FIXED_LINE_OR_MOBILE
    assert textable("(201) 555-0123", "US") == "+12015550123"


@pytest.mark.parametrize("region", ["GB", "DE", "KR", "FR", "AU"])
def test_known_landlines_are_refused(region: str) -> None:
    assert reason(example(region, PhoneNumberType.FIXED_LINE)) == "fixed_line"


@pytest.mark.parametrize("region", ["US", "GB", "DE", "KR", "AU"])
def test_toll_free_numbers_are_refused(region: str) -> None:
    assert reason(example(region, PhoneNumberType.TOLL_FREE)) == "toll_free"


@pytest.mark.parametrize("region", ["US", "GB", "DE", "KR", "FR"])
def test_premium_rate_numbers_are_refused(region: str) -> None:
    assert reason(example(region, PhoneNumberType.PREMIUM_RATE)) == "premium_rate"


@pytest.mark.parametrize("region", ["DE", "FR", "AU"])
def test_shared_cost_numbers_are_refused(region: str) -> None:
    assert reason(example(region, PhoneNumberType.SHARED_COST)) == "shared_cost"


@pytest.mark.parametrize("region, kind, code", [
    ("GB", PhoneNumberType.PERSONAL_NUMBER, "personal_number"),
    ("US", PhoneNumberType.PERSONAL_NUMBER, "personal_number"),
    ("GB", PhoneNumberType.PAGER, "pager"),
    ("DE", PhoneNumberType.UAN, "uan"),
    ("DE", PhoneNumberType.VOICEMAIL, "voicemail"),
])
def test_redirecting_and_service_numbers_are_refused(region: str, kind: int, code: str) -> None:
    assert reason(example(region, kind)) == code


@pytest.mark.parametrize("region", ["GB", "KR", "FR", "AU"])
def test_voip_numbers_are_textable_unless_turned_off(region: str) -> None:
    number = example(region, PhoneNumberType.VOIP)
    assert textable(number, "US") == number
    assert reason(number, allow_voip=False) == "voip"


@pytest.mark.parametrize("raw", ["", "   ", "anonymous", "Restricted", "UNKNOWN", "blocked",
                                 "unavailable", "private", "+266696687", "+7378742833",
                                 "+2562533", "+8656696", "+86282452253", "client:alice",
                                 "sip:alice@example.com"])
def test_withheld_caller_ids_are_refused(raw: str) -> None:
    assert is_withheld(raw)
    assert reason(raw) == "withheld"
    assert normalise(raw, "US") is None


def test_a_real_russian_number_is_not_mistaken_for_a_placeholder() -> None:
    assert not is_withheld("+74951234567")


@pytest.mark.parametrize("raw, region", [("72345", "US"), ("911", "US"), ("112", "DE"),
                                         ("1588", "KR")])
def test_short_codes_are_refused(raw: str, region: str) -> None:
    assert reason(raw, region) == "short_code"


@pytest.mark.parametrize("raw", ["not a number", "++", "call me"])
def test_text_that_is_no_number_is_unparseable(raw: str) -> None:
    assert reason(raw) == "unparseable"


def test_a_number_outside_any_allocated_range_is_invalid() -> None:
    assert reason("+1 011 555 0100") == "invalid"


def test_the_reason_is_in_the_message_for_the_log() -> None:
    with pytest.raises(NotTextable, match=r"toll_free"):
        textable("1-800-234-5678", "US")


@pytest.mark.parametrize("raw", ["(415) 555-0100", "+1 415 555 0100", "14155550100",
                                 "415.555.0100", "+1-415-555-0100", " 4155550100 "])
def test_differently_written_numbers_normalise_to_one_key(raw: str) -> None:
    assert normalise(raw, "US") == "+14155550100"


def test_normalise_reads_national_numbers_in_the_default_region() -> None:
    assert normalise("010-2000-0000", "KR") == "+821020000000"
    assert normalise("07400 123456", "GB") == "+447400123456"
    assert normalise("+44 7400 123456", "US") == "+447400123456"


def test_normalise_keys_a_number_the_metadata_does_not_know() -> None:
    # An opt-out must stick even for a range newer than the metadata.
    assert normalise("+1 011 555 0100", "US") == "+10115550100"


def test_normalise_gives_none_for_text_that_is_no_number() -> None:
    assert normalise("hello", "US") is None
    assert normalise(None, "US") is None
