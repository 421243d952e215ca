"""When the call will come, in words a caller hears or reads, in the callee's own zone.

Soon is said in minutes, rounded up (nobody minds an early promise kept late less than a
late one); later is said as a day and a time "after" which to expect it, the time rounded
up to the quarter hour so it is said the way people say times.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SOON_MINUTES = 90  # up to this, "in about N minutes"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_QUARTER = timedelta(minutes=15)


def _minutes(delta: timedelta) -> int:
    """Minutes rounded up: by ones up to 10, then by fives."""
    n = max(1, math.ceil(delta / timedelta(minutes=1)))
    return n if n <= 10 else math.ceil(n / 5) * 5


def _clock(t: datetime) -> str:
    hour = t.hour % 12 or 12
    minutes = f":{t.minute:02d}" if t.minute else ""
    return f"{hour}{minutes} {'AM' if t.hour < 12 else 'PM'}"


def _quarter_up(local: datetime) -> datetime:
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    quarters = math.ceil((local - midnight) / _QUARTER)
    return midnight + quarters * _QUARTER  # wall-clock arithmetic: a 9 AM stays 9 AM


def when_phrase(due: datetime, now: datetime, zone: str) -> str:
    """When `due` is, seen from `now`: "in about 15 minutes" (up to 90 minutes), "today
    after 2:30 PM", "tomorrow after 9 AM", "on Monday after 9 AM" (within 6 days) or "on
    December 28 after 9 AM"; "in a few minutes" once it is due. Both must be aware."""
    if due.tzinfo is None or now.tzinfo is None:
        raise ValueError("when_phrase needs timezone-aware datetimes")
    if due <= now:
        return "in a few minutes"
    if due - now <= timedelta(minutes=SOON_MINUTES):
        n = _minutes(due - now)
        return f"in about {n} minute{'s' if n != 1 else ''}"
    tz = ZoneInfo(zone)
    at = _quarter_up(due.astimezone(tz).replace(tzinfo=None))
    days = (at.date() - now.astimezone(tz).date()).days
    if days == 0:
        day = "today"
    elif days == 1:
        day = "tomorrow"
    elif days <= 6:
        day = f"on {WEEKDAYS[at.weekday()]}"
    else:
        day = f"on {MONTHS[at.month - 1]} {at.day}"
    return f"{day} after {_clock(at)}"
