"""Opening-hours notation in flow files: day specs ("mon-fri") and ranges ("08:00-18:00")."""

from __future__ import annotations

import re

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS_RANGE = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def range_ok(r: str) -> bool:
    m = HOURS_RANGE.match(r)
    if not m:
        return False
    start, end = (int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4]))
    return start < end <= 24 * 60


def expand_days(spec: str) -> list[int]:
    """'mon-fri' -> [0..4], 'sat' -> [5], 'mon,wed' -> [0, 2]; weekday numbers as datetime."""
    days: list[int] = []
    for part in str(spec).lower().split(","):
        part = part.strip()
        if "-" in part:
            a, _, b = part.partition("-")
            if a not in DAY_NAMES or b not in DAY_NAMES:
                raise ValueError(f"{spec!r} is not a day range like mon-fri")
            i, j = DAY_NAMES.index(a), DAY_NAMES.index(b)
            days.extend(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        elif part in DAY_NAMES:
            days.append(DAY_NAMES.index(part))
        else:
            raise ValueError(f"{spec!r} is not a day (mon..sun) or a range like mon-fri")
    return days
