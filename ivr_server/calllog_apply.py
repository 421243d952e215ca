"""Applying call-log records to SQL: one code path for direct writes, replays and batches.

Every record is idempotent (upsert by CallSid, events keyed by event_id), so a record
applied twice, by two processes or after a crash, changes nothing the second time.

A call whose last turn was the safe path (voice_safety: an apology and a person) ends
"transferred" whatever its status callback said: when Redis was away its session, read
again at the end, still sits where the outage found it and would say "abandoned". The
safe path's event is written even then (straight to SQL), so the end, or that event if it
lands later, corrects the outcome here, off the webhook's path and in either order.
"""

from __future__ import annotations

import functools
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import Call, CallEvent

Record = dict[str, Any]

SAFE_PATH = "safe_path"  # the safe path put the caller through to a person
SAFE_PATH_GOODBYE = "safe_path_goodbye"  # ... or, with nobody to call, said goodbye
# Logged around a call rather than by a turn of its flow (its end, a text, an error): one
# of these after the safe path does not mean the caller went back into the flow. A new
# kind logged after a call's end belongs here, or a safe-path call keeps its old label.
SIDE_KINDS = (SAFE_PATH, "status", "error", "caller_hung_up", "sms_queued", "sms_error",
              "sms_reply", "survey_answer", "queue_answered", "brief_mismatch",
              "speech_redirect", "callback_requested", "callback_on_abandon",
              "callback_not_booked", "callback_scheduled", "callback_dialing",
              "callback_call_placed", "callback_dial_unknown", "callback_attempt_lost",
              "callback_answered", "callback_machine", "callback_retry", "callback_failed",
              "callback_completed", "callback_cancelled", "callback_confirmed",
              "callback_merged")
# What a status callback guesses from a stale or unreadable session; a flow's own label
# (self-served, closed, callback, ...) is never overruled.
GUESSED_OUTCOMES = ("abandoned", "failed")


def apply_batch(session: Session, records: list[Record]) -> list[str | None]:
    """Apply records in order, but all their events in one multi-row insert: events need no
    call row (no foreign key) and keep their order, and this is most of the writer's work.
    Consecutive call starts, and consecutive call ends, each go in one executemany (one
    statement each cost more than the rows), still in their place between the others.

    Returns the outcome the log now holds for each call this batch ended (read back, as the
    database may have relabelled a guess): what the calls-ended metric counts, so it agrees
    with the log. An end for a call already ended (Twilio retrying its status callback, a
    record replayed) changes the row but ends nothing, so it is not returned."""
    rows: list[dict[str, Any]] = []
    dialect = _dialect(session)
    statement, run = None, []
    ended: list[str] = []
    already = _already_ended(session, records)
    for record in records:
        if record["op"] == "events":
            rows.extend(_event_rows(record))
            continue
        this, params = _statement_for(dialect, record)
        if this is not statement:
            _execute(session, statement, run)
            statement, run = this, []
        run.append(params)
        if record["op"] == "end" and params["call_sid"] not in already:
            already.add(params["call_sid"])
            ended.append(params["call_sid"])
    _execute(session, statement, run)
    _insert_events(session, rows)
    return _outcomes(session, ended)


def _already_ended(session: Session, records: list[Record]) -> set[str]:
    """The calls among the batch's ends whose end is in the log already. Their rows stay
    locked till the commit, so a second flusher applying the same records waits, then sees
    them ended (two first ends of a call with no row yet may still both count)."""
    sids = {_clip(r["call_sid"], Call.call_sid) for r in records if r["op"] == "end"}
    if not sids:
        return set()
    calls = Call.__table__
    held = session.execute(select(calls.c.call_sid, calls.c.ended_at)
                           .where(calls.c.call_sid.in_(sids))
                           .order_by(calls.c.call_sid).with_for_update()).all()
    return {sid for sid, ended_at in held if ended_at is not None}


def _outcomes(session: Session, call_sids: list[str]) -> list[str | None]:
    if not call_sids:
        return []
    calls = Call.__table__
    held = dict(session.execute(select(calls.c.call_sid, calls.c.outcome)
                                .where(calls.c.call_sid.in_(set(call_sids)))).all())
    return [held.get(sid) for sid in call_sids]


