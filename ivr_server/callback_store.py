"""Callback requests in SQL: the durable truth that Redis and RQ only schedule.

Every change of state is a compare-and-set (`UPDATE ... WHERE id = ? AND state IN (...)`)
in the same transaction as its event in the original call's timeline, so two workers, a
job that runs twice, or a webhook racing a job can never both win one step, and no step
happens without its event. "One active request per number and queue" is a unique column
that is NULL once the request is final.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callbacks.errors import InvalidTransition
from callbacks.states import ACTIVE, FINAL, State, check_transition

from .models import CallbackRequest, CallEvent


@dataclass(frozen=True)
class Booked:
    """The request a booking ended up as: new, or the active one it merged into."""

    request: CallbackRequest
    merged: bool


@dataclass(frozen=True)
class FirstSlot:
    """When a new request is first due, decided before it is written: it is then booked
    and scheduled in one transaction (one wait for the disk, not two, in the webhook)."""

    due: dt.datetime
    predicted_at: dt.datetime
    data: dict[str, Any]  # its `callback_scheduled` event's details


def active_key(number: str, queue: str) -> str:
    return f"{number}|{queue}"


class CallbackStore:
    def __init__(self, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory

    # -- reading ---------------------------------------------------------------------------

    def get(self, callback_id: int) -> CallbackRequest | None:
        with self.session_factory() as db:
            return db.get(CallbackRequest, callback_id)

    def active(self, number: str, queue: str | None = None) -> list[CallbackRequest]:
        query = select(CallbackRequest).where(CallbackRequest.number == number,
                                              CallbackRequest.state.in_(list(ACTIVE)))
        if queue is not None:
            query = query.where(CallbackRequest.queue == queue)
        with self.session_factory() as db:
            return list(db.scalars(query.order_by(CallbackRequest.id)))

    def in_states(self, states: Iterable[str], queue: str | None = None,
                  limit: int = 10_000) -> list[CallbackRequest]:
        query = select(CallbackRequest).where(CallbackRequest.state.in_(list(states)))
        if queue is not None:
            query = query.where(CallbackRequest.queue == queue)
        with self.session_factory() as db:
            return list(db.scalars(query.order_by(CallbackRequest.id).limit(limit)))

    def for_call(self, call_sid: str) -> list[CallbackRequest]:
        with self.session_factory() as db:
            return list(db.scalars(select(CallbackRequest).where(
                CallbackRequest.call_sid == call_sid).order_by(CallbackRequest.id)))

    # -- booking ---------------------------------------------------------------------------

    def book(self, *, number: str, queue: str, reason: str, at: dt.datetime,
             call_sid: str | None = None, flow: str | None = None,
             caller_id: str | None = None, context: dict[str, Any] | None = None,
             place_at: dt.datetime | None = None, first: FirstSlot | None = None) -> Booked:
        """A new request, or the caller's active one for this queue with this merged in
        (the earlier place in line is kept; context is added to). With `first`, a new
        request is written already scheduled (both events, as if moved at once)."""
        key = active_key(number, queue)
        slot: dict[str, Any] = {"state": State.REQUESTED, "seq": 0}
        if first is not None:
            check_transition(State.REQUESTED, State.SCHEDULED)
            slot = {"state": State.SCHEDULED, "seq": 1, "due_at": first.due,
                    "predicted_at": first.predicted_at}
        for _ in range(3):  # a concurrent booking or completion can race the insert
            try:
                with self.session_factory.begin() as db:
                    row = CallbackRequest(
                        number=number, queue=queue, active_key=key, reason=reason,
                        call_sid=call_sid, flow=flow, caller_id=caller_id,
                        context=dict(context or {}), place_at=place_at, attempts=0,
                        created_at=at, updated_at=at, **slot)
                    db.add(row)
                    db.flush()
                    _event(db, row, at, "callback_requested",
                           {"reason": reason, "queue": queue, "number": _masked(number)})
                    if first is not None:
                        _event(db, row, at, "callback_scheduled",
                               {"state": str(State.SCHEDULED), "due": first.due.isoformat(),
                                **first.data})
                    return Booked(row, merged=False)
            except IntegrityError:
                merged = self._merge(key, reason, at, call_sid, context, place_at)
                if merged is not None:
                    return Booked(merged, merged=True)
        raise RuntimeError(f"could not book or merge a callback for {key}")

    def _merge(self, key: str, reason: str, at: dt.datetime, call_sid: str | None,
               context: dict[str, Any] | None, place_at: dt.datetime | None
               ) -> CallbackRequest | None:
        with self.session_factory.begin() as db:
            row = db.scalars(select(CallbackRequest).where(CallbackRequest.active_key == key)
                             .with_for_update()).first()
            if row is None:
                return None  # it just became final: book anew
            row.context = {**(row.context or {}), **(context or {})}
            if place_at is not None and (row.place_at is None or place_at < row.place_at):
                row.place_at = place_at
            row.updated_at = at
            data = {"reason": reason, "into": row.id, "from_call": call_sid}
            _event(db, row, at, "callback_merged", data)
            if call_sid and call_sid != row.call_sid:
                db.add(CallEvent(event_id=str(uuid.uuid4()), call_sid=call_sid, at=at,
                                 node=None, kind="callback_merged", data=data))
            db.flush()
            return row

    # -- state changes ---------------------------------------------------------------------

    def move(self, callback_id: int, new: State, at: dt.datetime, *, kind: str,
             data: dict[str, Any] | None = None, expect: Iterable[State] | None = None,
             token: str | None = None, **fields: Any) -> CallbackRequest | None:
        """Change state if it is still one of `expect` (default: any state allowed to move
        to `new`) and, with `token`, still on that dial attempt. The updated row, or None
        when another step got there first."""
        expect = list(expect) if expect is not None else \
            [s for s in State if _allowed(s, new)]
        for old in expect:
            check_transition(old, new)
        values: dict[str, Any] = {"state": new, "updated_at": at, **fields}
        if new in FINAL:
            values["active_key"] = None
        where = [CallbackRequest.id == callback_id, CallbackRequest.state.in_(expect)]
        if token is not None:
            where.append(CallbackRequest.dial_token == token)
        with self.session_factory.begin() as db:
            row = _updated(db, update(CallbackRequest).where(*where).values(**values))
            if row is None:
                return None
            if kind:  # "" for a quiet re-check that changes nothing a supervisor needs
                _event(db, row, at, kind, {"state": str(new), **(data or {})})
            return row

    def claim_attempt(self, callback_id: int, seq: int, at: dt.datetime
                      ) -> CallbackRequest | None:
        """scheduled -> dialing for the job of schedule `seq`: exactly one caller wins."""
        token = uuid.uuid4().hex
        with self.session_factory.begin() as db:
            row = _updated(db, update(CallbackRequest).where(
                CallbackRequest.id == callback_id, CallbackRequest.state == State.SCHEDULED,
                CallbackRequest.seq == seq).values(
                state=State.DIALING, attempts=CallbackRequest.attempts + 1, dial_token=token,
                dial_sid=None, dial_started_at=at, updated_at=at))
            if row is None:
                return None
            _event(db, row, at, "callback_dialing", {"attempt": row.attempts,
                                                      "token": token})
            return row

    def schedule(self, callback_id: int, due: dt.datetime, at: dt.datetime, *,
                 kind: str = "callback_scheduled", data: dict[str, Any] | None = None,
                 expect: Iterable[State] = (State.REQUESTED, State.SCHEDULED, State.DIALING,
                                            State.CONNECTED),
                 token: str | None = None, **fields: Any) -> CallbackRequest | None:
        """(Re)schedule for `due`: a new `seq`, so any job scheduled before is void."""
        return self.move(callback_id, State.SCHEDULED, at, kind=kind,
                         data={"due": due.isoformat(), **(data or {})}, expect=expect,
                         token=token, due_at=due, seq=CallbackRequest.seq + 1, **fields)

    def set_dial_sid(self, callback_id: int, token: str, dial_sid: str, at: dt.datetime,
                     *, kind: str = "", data: dict[str, Any] | None = None) -> bool:
        """Name the attempt's call (once); with `kind`, its event goes in the same step."""
        with self.session_factory.begin() as db:
            done = db.execute(update(CallbackRequest).where(
                CallbackRequest.id == callback_id, CallbackRequest.dial_token == token,
                CallbackRequest.dial_sid.is_(None)).values(dial_sid=dial_sid, updated_at=at)
                .execution_options(synchronize_session=False))
            named = done.rowcount == 1  # type: ignore[attr-defined]
            if kind:
                row = db.get(CallbackRequest, callback_id)
                if row is not None:
                    _event(db, row, at, kind, data or {})
            return named

    def touch(self, callback_id: int, at: dt.datetime) -> None:
        """Looked at, nothing changed: the reconciler waits before asking again."""
        with self.session_factory.begin() as db:
            db.execute(update(CallbackRequest).where(CallbackRequest.id == callback_id)
                       .values(updated_at=at).execution_options(synchronize_session=False))

    def note(self, callback_id: int, at: dt.datetime, kind: str,
             data: dict[str, Any]) -> None:
        """An event in the original call's timeline that changes no state."""
        with self.session_factory.begin() as db:
            row = db.get(CallbackRequest, callback_id)
            if row is not None:
                _event(db, row, at, kind, data)


def _updated(db: Session, statement: Any) -> CallbackRequest | None:
    """The row as the compare-and-set UPDATE left it (RETURNING: no second query), or None
    when it matched nothing (another step got there first)."""
    return db.scalars(statement.returning(CallbackRequest),
                      execution_options={"synchronize_session": False}).first()


def _allowed(old: State, new: State) -> bool:
    try:
        check_transition(old, new)
    except InvalidTransition:
        return False
    return True


def _event(db: Session, row: CallbackRequest, at: dt.datetime, kind: str,
           data: dict[str, Any]) -> None:
    if row.call_sid:
        db.add(CallEvent(event_id=str(uuid.uuid4()), call_sid=row.call_sid, at=at, node=None,
                         kind=kind, data={"callback": row.id, **data}))


def _masked(number: str) -> str:
    return number if len(number) <= 4 else "*" * (len(number) - 4) + number[-4:]
