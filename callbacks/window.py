"""Calling windows: when a callback may ring.

Open at an instant when (1) the callee's wall clock is inside `callee_hours` in every zone
the number may be in (a number whose zone is uncertain must suit them all, so nobody is
woken up), (2) the business is inside its hours in its own zone, and (3) the business date
is not a holiday. Each condition is a wall clock inside daily spans, so the open instants
are found by jumping between span edges and time-zone transitions, never minute by minute:
a start inside a spring-forward gap opens at the jump, and the hour repeated in the autumn
counts twice, as the callee lives through it twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from .errors import WindowError
from .hours import ALL_DAY, DailyHours, WeeklyHours

__all__ = ["ALL_DAY", "CallingPolicy", "DailyHours", "WeeklyHours", "closes_at", "is_open",
           "next_opening"]

Spans = tuple[tuple[timedelta, timedelta], ...]  # [start, end) after each local midnight
SpansFor = Callable[[date], Spans]
Clock = tuple[ZoneInfo, SpansFor]
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=512)
def _zone(name: str, setting: str = "time zone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise WindowError(f'{setting} "{name}": unknown time zone '
                          "(expected an IANA name such as America/New_York)") from None


def _holiday(value: str | date) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value).strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise WindowError(f'holidays "{value}": not a date (expected YYYY-MM-DD)')


@dataclass(frozen=True)
class CallingPolicy:
    """When callbacks may ring: the callee's local hours (every day), the business's weekly
    hours in its zone, and its holidays (dates in the business zone)."""

    callee_hours: DailyHours
    business_hours: WeeklyHours
    business_zone: str
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # Checked and compiled once; _zone_info and _week are not fields (not compared) and
        # are plain values, so a policy still pickles (e.g. as a job argument).
        object.__setattr__(self, "_zone_info", _zone(self.business_zone, "time_zone"))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "_week", tuple(
            tuple(h.span for h in self.business_hours.on(d)) for d in range(7)))

    def _business_spans(self, day: date) -> Spans:
        return () if day in self.holidays else self._week[day.weekday()]

    @classmethod
    def from_settings(cls, callee_hours: str | DailyHours = "08:00-21:00",
                      business_hours: dict[str, str] | str | WeeklyHours = "always",
                      time_zone: str = "UTC",
                      holidays: Iterable[str | date] | str = ()) -> CallingPolicy:
        """From config values; WindowError names the setting and value that is wrong."""
        callee = (callee_hours if isinstance(callee_hours, DailyHours)
                  else DailyHours.parse(callee_hours, "callee_hours"))
        business = (business_hours if isinstance(business_hours, WeeklyHours)
                    else WeeklyHours.parse(business_hours, "business_hours"))
        if isinstance(holidays, str):
            holidays = [h for h in holidays.split(",") if h.strip()]
        return cls(callee, business, time_zone, frozenset(_holiday(h) for h in holidays))

    def _clocks(self, callee_zones: Sequence[str]) -> list[Clock]:
        if isinstance(callee_zones, str):
            callee_zones = (callee_zones,)
        if not callee_zones:
            raise ValueError("no callee time zone given (see numbers.time_zones)")
        spans: Spans = (self.callee_hours.span,)

        def callee(_day: date) -> Spans:
            return spans

        names = dict.fromkeys(callee_zones)  # unique, in order
        return [(self._zone_info, self._business_spans)] + [(_zone(n), callee) for n in names]


# -- instants: naive UTC datetimes inside this module ------------------------------------


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone: pass an aware datetime")
    return at.astimezone(UTC).replace(tzinfo=None)


def _aware(t: datetime, tz: tzinfo | None) -> datetime:
    return t.replace(tzinfo=UTC).astimezone(tz)


def _offset(zone: ZoneInfo, t: datetime) -> timedelta:
    return zone.fromutc(t.replace(tzinfo=zone)).utcoffset() or timedelta(0)


def _inside(wall: datetime, spans_for: SpansFor) -> bool:
    midnight = datetime(wall.year, wall.month, wall.day)
    tod = wall - midnight
    return any(s <= tod < e for s, e in spans_for(midnight.date()))


def _wall_target(wall: datetime, spans_for: SpansFor, want: bool, days: int) -> datetime | None:
    """The first wall time >= `wall` that is inside the spans (want) or outside them (not
    want), as if the clock ran without DST jumps; None if none within `days` days."""
    midnight = datetime(wall.year, wall.month, wall.day)
    pos = wall
    for k in range(days + 1):
        day0 = midnight + k * _DAY
        if not want and pos < day0:
            return pos  # closed from the end of the last span to midnight
        for s, e in spans_for(day0.date()):
            if day0 + e <= pos:
                continue
            if want:
                return max(pos, day0 + s)
            if day0 + s > pos:
                return pos
            pos = day0 + e  # inside: run to this span's end (and on, if the next touches)
    return None


def _transition(zone: ZoneInfo, lo: datetime, hi: datetime, off: timedelta) -> datetime:
    """The first instant in (lo, hi] whose offset is not `off` (transitions are whole
    seconds in tzdata), by bisection on seconds."""
    a, b = (lo - _EPOCH) // _SECOND, -((_EPOCH - hi) // _SECOND)
    while b - a > 1:
        mid = (a + b) // 2
        if _offset(zone, _EPOCH + mid * _SECOND) == off:
            a = mid
        else:
            b = mid
    return _EPOCH + b * _SECOND


def _next_change(t: datetime, clock: Clock, want: bool, limit: datetime) -> datetime | None:
    """The first instant >= t at which the clock is inside its spans (want) or outside them,
    or None if that is after `limit`."""
    zone, spans_for = clock
    off = _offset(zone, t)
    while True:
        target = _wall_target(t + off, spans_for, want, (limit - t).days + 2)
        if target is None:
            return None
        u = target - off
        if u > limit:
            return None
        if _offset(zone, u) == off:
            return u
        t = _transition(zone, t, u, off)  # the wall clock jumps: look again from the jump
        off = _offset(zone, t)


# -- public ------------------------------------------------------------------------------


def is_open(at: datetime, callee_zones: Sequence[str], policy: CallingPolicy) -> bool:
    """Whether a callback may ring at `at` (aware) for a callee in all of `callee_zones`."""
    t = _utc(at)
    for zone, spans_for in policy._clocks(callee_zones):
        if not _inside(t + _offset(zone, t), spans_for):
            return False
    return True


def next_opening(at: datetime, callee_zones: Sequence[str], policy: CallingPolicy,
                 horizon: timedelta = timedelta(days=14)) -> datetime | None:
    """The earliest instant >= `at` that is open (`at` itself when open now), in at's zone;
    None when nothing opens by `at + horizon`."""
    start = _utc(at)
    t, limit = start, start + horizon
    clocks = policy._clocks(callee_zones)
    while True:  # each condition in turn jumps t to its next opening; done when none moves
        moved = False
        for clock in clocks:
            u = _next_change(t, clock, True, limit)
            if u is None:
                return None
            if u != t:
                t, moved = u, True
        if not moved:
            return at if t == start else _aware(t, at.tzinfo)


def closes_at(at: datetime, callee_zones: Sequence[str], policy: CallingPolicy,
              horizon: timedelta = timedelta(days=14)) -> datetime | None:
    """When the window open at `at` closes, in at's zone; None if it is not open at `at`.
    A window that stays open past `at + horizon` (e.g. "always" hours) gives that instant:
    it is open at least until then."""
    if not is_open(at, callee_zones, policy):
        return None
    t = _utc(at)
    limit = t + horizon
    ends = [_next_change(t, clock, False, limit) for clock in policy._clocks(callee_zones)]
    found = [e for e in ends if e is not None]
    return _aware(min(found) if found else limit, at.tzinfo)