def _statement_for(dialect: str, record: Record) -> tuple[Any, dict[str, Any]]:
    op = record["op"]
    if op == "start":
        return _start_statement(dialect), _start_params(record)
    if op == "end":
        return _end_statement(dialect, bool(record.get("tags"))), _end_params(record)
    raise ValueError(f"unknown call log record op {op!r}")


def _execute(session: Session, statement: Any, params: list[dict[str, Any]]) -> None:
    if params:
        session.execute(statement, params[0] if len(params) == 1 else params)


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _dialect(session: Session) -> str:
    name = session.get_bind().dialect.name
    if name not in _INSERTS:
        raise NotImplementedError(f"the call log supports SQLite and PostgreSQL, not {name}")
    return name


def _insert(session: Session, table: Any) -> Any:
    return _INSERTS[_dialect(session)](table)


_DETAILS = ("account_sid", "from_number", "to_number", "direction", "flow", "flow_version",
            "started_at")


def _start_params(r: Record) -> dict[str, Any]:
    return {
        "call_sid": _clip(r["call_sid"], Call.call_sid),
        "account_sid": _clip(r["account_sid"], Call.account_sid),
        "from_number": _clip(r["from_number"], Call.from_number),
        "to_number": _clip(r["to_number"], Call.to_number),
        "direction": _clip(r["direction"], Call.direction), "flow": _clip(r["flow"], Call.flow),
        "flow_version": _clip(r["version"], Call.flow_version), "started_at": _dt(r["at"]),
        "status": "in-progress", "tags": {}}


@functools.cache
def _start_statement(dialect: str) -> Any:
    """Built once per dialect (building it per record was most of the writer's time)."""
    calls = Call.__table__
    stmt = _INSERTS[dialect](calls)
    # Already started: change nothing. Known only from its end (no caller yet): fill in
    # the details, but keep the status the end recorded.
    start_seen = calls.c.from_number.is_not(None)
    set_ = {name: case((start_seen, calls.c[name]), else_=stmt.excluded[name])
            for name in _DETAILS}
    # A first webhook handled after the call's end (it was slow, the status callback was
    # not) must not date the start after the end: the start estimated from the end stays.
    set_["started_at"] = case((start_seen, calls.c.started_at),
                              (calls.c.ended_at < stmt.excluded.started_at, calls.c.started_at),
                              else_=stmt.excluded.started_at)
    return stmt.on_conflict_do_update(index_elements=["call_sid"], set_=set_)


def _event_rows(r: Record) -> list[dict[str, Any]]:
    call_sid = _clip(r["call_sid"], CallEvent.call_sid)
    return [{"event_id": ev["event_id"], "call_sid": call_sid, "at": _dt(ev["at"]),
             "node": _clip(ev.get("node"), CallEvent.node),
             "kind": _clip(ev["kind"], CallEvent.kind), "data": ev.get("data") or {}}
            for ev in r["events"]]


def _insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        # The Core table, not the ORM class: a plain executemany, no ORM bookkeeping per row.
        session.execute(_insert(session, CallEvent.__table__).on_conflict_do_nothing(
            index_elements=["event_id"]), rows)
        safe = {row["call_sid"] for row in rows if row["kind"] == SAFE_PATH}
        if safe:  # rare: only calls that met the safe path; their end may be in already
            calls = Call.__table__
            session.execute(update(calls).where(
                calls.c.call_sid.in_(safe), calls.c.status == "completed",
                calls.c.outcome.in_(GUESSED_OUTCOMES), _ended_on_safe_path(calls.c.call_sid),
            ).values(outcome="transferred"))


def _ended_on_safe_path(call_sid: Any) -> Any:
    """SQL: the call met the safe path (to a person) and no turn of its flow came after."""
    events = CallEvent.__table__
    safe, later = events.alias("safe"), events.alias("later")
    return exists().where(
        safe.c.call_sid == call_sid, safe.c.kind == SAFE_PATH,
        ~exists().where(later.c.call_sid == call_sid, later.c.at > safe.c.at,
                        later.c.kind.not_in(SIDE_KINDS)).correlate_except(later),
    ).correlate_except(safe)


