"""Hours settings: what ops may write, and messages that name the setting and the value."""

from __future__ import annotations

from datetime import date, time

import pytest

from callbacks.errors import WindowError
from callbacks.window import CallingPolicy, DailyHours, WeeklyHours

NINE_TO_FIVE = DailyHours(time(9), time(17))


def test_daily_hours_parse() -> None:
    assert DailyHours.parse("08:00-21:00") == DailyHours(time(8), time(21))
    assert DailyHours.parse(" 8:30 - 17:45 ") == DailyHours(time(8, 30), time(17, 45))
    assert str(DailyHours.parse("08:00-21:00")) == "08:00-21:00"


def test_24_00_ends_the_day_and_00_00_24_00_is_all_day() -> None:
    all_day = DailyHours.parse("00:00-24:00")
    assert all_day == DailyHours(time(0), time(0))
    assert str(all_day) == "00:00-24:00"
    assert str(DailyHours.parse("22:00-24:00")) == "22:00-24:00"


@pytest.mark.parametrize(("text", "message"), [
    ("25:00-17:00", 'hours "25:00-17:00": 25:00 is not a time of day'),
    ("08:60-17:00", 'hours "08:60-17:00": 08:60 is not a time of day'),
    ("24:00-24:00", 'hours "24:00-24:00": 24:00 is not a time of day (24:00 can only end'),
    ("08:00-24:30", 'hours "08:00-24:30": 24:30 is not a time of day'),
    ("17:00-09:00", 'hours "17:00-09:00": the end must be after the start'),
    ("09:00-09:00", 'hours "09:00-09:00": the end must be after the start'),
    ("9-17", 'hours "9-17": expected HH:MM-HH:MM'),
    ("", 'hours "": expected HH:MM-HH:MM'),
    ("08:00-21:00 daily", 'hours "08:00-21:00 daily": expected HH:MM-HH:MM'),
])
def test_bad_daily_hours_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(WindowError) as info:
        DailyHours.parse(text)
    assert str(info.value).startswith(message)


def test_the_message_names_the_setting() -> None:
    with pytest.raises(WindowError, match='^callee_hours "8am-9pm": expected'):
        DailyHours.parse("8am-9pm", "callee_hours")


def test_a_week_of_ranges_lists_and_closed_days() -> None:
    week = WeeklyHours.parse({"mon-fri": "09:00-17:00", "sat": "10:00-14:00", "sun": "closed"})
    assert week.days == {d: (NINE_TO_FIVE,) for d in range(5)} | {
        5: (DailyHours(time(10), time(14)),)}
    assert week.on(6) == ()


def test_days_not_named_are_closed_and_lists_and_wrapping_ranges_work() -> None:
    week = WeeklyHours.parse({"sat,sun": "10:00-12:00", "Wednesday": "09:00-17:00"})
    assert sorted(week.days) == [2, 5, 6]
    assert sorted(WeeklyHours.parse({"fri-mon": "09:00-17:00"}).days) == [0, 4, 5, 6]
    assert sorted(WeeklyHours.parse({"tues,thurs": "09:00-17:00"}).days) == [1, 3]


def test_split_hours_are_sorted_and_touching_ones_joined() -> None:
    week = WeeklyHours.parse({"mon": "13:00-17:00, 09:00-12:00", "tue": "09:00-12:00,12:00-17:00"})
    assert week.on(0) == (DailyHours(time(9), time(12)), DailyHours(time(13), time(17)))
    assert week.on(1) == (NINE_TO_FIVE,)


def test_always_is_every_day_all_day() -> None:
    week = WeeklyHours.parse("always")
    assert week.days == {d: (DailyHours(time(0), time(0)),) for d in range(7)}
    assert week == WeeklyHours.parse({"mon-sun": "00:00-24:00"})
    assert hash(week) == hash(WeeklyHours.parse(" Always "))


@pytest.mark.parametrize(("spec", "message"), [
    ({"mnd-fri": "09:00-17:00"}, 'business_hours: unknown day "mnd" in "mnd-fri"'),
    ({"mon-fri": "09:00-17:00", "fri": "10:00-12:00"}, "business_hours: fri is named twice"),
    ({"mon": "9 to 5"}, 'business_hours.mon "9 to 5": expected HH:MM-HH:MM'),
    ({"sat,sun": "10:00-25:00"}, 'business_hours.sat,sun "10:00-25:00": 25:00 is not a time'),
    ({"mon": 9}, "business_hours.mon 9: expected"),
    ("weekdays", 'business_hours "weekdays": expected "always" or a table'),
])
def test_bad_weekly_hours_say_which_day_and_value(spec: object, message: str) -> None:
    with pytest.raises(WindowError) as info:
        WeeklyHours.parse(spec)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_a_policy_from_settings() -> None:
    policy = CallingPolicy.from_settings("08:00-20:00", {"mon-fri": "09:00-17:00"},
                                         "America/New_York", ["2026-12-25", "2027-01-01"])
    assert policy.callee_hours == DailyHours(time(8), time(20))
    assert policy.business_hours.on(0) == (NINE_TO_FIVE,)
    assert policy.business_zone == "America/New_York"
    assert policy.holidays == {date(2026, 12, 25), date(2027, 1, 1)}
    assert policy == CallingPolicy.from_settings(
        "08:00-20:00", {"mon-fri": "09:00-17:00"}, "America/New_York",
        "2027-01-01, 2026-12-25")
    assert hash(policy) == hash(CallingPolicy.from_settings(
        "08:00-20:00", {"mon-fri": "09:00-17:00"}, "America/New_York",
        [date(2026, 12, 25), "2027-01-01"]))


def test_default_settings_call_from_8_to_9_every_day() -> None:
    policy = CallingPolicy.from_settings()
    assert str(policy.callee_hours) == "08:00-21:00"
    assert policy.business_hours == WeeklyHours.parse("always")
    assert policy.business_zone == "UTC"
    assert policy.holidays == frozenset()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"time_zone": "America/New_Yrok"}, 'time_zone "America/New_Yrok": unknown time zone'),
    ({"time_zone": "America"}, 'time_zone "America": unknown time zone'),
    ({"time_zone": "../etc/passwd"}, 'time_zone "../etc/passwd": unknown time zone'),
    ({"holidays": ["2026-02-30"]}, 'holidays "2026-02-30": not a date (expected YYYY-MM-DD)'),
    ({"holidays": ["25/12/2026"]}, 'holidays "25/12/2026": not a date'),
    ({"holidays": ["20261225"]}, 'holidays "20261225": not a date'),
    ({"callee_hours": "21:00-08:00"}, 'callee_hours "21:00-08:00": the end must be after'),
    ({"business_hours": {"xyz": "09:00-17:00"}}, 'business_hours: unknown day "xyz"'),
])
def test_bad_policy_settings_name_the_setting(kwargs: dict, message: str) -> None:
    with pytest.raises(WindowError) as info:
        CallingPolicy.from_settings(**kwargs)
    assert str(info.value).startswith(message)
