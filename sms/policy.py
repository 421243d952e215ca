"""When to text: pure decisions on values the caller reads (the clock included), so the
rules are tested at any hour and the sender holds no state of its own."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence


def should_send_wait_update(previous_estimates_sent: Sequence[float], new_estimate: float,
                            sent_count: int, *, threshold: float, min_change: float,
                            max_messages: int, in_queue: bool) -> bool:
    """Whether to text the caller the new wait estimate (seconds).

    The first text only when the wait is longer than `threshold` (a short wait is over
    before the text is read); later ones only when the estimate moved at least `min_change`
    seconds from the last one sent, either way; never more than `max_messages` in all, and
    never once the caller left the queue. `sent_count` may exceed the estimates kept (a
    trimmed history), and the larger of the two counts.
    """
    if not in_queue or not math.isfinite(new_estimate) or new_estimate < 0:
        return False
    if max(sent_count, len(previous_estimates_sent)) >= max_messages:
        return False
    if not previous_estimates_sent:
        return sent_count == 0 and new_estimate > threshold
    return abs(new_estimate - previous_estimates_sent[-1]) >= min_change


def survey_due(last_surveyed_at: dt.datetime | None, now: dt.datetime,
               call_duration: int | None, *, every_days: int = 30, min_call_seconds: int = 20,
               opted_out: bool) -> bool:
    """Whether to text the post-call survey.

    Not to opted-out numbers; not after a call shorter than `min_call_seconds` or of unknown
    length (a hang-up in the menu is not a call to rate); at most once per `every_days` per
    number, so regular callers are not pestered. A last survey time in the future (a skewed
    clock) counts as recent. Both datetimes must be timezone-aware.
    """
    if now.tzinfo is None or (last_surveyed_at is not None and last_surveyed_at.tzinfo is None):
        raise ValueError("survey_due needs timezone-aware datetimes")
    if opted_out or call_duration is None or call_duration < min_call_seconds:
        return False
    if last_surveyed_at is None:
        return True
    return now - last_surveyed_at >= dt.timedelta(days=every_days)
