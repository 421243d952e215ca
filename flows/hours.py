"""Business hours and holidays, evaluated in the flow's own time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .days import expand_days
from .schema import FlowModel


def local_time(model: FlowModel, now: dt.datetime) -> dt.datetime:
    """`now` (aware, any zone) as wall-clock time where the flow's callers are."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(model.timezone))


def is_holiday(model: FlowModel, now: dt.datetime) -> bool:
    today = local_time(model, now).date()
    return any(h.date == today for h in model.holidays)


def in_hours(model: FlowModel, name: str, now: dt.datetime) -> bool:
    """Open under the named hours at `now`: not a holiday and inside one of today's ranges."""
    days = model.hours.get(name)
    if days is None:
        raise KeyError(f"no hours named {name!r} in flow {model.flow!r}")
    if is_holiday(model, now):
        return False
    local = local_time(model, now)
    minute = local.hour * 60 + local.minute
    for spec, ranges in days.items():
        if local.weekday() not in expand_days(spec):
            continue
        for r in ranges:
            if r == "closed":
                continue
            start, _, end = r.partition("-")
            if _minutes(start) <= minute < _minutes(end):
                return True
    return False


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.partition(":")
    return int(h) * 60 + int(m)
