"""When the call comes, in words, in the callee's zone; fixed clocks, never the real one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callbacks.phrasing import when_phrase

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=NY)  # a Tuesday morning


def say(due: datetime, zone: str = "America/New_York", now: datetime = NOW) -> str:
    return when_phrase(due, now, zone)


def test_a_call_already_due_comes_in_a_few_minutes() -> None:
    assert say(NOW) == "in a few minutes"
    assert say(NOW - timedelta(minutes=5)) == "in a few minutes"


@pytest.mark.parametrize(("delta", "words"), [
    (timedelta(seconds=30), "in about 1 minute"),
    (timedelta(minutes=2), "in about 2 minutes"),
    (timedelta(minutes=4, seconds=10), "in about 5 minutes"),
    (timedelta(minutes=10), "in about 10 minutes"),
    (timedelta(minutes=10, seconds=1), "in about 15 minutes"),
    (timedelta(minutes=12), "in about 15 minutes"),
    (timedelta(minutes=15), "in about 15 minutes"),
    (timedelta(minutes=61), "in about 65 minutes"),
    (timedelta(minutes=90), "in about 90 minutes"),
])
def test_soon_is_said_in_minutes_rounded_up(delta: timedelta, words: str) -> None:
    assert say(NOW + delta) == words


@pytest.mark.parametrize(("due", "words"), [
    (datetime(2026, 11, 24, 11, 31, tzinfo=NY), "today after 11:45 AM"),
    (datetime(2026, 11, 24, 12, 0, tzinfo=NY), "today after 12 PM"),
    (datetime(2026, 11, 24, 14, 0, tzinfo=NY), "today after 2 PM"),
    (datetime(2026, 11, 24, 13, 50, tzinfo=NY), "today after 2 PM"),
    (datetime(2026, 11, 24, 14, 20, tzinfo=NY), "today after 2:30 PM"),
    (datetime(2026, 11, 24, 14, 0, 1, tzinfo=NY), "today after 2:15 PM"),
    (datetime(2026, 11, 25, 9, 0, tzinfo=NY), "tomorrow after 9 AM"),
    (datetime(2026, 11, 24, 23, 55, tzinfo=NY), "tomorrow after 12 AM"),
    (datetime(2026, 11, 30, 9, 0, tzinfo=NY), "on Monday after 9 AM"),
    (datetime(2026, 11, 27, 16, 45, tzinfo=NY), "on Friday after 4:45 PM"),
    (datetime(2026, 12, 1, 9, 0, tzinfo=NY), "on December 1 after 9 AM"),
    (datetime(2026, 12, 28, 9, 0, tzinfo=NY), "on December 28 after 9 AM"),
])
def test_later_is_said_as_a_day_and_a_time(due: datetime, words: str) -> None:
    assert say(due) == words


def test_the_time_is_said_in_the_callees_zone() -> None:
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    due = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert say(due, "America/Los_Angeles", now) == "today after 6 PM"
    assert say(due, "America/New_York", now) == "today after 9 PM"
    assert say(due, "Europe/London", now) == "tomorrow after 2 AM"
    assert say(due, "Asia/Kolkata", now) == "tomorrow after 7:30 AM"


def test_days_count_by_the_local_calendar_across_a_dst_change() -> None:
    now = datetime(2026, 10, 31, 20, 0, tzinfo=NY)
    assert say(datetime(2026, 11, 1, 9, 0, tzinfo=NY), now=now) == "tomorrow after 9 AM"
    assert say(datetime(2026, 11, 6, 9, 0, tzinfo=NY), now=now) == "on Friday after 9 AM"
    # a week on is the same weekday: said as a date, not "on Saturday"
    assert say(datetime(2026, 11, 7, 9, 0, tzinfo=NY), now=now) == "on November 7 after 9 AM"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        when_phrase(datetime(2026, 11, 24, 14, 0), NOW, "America/New_York")
