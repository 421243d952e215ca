"""Opening hours as values: one day's hours, and a week of them, parsed from settings.

Hours never run past midnight (write "22:00-24:00" on one day and "00:00-06:00" on the
next); "24:00" is only an end, and "00:00-24:00" is the whole day. Kept apart from window.py,
which re-exports these, so the parsing rules and their messages can be read on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta

from .errors import WindowError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_MIDNIGHT = time(0)


def _clock(h: int, m: int) -> str:
    return f"{h:02d}:{m:02d}"


@dataclass(frozen=True)
class DailyHours:
    """[start, end) in local wall-clock time; `end == time(0)` means midnight at the end of
    the day (written "24:00")."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise WindowError(f'hours "{self}": the end must be after the start '
                              "(hours cannot run past midnight)")

    @property
    def span(self) -> tuple[timedelta, timedelta]:
        """Start and end as offsets from the day's midnight (the end up to 24 hours)."""
        end = timedelta(days=1) if self.end == _MIDNIGHT else _offset(self.end)
        return _offset(self.start), end

    @classmethod
    def parse(cls, text: str, setting: str = "hours") -> DailyHours:
        """ "08:00-21:00" -> DailyHours; WindowError naming the setting and text otherwise."""
        match = _HOURS.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise WindowError(f'{setting} "{text}": expected HH:MM-HH:MM, e.g. 08:00-21:00')
        sh, sm, eh, em = (int(g) for g in match.groups())
        for h, m, is_end in ((sh, sm, False), (eh, em, True)):
            if m > 59 or h > 24 or (h == 24 and (m or not is_end)):
                raise WindowError(f'{setting} "{text}": {_clock(h, m)} is not a time of day'
                                  + (" (24:00 can only end the hours)" if h == 24 else ""))
        start, end = time(sh, sm), time(0) if eh == 24 else time(eh, em)
        if end != _MIDNIGHT and end <= start:
            raise WindowError(f'{setting} "{text}": the end must be after the start '
                              "(hours cannot run past midnight)")
        return cls(start, end)

    def __str__(self) -> str:
        end = "24:00" if self.end == _MIDNIGHT else _clock(self.end.hour, self.end.minute)
        return f"{_clock(self.start.hour, self.start.minute)}-{end}"


ALL_DAY = DailyHours(time(0), time(0))


def _offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second,
                     microseconds=t.microsecond)


def _merged(hours: tuple[DailyHours, ...]) -> tuple[DailyHours, ...]:
    """Sorted, with overlapping or touching hours joined ("09:00-12:00,12:00-17:00" is one)."""
    out: list[DailyHours] = []
    for h in sorted(hours, key=lambda h: h.span):
        if out and h.span[0] <= out[-1].span[1]:
            last = out[-1]
            if h.span[1] > last.span[1]:
                out[-1] = DailyHours(last.start, h.end)
        else:
            out.append(h)
    return tuple(out)


@dataclass(frozen=True)
class WeeklyHours:
    """Hours per weekday (0 = Monday); a day without an entry is closed."""

    days: dict[int, tuple[DailyHours, ...]]

    def __post_init__(self) -> None:
        bad = [d for d in self.days if d not in range(7)]
        if bad:
            raise WindowError(f"business_hours: weekday {bad[0]!r} is not 0 (Monday) .. 6")
        tidy = {d: _merged(tuple(h)) for d, h in sorted(self.days.items()) if h}
        object.__setattr__(self, "days", tidy)

    def __hash__(self) -> int:  # a dict field: hash its contents so policies can be cached
        return hash(tuple(self.days.items()))

    def on(self, weekday: int) -> tuple[DailyHours, ...]:
        return self.days.get(weekday, ())

    @classmethod
    def parse(cls, spec: dict[str, str] | str, setting: str = "business_hours") -> WeeklyHours:
        """{"mon-fri": "09:00-17:00", "sat,sun": "10:00-12:00,13:00-15:00", "wed": "closed"}
        or "always". Days: mon..sun (or full names), ranges (which may wrap: "fri-mon") and
        comma lists; a day may be named only once."""
        if isinstance(spec, str):
            if spec.strip().lower() == "always":
                return cls({d: (ALL_DAY,) for d in range(7)})
            raise WindowError(f'{setting} "{spec}": expected "always" or a table of days '
                              'and hours such as {"mon-fri": "09:00-17:00"}')
        if not isinstance(spec, dict):
            raise WindowError(f"{setting}: expected a table of days and hours, got {spec!r}")
        days: dict[int, tuple[DailyHours, ...]] = {}
        for key, value in spec.items():
            where = f"{setting}.{key}"
            hours = _day_hours(value, where)
            for day in _days(str(key), setting):
                if day in days:
                    raise WindowError(f'{setting}: {DAY_NAMES[day]} is named twice '
                                      f'(again in "{key}")')
                days[day] = hours
        return cls(days)


def _day(name: str, key: str, setting: str) -> int:
    word = name.strip().lower()
    for i, short in enumerate(DAY_NAMES):
        if word and (word == short or (len(word) > 3 and _FULL[i].startswith(word))):
            return i
    raise WindowError(f'{setting}: unknown day "{name.strip()}" in "{key}" (use mon..sun)')


def _days(key: str, setting: str) -> list[int]:
    out: list[int] = []
    for part in key.split(","):
        first, dash, last = part.partition("-")
        a = _day(first, key, setting)
        b = _day(last, key, setting) if dash else a
        out.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return out


def _day_hours(value: object, where: str) -> tuple[DailyHours, ...]:
    if not isinstance(value, str):
        raise WindowError(f'{where} {value!r}: expected "closed" or hours like "09:00-17:00"')
    if value.strip().lower() == "closed":
        return ()
    hours = tuple(DailyHours.parse(part, where) for part in value.split(","))
    return _merged(hours)
