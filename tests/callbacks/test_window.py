"""Calling windows at their edges, over weekends, holidays, DST changes and across zones."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callbacks.errors import WindowError
from callbacks.window import CallingPolicy, closes_at, is_open, next_opening

NY, LA, LONDON = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles"), ZoneInfo(
    "Europe/London")
NY_ONLY = ("America/New_York",)
# Callees 08:00-21:00 their time; the office 09:00-17:00 New York time on weekdays.
OFFICE = CallingPolicy.from_settings("08:00-21:00", {"mon-fri": "09:00-17:00"},
                                     "America/New_York", ["2026-12-25"])
ANY_TIME_UTC = CallingPolicy.from_settings("08:00-21:00", "always", "UTC")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_open_inside_both_windows_and_exact_at_the_edges() -> None:
    assert not is_open(ny(2026, 11, 24, 8, 59, 59), NY_ONLY, OFFICE)
    assert is_open(ny(2026, 11, 24, 9, 0), NY_ONLY, OFFICE)
    assert is_open(ny(2026, 11, 24, 16, 59, 59), NY_ONLY, OFFICE)
    assert not is_open(ny(2026, 11, 24, 17, 0), NY_ONLY, OFFICE)


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_open(datetime(2026, 11, 24, 10, 0), NY_ONLY, OFFICE)
    with pytest.raises(ValueError):
        next_opening(datetime(2026, 11, 24, 10, 0), NY_ONLY, OFFICE)


def test_when_open_now_the_next_opening_is_now_itself() -> None:
    at = ny(2026, 11, 24, 10, 17, 3)
    assert next_opening(at, NY_ONLY, OFFICE) is at


def test_the_next_opening_is_exact_to_the_minute_before_and_after_hours() -> None:
    assert next_opening(ny(2026, 11, 24, 6, 12), NY_ONLY, OFFICE) == ny(2026, 11, 24, 9, 0)
    assert next_opening(ny(2026, 11, 24, 17, 0), NY_ONLY, OFFICE) == ny(2026, 11, 25, 9, 0)


def test_the_answer_is_in_the_zone_it_was_asked_in() -> None:
    at = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)
    opening = next_opening(at, NY_ONLY, OFFICE)
    assert opening == ny(2026, 11, 24, 9, 0) and opening.tzinfo is UTC


def test_after_friday_hours_the_next_opening_is_monday() -> None:
    assert next_opening(ny(2026, 11, 27, 17, 0), NY_ONLY, OFFICE) == ny(2026, 11, 30, 9, 0)
    assert next_opening(ny(2026, 11, 28, 12, 0), NY_ONLY, OFFICE) == ny(2026, 11, 30, 9, 0)


def test_a_holiday_is_skipped() -> None:
    assert not is_open(ny(2026, 12, 25, 10, 0), NY_ONLY, OFFICE)
    # Thursday evening, Friday the 25th is a holiday, then the weekend.
    assert next_opening(ny(2026, 12, 24, 17, 0), NY_ONLY, OFFICE) == ny(2026, 12, 28, 9, 0)


def test_a_holiday_is_a_date_in_the_business_zone() -> None:
    # 2026-12-25 00:30 in London is still the 24th (19:30) in New York: not the holiday.
    policy = CallingPolicy.from_settings("00:00-24:00", "always", "America/New_York",
                                         ["2026-12-25"])
    assert is_open(datetime(2026, 12, 25, 0, 30, tzinfo=LONDON), ["Europe/London"], policy)
    assert not is_open(ny(2026, 12, 25, 0, 30), ["Europe/London"], policy)
    assert next_opening(ny(2026, 12, 25, 0, 30), ["Europe/London"], policy) == ny(
        2026, 12, 26, 0, 0)


def test_a_west_coast_callee_is_not_called_before_8_their_time() -> None:
    la = ("America/Los_Angeles",)
    at = ny(2026, 11, 24, 9, 0)  # 06:00 in Los Angeles
    assert not is_open(at, la, OFFICE)
    opening = next_opening(at, la, OFFICE)
    assert opening == ny(2026, 11, 24, 11, 0)
    assert opening.astimezone(LA).hour == 8
    assert closes_at(opening, la, OFFICE) == ny(2026, 11, 24, 17, 0)


def test_a_west_coast_office_calls_the_east_coast_until_9_pm_there() -> None:
    office = CallingPolicy.from_settings("08:00-21:00", {"mon-fri": "09:00-17:00"},
                                         "America/Los_Angeles")
    at = ny(2026, 11, 24, 8, 0)
    assert next_opening(at, NY_ONLY, office) == ny(2026, 11, 24, 12, 0)
    assert closes_at(ny(2026, 11, 24, 12, 0), NY_ONLY, office) == ny(2026, 11, 24, 20, 0)
    late = CallingPolicy.from_settings("08:00-21:00", {"mon-fri": "09:00-19:00"},
                                       "America/Los_Angeles")
    assert closes_at(ny(2026, 11, 24, 12, 0), NY_ONLY, late) == ny(2026, 11, 24, 21, 0)


def test_a_number_in_two_zones_waits_until_both_are_in_hours() -> None:
    both = ("America/New_York", "America/Los_Angeles")
    at = ny(2026, 11, 24, 9, 0)
    assert is_open(at, NY_ONLY, ANY_TIME_UTC)
    assert not is_open(at, both, ANY_TIME_UTC)
    assert next_opening(at, both, ANY_TIME_UTC) == ny(2026, 11, 24, 11, 0)  # 08:00 in LA
    assert closes_at(ny(2026, 11, 24, 11, 0), both, ANY_TIME_UTC) == ny(2026, 11, 24, 21, 0)


def test_a_number_in_zones_that_never_share_hours_never_opens() -> None:
    apart = ("America/New_York", "Asia/Kolkata")  # 10.5 hours apart, 8-hour windows
    policy = CallingPolicy.from_settings("09:00-17:00", "always", "UTC")
    assert next_opening(ny(2026, 11, 24, 9, 0), apart, policy) is None


def test_nothing_opening_within_the_horizon_gives_none() -> None:
    friday_evening = ny(2026, 11, 27, 17, 0)
    assert next_opening(friday_evening, NY_ONLY, OFFICE, timedelta(days=2)) is None
    exact = ny(2026, 11, 30, 9, 0) - friday_evening
    assert next_opening(friday_evening, NY_ONLY, OFFICE, exact) == ny(2026, 11, 30, 9, 0)
    assert next_opening(friday_evening, NY_ONLY, OFFICE, exact - timedelta(seconds=1)) is None
    closed = CallingPolicy.from_settings(business_hours={"mon": "closed"})
    assert next_opening(friday_evening, NY_ONLY, closed) is None


def test_spring_forward_the_callee_window_opens_at_8_summer_time() -> None:
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT.
    saturday_night = ny(2026, 3, 7, 21, 0)
    opening = next_opening(saturday_night, NY_ONLY, ANY_TIME_UTC)
    assert opening == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)  # 08:00 EDT, not 13:00 UTC
    assert opening.astimezone(NY).hour == 8


def test_a_window_starting_in_the_skipped_hour_opens_at_the_jump() -> None:
    policy = CallingPolicy.from_settings("02:30-05:00", "always", "UTC")
    opening = next_opening(ny(2026, 3, 8, 0, 0), NY_ONLY, policy)
    assert opening == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert closes_at(opening, NY_ONLY, policy) == datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
    gone = CallingPolicy.from_settings("02:00-02:30", "always", "UTC")  # never on the clock
    assert next_opening(ny(2026, 3, 8, 0, 0), NY_ONLY, gone) == ny(2026, 3, 9, 2, 0)


def test_fall_back_the_callee_window_opens_at_8_winter_time() -> None:
    # 2026-11-01: New York goes back from 02:00 EDT to 01:00 EST.
    saturday_night = ny(2026, 10, 31, 21, 0)
    opening = next_opening(saturday_night, NY_ONLY, ANY_TIME_UTC)
    assert opening == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 08:00 EST


def test_the_repeated_hour_in_autumn_is_open_twice() -> None:
    policy = CallingPolicy.from_settings("01:00-01:30", "always", "UTC")
    after_first = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)  # 01:45 EDT
    assert not is_open(after_first, NY_ONLY, policy)
    assert next_opening(after_first, NY_ONLY, policy) == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    assert closes_at(datetime(2026, 11, 1, 5, 0, tzinfo=UTC), NY_ONLY, policy) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC)


def test_the_overlap_between_zones_follows_each_zones_own_dst_dates() -> None:
    # London 08:00-21:00 and New York 09:00-17:00 overlap until 21:00 London: 16:00 in New
    # York normally, but 17:00 in the weeks when New York has moved its clocks and London not.
    london = ("Europe/London",)
    assert closes_at(ny(2026, 3, 3, 10, 0), london, OFFICE) == ny(2026, 3, 3, 16, 0)
    assert closes_at(ny(2026, 3, 10, 10, 0), london, OFFICE) == ny(2026, 3, 10, 17, 0)
    assert closes_at(ny(2026, 3, 31, 10, 0), london, OFFICE) == ny(2026, 3, 31, 16, 0)
    # In autumn London goes back first (25 October), New York a week later (1 November).
    assert closes_at(ny(2026, 10, 27, 10, 0), london, OFFICE) == ny(2026, 10, 27, 17, 0)
    assert closes_at(ny(2026, 11, 3, 10, 0), london, OFFICE) == ny(2026, 11, 3, 16, 0)
    assert next_opening(ny(2026, 11, 3, 16, 0), london, OFFICE) == ny(2026, 11, 4, 9, 0)


def test_closes_at_is_none_when_closed() -> None:
    assert closes_at(ny(2026, 11, 24, 18, 0), NY_ONLY, OFFICE) is None


def test_closes_at_runs_through_touching_hours_and_midnight() -> None:
    policy = CallingPolicy.from_settings("00:00-24:00", {"mon": "20:00-24:00",
                                                          "tue": "00:00-02:00,02:00-03:00"},
                                         "America/New_York")
    assert closes_at(ny(2026, 11, 23, 21, 0), NY_ONLY, policy) == ny(2026, 11, 24, 3, 0)


def test_a_window_that_never_closes_is_open_at_least_to_the_horizon() -> None:
    always = CallingPolicy.from_settings("00:00-24:00", "always", "UTC")
    at = ny(2026, 11, 24, 10, 0)
    assert closes_at(at, NY_ONLY, always) == at + timedelta(days=14)
    assert closes_at(at, NY_ONLY, always, timedelta(days=1)) == at + timedelta(days=1)


def test_callee_zones_must_be_given_and_known() -> None:
    at = ny(2026, 11, 24, 10, 0)
    assert is_open(at, "America/New_York", OFFICE)  # one zone as a plain string
    with pytest.raises(ValueError, match="no callee time zone"):
        is_open(at, (), OFFICE)
    with pytest.raises(WindowError, match='time zone "Nowhere/Land": unknown'):
        next_opening(at, ["Nowhere/Land"], OFFICE)



def test_a_policy_survives_pickling_as_a_job_argument() -> None:
    copy = pickle.loads(pickle.dumps(OFFICE))
    assert copy == OFFICE
    assert next_opening(ny(2026, 12, 24, 17, 0), NY_ONLY, copy) == ny(2026, 12, 28, 9, 0)