def _end_params(r: Record) -> dict[str, Any]:
    at, duration = _dt(r["at"]), r.get("duration")
    return {
        "call_sid": _clip(r["call_sid"], Call.call_sid), "status": _clip(r["status"], Call.status),
        "outcome": _clip(r.get("outcome"), Call.outcome), "duration": duration,
        "ended_at": at,
        # Unknown call: the best guess at its start is its end minus its length.
        "started_at": at - timedelta(seconds=duration or 0), "tags": r.get("tags") or {},
        "queue": _clip(r.get("queue"), Call.queue)}


@functools.cache
def _end_statement(dialect: str, with_tags: bool) -> Any:
    calls = Call.__table__
    stmt = _INSERTS[dialect](calls)
    new = stmt.excluded
    # A later, less informed status callback must not erase what is known.
    outcome = func.coalesce(new.outcome, calls.c.outcome)
    set_: dict[str, Any] = {
        "status": new.status, "ended_at": new.ended_at,
        # CASE in this order so the events are only looked at for a guessed outcome.
        "outcome": case((and_(new.status == "completed", outcome.in_(GUESSED_OUTCOMES)),
                         # By name: an INSERT does not correlate a subquery to its table.
                         case((_ended_on_safe_path(literal_column("calls.call_sid")),
                               "transferred"),
                              else_=outcome)), else_=outcome),
        "duration": func.coalesce(new.duration, calls.c.duration),
        "queue": func.coalesce(new.queue, calls.c.queue)}
    if with_tags:
        set_["tags"] = new.tags
    return stmt.on_conflict_do_update(index_elements=["call_sid"], set_=set_)


# -- values --------------------------------------------------------------------------------


def aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def event_records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Queued timeline events ({at, node, kind, data} in): ids fixed now, before the first try.
    A webhook's events share one timestamp, so it is formatted once."""
    stamps: dict[int, str] = {}
    out = []
    for ev, event_id in zip(events, random_ids(len(events)), strict=True):
        at = ev.get("at")
        stamp = stamps.get(id(at)) if at is not None else None
        if stamp is None:
            stamp = iso(at)
            if at is not None:
                stamps[id(at)] = stamp
        out.append({"event_id": event_id, "at": stamp, "node": ev.get("node"),
                    "kind": ev.get("kind") or "event", "data": json_dict(ev.get("data"))})
    return out


def random_ids(n: int) -> list[str]:
    """`n` ids in uuid4().hex's format (version and variant bits set), from one read of the
    OS's randomness: uuid4() reads it and builds a UUID object once per id."""
    raw = bytearray(os.urandom(16 * n))
    for i in range(0, 16 * n, 16):
        raw[i + 6] = raw[i + 6] & 0x0F | 0x40
        raw[i + 8] = raw[i + 8] & 0x3F | 0x80
    text = raw.hex()
    return [text[i:i + 32] for i in range(0, 32 * n, 32)]


def iso(value: Any) -> str:
    """A UTC ISO timestamp; naive datetimes are taken to be UTC, a missing one is now."""
    if value is None:
        value = datetime.now(UTC)
    elif isinstance(value, str):
        value = datetime.fromisoformat(value)
    return aware(value).isoformat()


def _dt(text: str) -> datetime:
    return aware(datetime.fromisoformat(text))


def json_dict(value: Any) -> dict[str, Any]:
    """A JSON-safe copy, so a direct write and a replay from Redis store the same thing."""
    if value is None:
        return {}
    if _plain(value):
        return value  # the common case (engine events): already what JSON would give back
    plain = json.loads(json.dumps(value, default=str))
    return plain if isinstance(plain, dict) else {"value": plain}


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """A dict of str keys to scalars or lists of scalars: JSON round-trips it unchanged."""
    return type(value) is dict and all(
        type(k) is str and (type(v) in _SCALARS or type(v) is list
                            and all(type(x) in _SCALARS for x in v))
        for k, v in value.items())


def _clip(value: str | None, column: Any) -> str | None:
    """Cut text to its column's length, without NULs: PostgreSQL would reject the whole
    record otherwise (and a forged From or AccountSid would lose the call's row)."""
    if value is None:
        return None
    text, length = str(value), _length(column)
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text[:length] if length and len(text) > length else text


@functools.cache
def _length(column: Any) -> int | None:
    return column.type.length
