"""Properties of next_opening and closes_at on random instants, zones and policies, checked
against is_open itself: the jump-between-edges search must agree with plain sampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks.window import CallingPolicy, closes_at, is_open, next_opening

ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata",
         "Australia/Lord_Howe",  # a 30-minute DST shift
         "Pacific/Chatham", "Asia/Kathmandu", "America/Santiago", "Africa/Casablanca",
         "Europe/Moscow", "America/St_Johns", "UTC"]
POLICIES = [
    CallingPolicy.from_settings(),
    CallingPolicy.from_settings("08:00-21:00", {"mon-fri": "09:00-17:00"},
                                "America/New_York", ["2026-12-25", "2026-07-03"]),
    CallingPolicy.from_settings("07:45-20:15", {"mon,wed,fri": "08:30-12:00,13:00-18:30",
                                                "sat": "10:00-14:00"}, "Europe/London"),
    CallingPolicy.from_settings("02:30-05:00", "always", "America/Santiago"),
    CallingPolicy.from_settings("01:00-01:30", {"sun-mon": "00:00-24:00"}, "Australia/Sydney"),
    CallingPolicy.from_settings("00:00-24:00", {"tue": "22:00-24:00", "wed": "00:00-01:00"},
                                "Pacific/Chatham"),
]
# Dates around this year's DST changes somewhere in ZONES, so edges near jumps come up often.
DST_DAYS = [datetime(2026, m, d, tzinfo=UTC) for m, d in
            [(3, 8), (3, 29), (4, 5), (9, 6), (9, 27), (10, 4), (10, 25), (11, 1)]]
MINUTE = timedelta(minutes=1)
MICROSECOND = timedelta(microseconds=1)


def before(rnd: Random, start: datetime, end: datetime) -> datetime:
    """A random instant in [start, end), in whole microseconds (no float rounding to end)."""
    return start + rnd.randrange((end - start) // MICROSECOND) * MICROSECOND

instants = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.builds(lambda day, s: day + timedelta(seconds=s), st.sampled_from(DST_DAYS),
              st.integers(-2 * 86400, 2 * 86400)),
)
zone_lists = st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True)
policies = st.sampled_from(POLICIES)


@settings(max_examples=150, deadline=None)
@given(instants, zone_lists, policies, st.randoms(use_true_random=False))
def test_the_next_opening_is_open_and_nothing_before_it_is(at, zones, policy, rnd) -> None:
    opening = next_opening(at, zones, policy)
    assert (opening == at) == is_open(at, zones, policy)
    if opening is None:
        for _ in range(20):
            assert not is_open(before(rnd, at, at + timedelta(days=14)), zones, policy)
        return
    assert at <= opening <= at + timedelta(days=14)
    assert is_open(opening, zones, policy)
    if opening > at:
        earlier = [opening - MICROSECOND, opening - timedelta(seconds=1), at]
        earlier += [before(rnd, at, opening) for _ in range(30)]
        for t in earlier:
            assert t < at or not is_open(t, zones, policy), t


@settings(max_examples=30, deadline=None)
@given(instants, zone_lists, policies)
def test_the_next_opening_matches_stepping_minute_by_minute(at, zones, policy) -> None:
    at = at.replace(second=0, microsecond=0)  # every edge and jump is on a whole minute
    horizon = timedelta(days=2)
    opening = next_opening(at, zones, policy, horizon)
    t = at
    while t <= at + horizon and not is_open(t, zones, policy):
        t += MINUTE
    assert opening == (t if t <= at + horizon else None)


@settings(max_examples=150, deadline=None)
@given(instants, zone_lists, policies, st.randoms(use_true_random=False))
def test_a_window_stays_open_until_it_closes(at, zones, policy, rnd) -> None:
    opening = next_opening(at, zones, policy)
    if opening is None:
        assert closes_at(at, zones, policy) is None
        return
    end = closes_at(opening, zones, policy)
    assert end is not None and end > opening
    if end < opening + timedelta(days=14):
        assert not is_open(end, zones, policy)
    assert is_open(end - MICROSECOND, zones, policy)
    for _ in range(20):
        assert is_open(before(rnd, opening, end), zones, policy)
