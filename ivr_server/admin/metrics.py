"""The dashboard's figures, computed from plain rows (no Flask, no SQL).

Kept pure so each definition (what counts as contained, which waits an accuracy figure may
use, how a day is cut in the admin zone across a DST change) is tested on hand-built rows,
and the queries in metrics_queries.py only have to fetch. Every rate is None, never 0,
when it has nothing to divide by: the page shows "—" for "no data", not a misleading 0%.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

HOURLY_UP_TO = dt.timedelta(days=2)  # periods this long or shorter are charted by the hour
QUEUE_EVENT_KINDS = ("queue_joined", "queue_answered", "queue_result")
SERVED_RESULTS = frozenset({"bridged"})


@dataclass(frozen=True)
class CallRow:
    call_sid: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    outcome: str | None

    @property
    def ended(self) -> bool:
        return self.outcome is not None or self.ended_at is not None


@dataclass(frozen=True)
class EventRow:
    call_sid: str
    at: dt.datetime
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Prediction:
    wait: float
    p10: float
    p90: float


@dataclass
class QueueVisit:
    """One caller's stay in one queue, rebuilt from its queue_* events."""

    call_sid: str
    queue: str
    joined_at: dt.datetime | None = None
    predicted: Prediction | None = None
    waited: float | None = None  # seconds; None until the caller left or was answered
    served: bool = False
    result: str | None = None  # queue_result's: bridged, hangup, leave, redirected, ...

    @property
    def finished(self) -> bool:
        return self.served or self.result is not None


@dataclass(frozen=True)
class CallFigures:
    calls: int
    ended: int
    self_served: int
    transferred: int
    abandoned: int
    containment: float | None  # self-served / ended
    transfer_rate: float | None
    abandonment: float | None


@dataclass(frozen=True)
class WaitFigures:
    waits: int  # callers who left the queue (answered or not) with a known wait
    average: float | None
    p90: float | None
    served: int


@dataclass(frozen=True)
class AccuracyFigures:
    judged: int  # served callers who had been given an estimate
    mae: float | None  # mean absolute error, seconds
    within: float | None  # share whose actual wait fell in the announced p10..p90
    points: list[dict[str, Any]] = field(default_factory=list)  # for the scatter


@dataclass(frozen=True)
class Csat:
    answers: int
    satisfied: float | None  # share of 4s and 5s
    mean: float | None


@dataclass(frozen=True)
class Bucket:
    start: dt.datetime  # aware, in the admin zone
    label: str
    calls: int = 0
    ended: int = 0
    abandoned: int = 0

    @property
    def abandonment(self) -> float | None:
        return ratio(self.abandoned, self.ended)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..100): always a wait somebody actually had."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def call_figures(calls: Iterable[CallRow]) -> CallFigures:
    """Rates over calls that ended (a call still in progress has no outcome yet)."""
    rows = list(calls)
    ended = [c for c in rows if c.ended]
    count = {o: sum(1 for c in ended if c.outcome == o)
             for o in ("self-served", "transferred", "abandoned")}
    n = len(ended)
    return CallFigures(calls=len(rows), ended=n, self_served=count["self-served"],
                       transferred=count["transferred"], abandoned=count["abandoned"],
                       containment=ratio(count["self-served"], n),
                       transfer_rate=ratio(count["transferred"], n),
                       abandonment=ratio(count["abandoned"], n))


def _prediction(raw: Any) -> Prediction | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Prediction(float(raw["wait"]), float(raw["p10"]), float(raw["p90"]))
    except (KeyError, TypeError, ValueError):
        return None


