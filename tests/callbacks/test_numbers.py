"""Who may be called back, checked on phonenumbers' own example numbers, not guesses."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from callbacks.errors import NotCallable
from callbacks.numbers import callable_number, time_zones


def example(region: str, kind: int) -> str:
    """The metadata's example number of that type, as E.164."""
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None, (region, kind)
    assert phonenumbers.number_type(number) == kind
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def refusal(raw: str | None, region: str = "US") -> NotCallable:
    with pytest.raises(NotCallable) as info:
        callable_number(raw, region)
    return info.value


@pytest.mark.parametrize("raw", [
    None, "", "   ", "anonymous", "Anonymous", " RESTRICTED ", "unknown", "Private",
    "unavailable", "266696687", "+266696687", "86282452253", "7378742833", "+7378742833",
    "2562533", "8656696",
])
def test_a_withheld_number_is_never_called_back(raw: str | None) -> None:
    error = refusal(raw)
    assert str(error) == "the number is withheld"
    assert error.code == "withheld"


@pytest.mark.parametrize("raw", ["hello", "call me", "+"])
def test_text_that_is_not_a_number_is_refused(raw: str) -> None:
    error = refusal(raw)
    assert error.code == "unparseable"
    assert "is not a phone number" in str(error)


@pytest.mark.parametrize("raw", ["+15555550100", "12", "+4412"])
def test_an_invalid_number_is_refused(raw: str) -> None:
    error = refusal(raw)
    assert error.code == "invalid"
    assert str(error) == f"{raw!r} is not a valid number"


@pytest.mark.parametrize(("raw", "region"), [("911", "US"), ("112", "US"), ("999", "GB"),
                                             ("112", "GB"), ("+44 999", "US"), ("112", "DE")])
def test_an_emergency_number_is_never_dialled(raw: str, region: str) -> None:
    error = refusal(raw, region)
    assert error.code == "emergency"
    assert str(error) == f"{raw!r} is an emergency number"


@pytest.mark.parametrize("raw", ["72345", "611"])
def test_a_short_code_is_not_a_phone(raw: str) -> None:
    error = refusal(raw)
    assert error.code == "short_code"
    assert "short code" in str(error)


@pytest.mark.parametrize(("number", "code", "words"), [
    ("+19002345678", "premium_rate", "a premium-rate number"),
    (example("GB", PhoneNumberType.PREMIUM_RATE), "premium_rate", "a premium-rate number"),
    (example("FR", PhoneNumberType.SHARED_COST), "shared_cost", "a shared-cost number"),
    (example("DE", PhoneNumberType.SHARED_COST), "shared_cost", "a shared-cost number"),
    (example("GB", PhoneNumberType.PAGER), "pager", "a pager"),
    (example("DE", PhoneNumberType.VOICEMAIL), "voicemail", "a voicemail access number"),
])
def test_numbers_that_cost_us_or_reach_no_person_are_refused(number: str, code: str,
                                                              words: str) -> None:
    error = refusal(number)
    assert error.code == code
    assert str(error) == f"{number} is {words}"


def test_a_us_900_number_is_premium_rate_in_any_spelling() -> None:
    assert refusal("1 (900) 234-5678").code == "premium_rate"
    assert str(refusal("900-234-5678")) == "+19002345678 is a premium-rate number"


@pytest.mark.parametrize(("region", "kind"), [
    ("US", PhoneNumberType.FIXED_LINE_OR_MOBILE), ("GB", PhoneNumberType.MOBILE),
    ("GB", PhoneNumberType.FIXED_LINE), ("US", PhoneNumberType.TOLL_FREE),
    ("GB", PhoneNumberType.TOLL_FREE), ("GB", PhoneNumberType.VOIP),
    ("FR", PhoneNumberType.VOIP), ("US", PhoneNumberType.PERSONAL_NUMBER),
    ("GB", PhoneNumberType.PERSONAL_NUMBER), ("GB", PhoneNumberType.UAN),
    ("FR", PhoneNumberType.UAN), ("DE", PhoneNumberType.MOBILE),
])
def test_phones_a_person_answers_are_called_back(region: str, kind: int) -> None:
    number = example(region, kind)
    assert callable_number(number) == number


@pytest.mark.parametrize(("raw", "region", "e164"), [
    ("(212) 555-0123", "US", "+12125550123"),
    ("1 212 555 0123", "US", "+12125550123"),
    ("+1 212-555-0123", "GB", "+12125550123"),
    ("07400 123456", "GB", "+447400123456"),
    ("07400 123456", "gb", "+447400123456"),
    ("+44 7400 123456", "US", "+447400123456"),
])
def test_the_number_comes_back_as_e164(raw: str, region: str, e164: str) -> None:
    assert callable_number(raw, region) == e164


def test_a_new_york_landline_is_in_new_york() -> None:
    assert time_zones("+12125550123", "UTC") == ("America/New_York",)


def test_a_london_mobile_may_be_on_the_islands_too() -> None:
    assert "Europe/London" in time_zones("+447400123456", "UTC")


def test_a_us_toll_free_number_may_be_in_any_nanp_zone() -> None:
    zones = time_zones("+18002345678", "UTC")
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(zones)
    assert "Etc/Unknown" not in zones


def test_a_russian_mobile_spans_russia() -> None:
    zones = time_zones("+79161234567", "UTC")
    assert {"Europe/Moscow", "Asia/Vladivostok", "Asia/Kamchatka"} <= set(zones)


@pytest.mark.parametrize("number", ["+15555550100", "not a number", ""])
def test_a_number_without_known_zones_gets_the_fallback(number: str) -> None:
    assert time_zones(number, "America/Chicago") == ("America/Chicago",)


def test_zones_this_machine_cannot_load_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phonenumbers.timezone, "time_zones_for_number",
                        lambda _n: ("Mars/Olympus_Mons", "Europe/London", "Etc/Unknown"))
    assert time_zones("+447400123456", "UTC") == ("Europe/London",)
    monkeypatch.setattr(phonenumbers.timezone, "time_zones_for_number",
                        lambda _n: ("Mars/Olympus_Mons",))
    assert time_zones("+447400123456", "UTC") == ("UTC",)
