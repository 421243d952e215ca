"""Business hours and holidays, judged on the wall clock where the flow's callers are."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from flows.days import expand_days
from flows.hours import in_hours, is_holiday, local_time
from flows.schema import FlowModel

NY = ZoneInfo("America/New_York")
UTC = dt.UTC


def model(**hours: dict[str, str]) -> FlowModel:
    return FlowModel.model_validate({
        "flow": "t", "timezone": "America/New_York", "start": "a",
        "hours": hours or {"office": {"mon-fri": "09:00-17:00", "sat": ["09:00-12:00",
                                                                        "13:00-15:00"]}},
        "holidays": ["2026-12-25", {"date": "2027-01-01", "name": "New Year"}],
        "nodes": {"a": {"type": "hangup"}},
    })


def ny(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=NY)


@pytest.mark.parametrize("when, open_", [
    (ny(2026, 3, 10, 8, 59), False),
    (ny(2026, 3, 10, 9, 0), True),  # the start minute is open
    (ny(2026, 3, 10, 16, 59), True),
    (ny(2026, 3, 10, 17, 0), False),  # the end minute is closed
    (ny(2026, 3, 14, 12, 30), False),  # Saturday lunch gap
    (ny(2026, 3, 14, 13, 0), True),
    (ny(2026, 3, 15, 10, 0), False),  # Sunday: no hours
])
def test_in_hours_includes_the_start_and_excludes_the_end(when: dt.datetime, open_: bool) -> None:
    assert in_hours(model(), "office", when) is open_


def test_in_hours_reads_the_local_clock_across_a_dst_change() -> None:
    # 13:30 UTC: 08:30 EST on Friday 6 March 2026, 09:30 EDT on Monday 9 March.
    assert in_hours(model(), "office", dt.datetime(2026, 3, 6, 13, 30, tzinfo=UTC)) is False
    assert in_hours(model(), "office", dt.datetime(2026, 3, 9, 13, 30, tzinfo=UTC)) is True


def test_in_hours_accepts_any_aware_time_zone() -> None:
    london = dt.datetime(2026, 3, 10, 14, 30, tzinfo=ZoneInfo("Europe/London"))  # 10:30 in NY
    assert in_hours(model(), "office", london) is True


def test_in_hours_is_closed_on_a_holiday() -> None:
    assert in_hours(model(), "office", ny(2026, 12, 25, 10, 0)) is False
    assert in_hours(model(), "office", ny(2026, 12, 24, 10, 0)) is True


def test_whole_day_range_ends_at_24_00() -> None:
    m = model(always={"mon-sun": "00:00-24:00"})
    assert in_hours(m, "always", ny(2026, 3, 10, 0, 0)) is True
    assert in_hours(m, "always", ny(2026, 3, 10, 23, 59)) is True


def test_closed_day_is_never_open() -> None:
    m = model(office={"mon-fri": "09:00-17:00", "wed": "closed"})
    assert in_hours(m, "office", ny(2026, 3, 11, 10, 0)) is True  # mon-fri still covers Wed
    assert in_hours(model(office={"wed": "closed"}), "office", ny(2026, 3, 11, 10, 0)) is False


def test_unknown_hours_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="nope"):
        in_hours(model(), "nope", ny(2026, 3, 10, 10, 0))


@pytest.mark.parametrize("when, holiday", [
    (dt.datetime(2026, 12, 25, 4, 59, tzinfo=UTC), False),  # 23:59 on the 24th in New York
    (dt.datetime(2026, 12, 25, 5, 0, tzinfo=UTC), True),
    (dt.datetime(2026, 12, 26, 4, 59, tzinfo=UTC), True),
    (dt.datetime(2026, 12, 26, 5, 0, tzinfo=UTC), False),
    (ny(2027, 1, 1, 12, 0), True),
])
def test_holiday_is_the_local_calendar_day(when: dt.datetime, holiday: bool) -> None:
    assert is_holiday(model(), when) is holiday


def test_local_time_refuses_a_naive_clock() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        local_time(model(), dt.datetime(2026, 3, 10, 10, 0))


def test_local_time_is_the_flow_zone() -> None:
    assert local_time(model(), dt.datetime(2026, 7, 1, 16, 0, tzinfo=UTC)).hour == 12  # EDT


@pytest.mark.parametrize("spec, days", [
    ("mon-fri", [0, 1, 2, 3, 4]), ("sat", [5]), ("mon,wed", [0, 2]),
    ("fri-mon", [4, 5, 6, 0]), ("Sun", [6]),
])
def test_expand_days(spec: str, days: list[int]) -> None:
    assert expand_days(spec) == days


@pytest.mark.parametrize("spec", ["funday", "mon-xyz", ""])
def test_expand_days_refuses_what_is_not_a_day(spec: str) -> None:
    with pytest.raises(ValueError):
        expand_days(spec)