def _seconds(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 and math.isfinite(value) else None


def queue_visits(events: Iterable[EventRow]) -> list[QueueVisit]:
    """Pair each call's queue events into visits (a call may queue twice, e.g. once more
    after a callback offer): a queue_joined opens one, queue_result closes it. The wait
    queue_answered reports wins over queue_result's, which for a bridged caller may include
    the agent's side of the call."""
    open_visits: dict[tuple[str, str], QueueVisit] = {}
    visits: list[QueueVisit] = []
    for e in sorted(events, key=lambda e: (e.call_sid, e.at)):
        queue = str(e.data.get("queue") or "")
        key = (e.call_sid, queue)
        visit = open_visits.get(key)
        if e.kind == "queue_joined" or visit is None:
            visit = QueueVisit(e.call_sid, queue)
            open_visits[key] = visit
            visits.append(visit)
        if e.kind == "queue_joined":
            visit.joined_at, visit.predicted = e.at, _prediction(e.data.get("predicted"))
        elif e.kind == "queue_answered":
            visit.served = True
            visit.waited = _seconds(e.data.get("waited"))
        elif e.kind == "queue_result":
            visit.result = str(e.data.get("result") or "error")
            visit.served = visit.served or visit.result in SERVED_RESULTS
            if visit.waited is None:
                visit.waited = _seconds(e.data.get("waited"))
            visit.predicted = visit.predicted or _prediction(e.data.get("predicted"))
            del open_visits[key]
    return visits


def wait_figures(visits: Iterable[QueueVisit]) -> WaitFigures:
    """Average and p90 time in queue of callers who left it, answered or not: a caller
    who gave up also waited, and leaving them out would flatter a busy queue."""
    done = [v for v in visits if v.finished and v.waited is not None]
    waits = [v.waited for v in done if v.waited is not None]
    return WaitFigures(waits=len(waits), average=sum(waits) / len(waits) if waits else None,
                       p90=percentile(waits, 90), served=sum(1 for v in done if v.served))


def accuracy(visits: Iterable[QueueVisit], max_points: int = 2000) -> AccuracyFigures:
    """How good the announced waits were, judged only on callers who reached an agent: for
    one who hung up we know only that the wait would have been longer, not how long, so
    counting them would reward estimates that were too short."""
    judged = [v for v in visits if v.served and v.waited is not None and v.predicted]
    if not judged:
        return AccuracyFigures(0, None, None, [])
    errors = [abs(v.predicted.wait - v.waited) for v in judged]  # type: ignore[union-attr]
    inside = [v.predicted.p10 <= v.waited <= v.predicted.p90  # type: ignore[union-attr,operator]
              for v in judged]
    step = max(1, math.ceil(len(judged) / max_points))  # every n-th: the chart stays light
    points = [{"x": v.predicted.wait, "y": v.waited, "lo": v.predicted.p10,  # type: ignore
               "hi": v.predicted.p90, "in": ok}  # type: ignore[union-attr]
              for v, ok in list(zip(judged, inside, strict=True))[::step]]
    return AccuracyFigures(len(judged), sum(errors) / len(errors),
                           sum(inside) / len(inside), points)


def csat(scores: Iterable[int | None]) -> Csat:
    """Share of 4s and 5s among answered surveys (1-5); unanswered ones are not counted."""
    answered = [s for s in scores if s is not None and 1 <= s <= 5]
    n = len(answered)
    return Csat(n, ratio(sum(1 for s in answered if s >= 4), n),
                sum(answered) / n if n else None)


def hourly(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> bool:
    """By the hour up to two days as the wall clock counts them (two days across the
    autumn DST change are 49 real hours, and still two days)."""
    wall = end.astimezone(zone).replace(tzinfo=None) - start.astimezone(zone).replace(tzinfo=None)
    return wall <= HOURLY_UP_TO


def bucket_key(at: dt.datetime, zone: ZoneInfo, by_hour: bool) -> Any:
    """The bucket a moment falls in: its local hour (the repeated hour of a DST fall-back
    is a bucket of its own, told apart by its UTC offset) or its local date."""
    local = at.astimezone(zone)
    if by_hour:
        return (local.replace(minute=0, second=0, microsecond=0, tzinfo=None),
                local.utcoffset())
    return local.date()


def buckets(start: dt.datetime, end: dt.datetime, zone: ZoneInfo,
            by_hour: bool) -> dict[Any, Bucket]:
    """Empty buckets covering [start, end), in order, keyed by bucket_key. Days are local
    days (23 or 25 hours long across a DST change); hours are the hours a clock showed."""
    out: dict[Any, Bucket] = {}
    if by_hour:
        # Step through real time (UTC) every 15 minutes: every local hour, even in zones
        # offset by :30 or :45 and across DST changes, is met at least once.
        at, last = start.astimezone(dt.UTC), end - dt.timedelta(microseconds=1)
        while True:
            key = bucket_key(at, zone, True)
            if key not in out:
                local = at.astimezone(zone).replace(minute=0, second=0, microsecond=0)
                out[key] = Bucket(local, local.strftime("%a %d %H:%M"))
            if at >= last:
                break
            at = min(at + dt.timedelta(minutes=15), last)
        _tell_repeated_hours_apart(out)
        return out
    day = start.astimezone(zone).date()
    while True:
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        if midnight >= end:
            break
        out[day] = Bucket(midnight, midnight.strftime("%a %d %b"))
        day += dt.timedelta(days=1)
    return out


def _tell_repeated_hours_apart(out: dict[Any, Bucket]) -> None:
    seen: dict[str, int] = {}
    for b in out.values():
        seen[b.label] = seen.get(b.label, 0) + 1
    for key, b in out.items():
        if seen[b.label] > 1:
            out[key] = Bucket(b.start, f"{b.label} {b.start.tzname()}")


def calls_over_time(calls: Iterable[CallRow], start: dt.datetime, end: dt.datetime,
                    zone: ZoneInfo, by_hour: bool | None = None) -> list[Bucket]:
    """Calls per hour (periods up to two days, unless `by_hour` says) or per day, by when
    they started, with the abandonment rate of each bucket's ended calls."""
    by_hour = hourly(start, end, zone) if by_hour is None else by_hour
    out = buckets(start, end, zone, by_hour)
    for c in calls:
        key = bucket_key(c.started_at, zone, by_hour)
        b = out.get(key)
        if b is None:
            continue
        out[key] = Bucket(b.start, b.label, b.calls + 1, b.ended + c.ended,
                          b.abandoned + (c.ended and c.outcome == "abandoned"))
    return list(out.values())


def format_seconds(seconds: float | None) -> str:
    """A wait as people say it: 45s, 3m 05s, 1h 02m; "—" for none."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def format_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class CallbackFigures:
    requested: int
    completed: int
    failed: int
    cancelled: int
    pending: int


def callback_figures(states: dict[str, int]) -> CallbackFigures:
    """Requests made in the period, by the state they are in now (a cohort: a request made
    on the last day may still be pending, which is why pending is shown too)."""
    get = states.get
    return CallbackFigures(requested=sum(states.values()), completed=get("completed", 0),
                           failed=get("failed", 0), cancelled=get("cancelled", 0),
                           pending=sum(n for s, n in states.items()
                                       if s not in ("completed", "failed", "cancelled")))


SMS_NOT_SENT = frozenset({"refused"})  # stored for the timeline, never handed to Twilio
SMS_FAILED = frozenset({"failed", "undelivered"})


@dataclass(frozen=True)
class SmsFigures:
    sent: int
    failed: int
    refused: int


def sms_figures(statuses: dict[str, int]) -> SmsFigures:
    """Outbound texts by status: sent is everything handed on for sending (failed ones
    included, and shown apart); refused ones went to opted-out numbers and never left."""
    refused = sum(n for s, n in statuses.items() if s in SMS_NOT_SENT)
    return SmsFigures(sent=sum(statuses.values()) - refused,
                      failed=sum(n for s, n in statuses.items() if s in SMS_FAILED),
                      refused=refused)
