"""Turn a Prediction into words a caller understands.

Honest, not precise: the headline is never below the median wait (a caller told "about 3
minutes" should more often be early than late), numbers are rounded the way people say
them, and a wide interval is said as a range rather than hidden behind one number.
"""

from __future__ import annotations

import math

from .messages import LANGUAGES
from .snapshot import Prediction

WIDE = 1.6  # say a range when p90 is this many times the headline (and 2+ minutes more)
MAX_HOURS = 3  # beyond this, "more than 3 hours"


def round_minutes(minutes: float, at_least: float = 0.0) -> int:
    """Round the way people say waits: 1..10 by ones, up to 30 by fives, then by tens; to
    the nearest step, but never below `at_least` (the median: callers hold us to it)."""
    step = 1 if minutes <= 10 else (5 if minutes <= 30 else 10)
    rounded = max(1, math.floor(minutes / step + 0.5) * step)
    while rounded < at_least - 1e-9:
        rounded += step
    return rounded


def phrase(prediction: Prediction, language: str = "en") -> str:
    """'less than a minute', 'about 5 minutes' or 'between 4 and 7 minutes'."""
    words = LANGUAGES[language]
    headline_s = max(prediction.predicted_wait_s, prediction.p50)
    if headline_s < 60.0:
        return words["under_minute"]
    minutes = round_minutes(headline_s / 60.0, at_least=prediction.p50 / 60.0)
    if minutes > 60:
        hours = max(1, math.floor(headline_s / 3600.0 + 0.5))
        if hours > MAX_HOURS:
            return words["over_hours"].format(n=MAX_HOURS)
        return words["over_hour"] if hours < 2 else words["about_hours"].format(n=hours)
    high = round_minutes(prediction.p90 / 60.0)
    if high >= minutes * WIDE and high - minutes >= 2 and high <= 60:
        return words["between_minutes"].format(low=minutes, high=high)
    if minutes == 1:
        return words["about_one_minute"]
    return words["about_minutes"].format(n=minutes)
