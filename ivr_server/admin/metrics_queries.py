"""The SQL behind the dashboard: plain selects and GROUP BY counts that read the same on SQLite
and PostgreSQL, returning rows for metrics.py to compute on.

Calls and their queue events are fetched as rows (rates, percentiles and wait pairing are
done in Python, not in dialect-specific SQL), capped at MAX_CALLS calls and MAX_EVENTS
events: a period bigger than that is reported as truncated, and the page says so rather
than loading a year of a busy line into one request. Counts that need no per-row logic
(callbacks by state, texts by status, opt-outs, survey scores) are grouped in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import Call, CallbackRequest, CallEvent, SmsMessage, SmsOptOut, SmsSurvey
from .metrics import QUEUE_EVENT_KINDS, CallRow, EventRow

MAX_CALLS = 50_000
MAX_EVENTS = 200_000
# A text or survey answer may come after its call: how far back its call may have started.
AFTER_CALL_SLACK = dt.timedelta(days=8)


@dataclass(frozen=True)
class Filters:
    start: dt.datetime  # aware, inclusive
    end: dt.datetime  # aware, exclusive
    flow: str | None = None
    queue: str | None = None

    @property
    def per_call(self) -> bool:
        return bool(self.flow or self.queue)


@dataclass
class DashboardRows:
    calls: list[CallRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    callbacks: Counter[str] = field(default_factory=Counter)  # state -> requests
    sms_out: Counter[str] = field(default_factory=Counter)  # status -> outbound messages
    opt_outs: int = 0
    scores: list[int] = field(default_factory=list)
    truncated: bool = False


def _calls_where(stmt: Select[Any], f: Filters, since: dt.datetime) -> Select[Any]:
    stmt = stmt.where(Call.started_at >= since, Call.started_at < f.end)
    if f.flow:
        stmt = stmt.where(Call.flow == f.flow)
    if f.queue:
        stmt = stmt.where(Call.queue == f.queue)
    return stmt


def fetch(session_factory: sessionmaker[Session], f: Filters) -> DashboardRows:
    """Everything the dashboard shows for one period and filter, in one session."""
    rows = DashboardRows()
    with session_factory() as session:
        # Core rows, not ORM ones: this reads tens of thousands of rows per page view.
        db = session.connection()
        calls_stmt = _calls_where(select(Call.call_sid, Call.started_at, Call.ended_at,
                                         Call.outcome), f, f.start)
        raw = db.execute(calls_stmt.order_by(Call.started_at).limit(MAX_CALLS + 1)).all()
        rows.truncated = len(raw) > MAX_CALLS
        rows.calls = [CallRow(*r) for r in raw[:MAX_CALLS]]

        # Queue events of the calls counted above (by flow; a call may visit two queues,
        # so the queue filter is applied per visit in metrics.queue_visits' output).
        in_period = _calls_where(select(Call.call_sid), Filters(f.start, f.end, f.flow),
                                 f.start)
        ev = db.execute(select(CallEvent.call_sid, CallEvent.at, CallEvent.kind,
                               CallEvent.data)
                        .where(CallEvent.kind.in_(QUEUE_EVENT_KINDS),
                               CallEvent.call_sid.in_(in_period.scalar_subquery()))
                        .order_by(CallEvent.id).limit(MAX_EVENTS + 1)).all()
        rows.truncated = rows.truncated or len(ev) > MAX_EVENTS
        rows.events = [EventRow(r[0], r[1], r[2], r[3] or {}) for r in ev[:MAX_EVENTS]]

        cb = select(CallbackRequest.state, func.count()).where(
            CallbackRequest.created_at >= f.start, CallbackRequest.created_at < f.end)
        if f.flow:
            cb = cb.where(CallbackRequest.flow == f.flow)
        if f.queue:
            cb = cb.where(CallbackRequest.queue == f.queue)
        rows.callbacks = Counter({s: n for s, n in db.execute(
            cb.group_by(CallbackRequest.state)).all()})

        # Texts and surveys of the filtered calls, when filtered (their call may have
        # started a little before the period).
        their_calls = _calls_where(select(Call.call_sid), f, f.start - AFTER_CALL_SLACK)
        sms = select(SmsMessage.status, func.count()).where(
            SmsMessage.direction == "outbound", SmsMessage.created_at >= f.start,
            SmsMessage.created_at < f.end)
        if f.per_call:
            sms = sms.where(SmsMessage.call_sid.in_(their_calls.scalar_subquery()))
        rows.sms_out = Counter({s: n for s, n in db.execute(
            sms.group_by(SmsMessage.status)).all()})

        rows.opt_outs = db.scalar(select(func.count()).select_from(SmsOptOut).where(
            SmsOptOut.opted_out.is_(True), SmsOptOut.changed_at >= f.start,
            SmsOptOut.changed_at < f.end)) or 0

        scores = select(SmsSurvey.score, func.count()).where(
            SmsSurvey.score.is_not(None), SmsSurvey.answered_at >= f.start,
            SmsSurvey.answered_at < f.end)
        if f.per_call:
            scores = scores.where(SmsSurvey.call_sid.in_(their_calls.scalar_subquery()))
        for score, n in db.execute(scores.group_by(SmsSurvey.score)).all():
            rows.scores.extend([int(score)] * int(n))
    return rows


def flows_in(session_factory: sessionmaker[Session], start: dt.datetime, end: dt.datetime,
             limit: int = 200) -> list[str]:
    """Flows that took calls in the period, for the filter's choices (retired ones too)."""
    with session_factory() as db:
        return sorted(db.scalars(select(Call.flow).where(
            Call.started_at >= start, Call.started_at < end, Call.flow.is_not(None))
            .distinct().limit(limit)))
