"""The SQL behind the Calls pages: the filters a supervisor types, one page of calls, every
call for the CSV export (streamed in batches), and everything one call's timeline needs.

Filters are parsed here, not in the view, so the list, its pager and the export agree on
what "these calls" means; a filter that cannot be understood is reported and ignored rather
than silently matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import CALL_OUTCOMES, Call, CallbackRequest, CallEvent, SmsMessage, SmsSurvey

FILTER_KEYS = ("from", "to", "caller", "queue", "flow", "outcome")
MIN_SUFFIX, MAX_SUFFIX = 2, 6  # "ends in 23" .. "ends in 550123": a masked number's tail
EXPORT_BATCH = 500
_NUMBER_NOISE = re.compile(r"[\s().\-/]")


@dataclass(frozen=True)
class CallFilters:
    """What the list is narrowed to. `raw` keeps the text as typed (for the form, the pager
    and the audit trail); the other fields are what the query uses."""

    raw: dict[str, str] = field(default_factory=dict)
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC
    caller: str | None = None  # E.164: an exact match
    caller_suffix: str | None = None  # a few last digits
    queue: str | None = None
    flow: str | None = None
    outcome: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def active(self) -> dict[str, str]:
        """The filters that were typed, without the empty ones."""
        return {k: v for k, v in self.raw.items() if v}


def parse_filters(args: Mapping[str, str], zone: ZoneInfo, region: str = "US") -> CallFilters:
    """Query-string filters -> CallFilters. Times are read in the admin time zone: a date
    alone means the whole day (from its first second, to its last)."""
    raw = {k: (args.get(k) or "").strip()[:64] for k in FILTER_KEYS}
    errors: list[str] = []
    start = _when(raw["from"], zone, end=False, errors=errors, name="From")
    end = _when(raw["to"], zone, end=True, errors=errors, name="To")
    if start and end and end <= start:
        errors.append("The end of the time range is before its start; showing all times.")
        start = end = None
    caller, suffix = _caller(raw["caller"], region, errors)
    outcome = raw["outcome"] or None
    if outcome and outcome not in CALL_OUTCOMES:
        errors.append(f"Unknown outcome {outcome!r}; showing every outcome.")
        outcome = None
    return CallFilters(raw=raw, start=start, end=end, caller=caller, caller_suffix=suffix,
                       queue=raw["queue"] or None, flow=raw["flow"] or None, outcome=outcome,
                       errors=tuple(errors))


def _when(text: str, zone: ZoneInfo, *, end: bool, errors: list[str],
          name: str) -> datetime | None:
    if not text:
        return None
    try:
        if len(text) == 10:  # 2026-11-24
            day = date.fromisoformat(text)
            local = datetime.combine(day + timedelta(days=1 if end else 0), time(), zone)
        else:  # 2026-11-24T14:30 (datetime-local) or "2026-11-24 14:30[:05]"
            parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
            local = parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed
            if end:  # "to 14:30" includes the calls started during 14:30
                local += timedelta(minutes=1) if parsed.second == 0 else timedelta(seconds=1)
    except ValueError:
        errors.append(f"{name}: {text!r} is not a date (2026-11-24) or a time "
                      f"(2026-11-24 14:30); ignored.")
        return None
    return local.astimezone(UTC)


def _caller(text: str, region: str, errors: list[str]) -> tuple[str | None, str | None]:
    """A whole number (any usual format) matches exactly in E.164; 2 to 6 digits alone
    match the end of the number, as a masked number shows it."""
    if not text:
        return None, None
    compact = _NUMBER_NOISE.sub("", text)
    if compact.isdigit() and MIN_SUFFIX <= len(compact) <= MAX_SUFFIX:
        return None, compact
    try:
        parsed = phonenumbers.parse(compact, region)
        if phonenumbers.is_possible_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), \
                None
    except phonenumbers.NumberParseException:
        pass
    if not compact.lstrip("+").isdigit():
        return compact, None  # a SIP or client identity: matched exactly as stored
    errors.append(f"Caller: {text!r} is neither a phone number nor its last "
                  f"{MIN_SUFFIX}-{MAX_SUFFIX} digits; ignored.")
    return None, None


def filtered(filters: CallFilters) -> Select[tuple[Call]]:
    query = select(Call)
    if filters.start is not None:
        query = query.where(Call.started_at >= filters.start)
    if filters.end is not None:
        query = query.where(Call.started_at < filters.end)
    if filters.caller is not None:
        query = query.where(Call.from_number == filters.caller)
    if filters.caller_suffix is not None:  # digits only: nothing to escape in the pattern
        query = query.where(Call.from_number.like(f"%{filters.caller_suffix}"))
    if filters.queue is not None:
        query = query.where(Call.queue == filters.queue)
    if filters.flow is not None:
        query = query.where(Call.flow == filters.flow)
    if filters.outcome is not None:
        query = query.where(Call.outcome == filters.outcome)
    return query


def newest_first(query: Select[tuple[Call]]) -> Select[tuple[Call]]:
    return query.order_by(Call.started_at.desc(), Call.id.desc())


@dataclass(frozen=True)
class CallPage:
    calls: list[Call]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def page_of_calls(sessions: sessionmaker[Session], filters: CallFilters, page: int,
                  page_size: int) -> CallPage:
    """One page, newest first, and how many calls match in all (for "page 2 of 7")."""
    query = filtered(filters)
    with sessions() as db:
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        last = max(1, -(-total // page_size))
        page = min(max(1, page), last)
        rows = list(db.scalars(newest_first(query).limit(page_size)
                               .offset((page - 1) * page_size)))
        db.expunge_all()
    return CallPage(rows, page, page_size, total)


def all_calls(sessions: sessionmaker[Session], filters: CallFilters,
              batch: int = EXPORT_BATCH) -> Iterator[Call]:
    """Every matching call, newest first, fetched `batch` rows at a time (the export streams
    them out as they come, so a year of calls never sits in memory at once)."""
    with sessions() as db:
        result = db.execute(newest_first(filtered(filters))
                            .execution_options(yield_per=batch)).scalars()
        yield from result


@dataclass(frozen=True)
class CallRecord:
    """One call and everything its page shows."""

    call: Call
    events: list[CallEvent]
    messages: list[SmsMessage]
    survey: SmsSurvey | None
    callbacks: list[CallbackRequest]


def call_record(sessions: sessionmaker[Session], call_sid: str) -> CallRecord | None:
    with sessions() as db:
        call = db.scalar(select(Call).where(Call.call_sid == call_sid))
        if call is None:
            return None
        events = list(db.scalars(select(CallEvent).where(CallEvent.call_sid == call_sid)
                                 .order_by(CallEvent.at, CallEvent.id)))
        messages = list(db.scalars(select(SmsMessage).where(SmsMessage.call_sid == call_sid)
                                   .order_by(SmsMessage.created_at, SmsMessage.id)))
        survey = db.scalar(select(SmsSurvey).where(SmsSurvey.call_sid == call_sid))
        callbacks = list(db.scalars(select(CallbackRequest)
                                    .where(CallbackRequest.call_sid == call_sid)
                                    .order_by(CallbackRequest.id)))
        db.expunge_all()
    return CallRecord(call, events, messages, survey, callbacks)


def filter_choices(flows: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Flow names and queue names for the filter form's suggestions, from the live flows
    (not a DISTINCT over the calls table, which would scan it on every page view)."""
    queues = {getattr(node, "queue", None) for flow in flows.values()
              for node in flow.model.nodes.values()}
    return sorted(flows), sorted(q for q in queues if isinstance(q, str) and q)


# -- CSV -----------------------------------------------------------------------------------

CSV_HEADER = ("call_sid", "started_at", "ended_at", "duration_s", "caller", "flow",
              "flow_version", "queue", "outcome", "status", "direction")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets an apostrophe
    (OWASP's CSV injection advice), so '+14155550123' opens as text, not as a sum."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_row(call: Call, zone: ZoneInfo, caller: str) -> list[str]:
    def local(at: datetime | None) -> str:
        return at.astimezone(zone).isoformat(timespec="seconds") if at else ""

    return [csv_safe(v) for v in (
        call.call_sid, local(call.started_at), local(call.ended_at), call.duration, caller,
        call.flow, call.flow_version, call.queue, call.outcome, call.status, call.direction)]
