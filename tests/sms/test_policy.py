"""When wait updates and surveys are sent: pure rules, the clock passed in."""

from __future__ import annotations

import datetime as dt

import pytest

from sms.policy import should_send_wait_update, survey_due

RULES = {"threshold": 300.0, "min_change": 120.0, "max_messages": 3}
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


def update(previous: list[float], new: float, sent: int | None = None, *,
           in_queue: bool = True) -> bool:
    return should_send_wait_update(previous, new, len(previous) if sent is None else sent,
                                   in_queue=in_queue, **RULES)


def test_the_first_text_waits_for_a_wait_above_the_threshold() -> None:
    assert not update([], 300.0)
    assert update([], 301.0)


def test_an_update_needs_the_estimate_to_move_by_min_change() -> None:
    assert not update([600.0], 700.0)
    assert update([600.0], 720.0)


def test_a_drop_counts_as_much_as_a_rise() -> None:
    assert update([600.0], 480.0)
    assert not update([600.0], 481.0)


def test_the_change_is_measured_from_the_last_text_sent() -> None:
    assert not update([900.0, 600.0], 700.0)
    assert update([600.0, 900.0], 700.0)


def test_never_more_than_max_messages() -> None:
    assert not update([300.0, 900.0, 1500.0], 2400.0)


def test_sent_count_caps_even_when_the_history_is_trimmed() -> None:
    assert not update([1500.0], 2400.0, sent=3)
    assert update([1500.0], 2400.0, sent=2)


def test_without_the_last_estimate_sent_no_update_is_risked() -> None:
    assert not update([], 2400.0, sent=1)


def test_nothing_is_sent_once_the_caller_left_the_queue() -> None:
    assert not update([], 900.0, in_queue=False)
    assert not update([600.0], 2400.0, in_queue=False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_an_impossible_estimate_is_not_texted(bad: float) -> None:
    assert not update([], bad)
    assert not update([600.0], bad)


def survey(last: dt.datetime | None = None, duration: int | None = 120, *,
           opted_out: bool = False, **kw: int) -> bool:
    return survey_due(last, NOW, duration, opted_out=opted_out, **kw)


def test_a_first_time_caller_after_a_real_call_is_surveyed() -> None:
    assert survey()


def test_opted_out_numbers_are_never_surveyed() -> None:
    assert not survey(opted_out=True)


def test_short_or_unmeasured_calls_are_not_surveyed() -> None:
    assert not survey(duration=19)
    assert survey(duration=20)
    assert not survey(duration=None)
    assert survey(duration=10, min_call_seconds=5)


def test_a_number_is_surveyed_at_most_once_per_period() -> None:
    assert not survey(NOW - dt.timedelta(days=29, hours=23))
    assert survey(NOW - dt.timedelta(days=30))
    assert survey(NOW - dt.timedelta(days=8), every_days=7)


def test_a_last_survey_in_the_future_counts_as_recent() -> None:
    assert not survey(NOW + dt.timedelta(hours=1))


def test_the_period_is_measured_across_timezones() -> None:
    seoul = dt.timezone(dt.timedelta(hours=9))
    last = (NOW - dt.timedelta(days=30)).astimezone(seoul)
    assert survey(last)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        survey_due(None, NOW.replace(tzinfo=None), 120, opted_out=False)
    with pytest.raises(ValueError, match="timezone-aware"):
        survey(NOW.replace(tzinfo=None))
