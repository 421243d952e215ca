"""Callback webhooks: the key pressed on hold, booking, and the calls we place back.

- `/voice/queue/offer`: the call-back key pressed during the hold music (a `<Gather>` in
  the wait URL's TwiML). The engine answers `<Leave/>`, the caller's Enqueue action routes
  them to the flow's callback node, which books through `book_for_call`.
- `/voice/callback/answer?cb=ID&token=T`: Twilio fetches the TwiML of a callback we placed
  once someone (or a machine) answers; the flow's callback branch runs.
- `/voice/callback/status?cb=ID&token=T`: how the attempt went (busy, no answer, ...),
  which completes the request or retries it inside the calling window.
The token names one dial attempt, so a late or replayed callback of an earlier attempt can
never move the request.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import request

from callbacks.states import State
from flows import actions as act
from flows.events import CallbackBooked, CallStarted, DigitsEntered, NoInput, Repeat
from flows.session import Session, new_session
from sms.errors import SmsError
from sms.templates import render_sms

from . import twiml
from .callback_jobs import MACHINE, attempt_ended
from .sms_triggers import templates
from .voice import (
    ENDED_STATUSES,
    KEYS,
    _advance,
    _call_sid,
    _safely,
    _session,
    _stale,
    bp,
    services,
    whole_number,
)
from .voice import _status as call_status

log = logging.getLogger("ivr_server.callback_calls")
NOT_NEEDED = "Sorry, this call is no longer needed. Goodbye."


@bp.post("/queue/offer")
def queue_offer():  # noqa: ANN201 - Flask view
    return _safely(_offer, on_error=twiml.empty)


@bp.post("/callback/answer")
def callback_answer():  # noqa: ANN201
    return _safely(_answer)


@bp.post("/callback/status")
def callback_status():  # noqa: ANN201
    return _safely(_status, on_error=twiml.empty)


def _offer() -> str:
    s = services()
    session = _session()
    if _stale(session) or not session.queue.get("name"):
        return twiml.empty()  # the wait URL takes over again
    digits = KEYS.sub("", request.form.get("Digits", ""))[:4]
    return _advance(session, DigitsEntered(digits) if digits else NoInput(), s.clock())


def book_for_call(s: Any, session: Session, action: act.BookCallback,
                  now: dt.datetime) -> CallbackBooked:
    """Book what a callback node asked for; the caller keeps their place in line."""
    same_queue = session.queue.get("name") == action.queue
    place_ts = session.queue.get("joined_at") if same_queue else None
    place_ts = float(place_ts) if isinstance(place_ts, int | float) else now.timestamp()
    estimate = s.estimates.remaining_from_place(action.queue, place_ts, now.timestamp())
    booking = s.callbacks.callbacks.book(
        number=action.number, queue=action.queue, reason=action.reason,
        call_sid=session.call_sid, flow=session.flow, caller_id=session.called,
        context=action.context, place_at=dt.datetime.fromtimestamp(place_ts, dt.UTC),
        wait_seconds=estimate.seconds if estimate else None)
    if booking.ok and not booking.merged:
        _confirm_by_text(s, session, action.number, booking.when)
    return CallbackBooked(ok=booking.ok, when=booking.when, merged=booking.merged,
                          error=booking.error)


def booking_for(session: Session, reason: str) -> act.BookCallback:
    """A callback for the caller's own number in the queue they were in (not via a node)."""
    return act.BookCallback(node=session.node or "", queue=session.queue.get("name", ""),
                            number=session.caller, reason=reason,
                            context=dict(session.queue.get("context") or {}))


def book_on_abandon(s: Any, session: Session, waited: int, now: dt.datetime) -> None:
    """A caller who hung up after waiting long enough is called back, if the flow says so.
    A withheld or uncallable number is silently not (the booking says why in the log)."""
    queue = session.queue.get("name")
    try:
        node = s.registry.version(session.flow, session.version).node(session.node or "")
    except Exception:  # noqa: BLE001 - an unloadable flow books nothing
        return
    threshold = getattr(node, "abandon_callback", None)
    if not queue or threshold is None or waited < threshold:
        return
    booked = book_for_call(s, session, booking_for(session, "abandoned"), now)
    kind = "callback_on_abandon" if booked.ok else "callback_not_booked"
    s.calllog.add_events(session.call_sid, [{"at": now, "node": session.node, "kind": kind,
                                             "data": {"waited": waited, "when": booked.when,
                                                      "error": booked.error}}])


def served(s: Any, queue: str, call_sid: str, now: dt.datetime,
           number: str | None = None) -> None:
    """A caller reached an agent: a callback they asked for earlier is no longer needed,
    and the line moved, so a callback holding its place may be due. Both are the worker's,
    in batches (callback_served), so the webhook asks SQL nothing."""
    if number is None:
        session = s.sessions.load(call_sid)
        number = session.caller if session is not None else ""
    _note(s, queue, number or "", call_sid, now)


def line_moved(s: Any, queue: str) -> None:
    """Let the worker dial a callback whose virtual place has reached the head early."""
    _note(s, queue, "", "", s.clock())


def _note(s: Any, queue: str, number: str, call_sid: str, now: dt.datetime) -> None:
    try:
        s.callbacks.callbacks.jobs.served.note(queue, number, call_sid, now)
    except Exception:  # noqa: BLE001 - a missed nudge only means the predicted time stands
        log.warning("could not note the line moving in queue %s", queue, exc_info=True)


def _confirm_by_text(s: Any, session: Session, number: str, when: str) -> None:
    if not s.outbox.configured:
        return
    try:
        body = render_sms("callback_confirmed", {"company": s.config.sms.company,
                                                 "when": when},
                          templates=templates(s, session))
    except SmsError as exc:
        s.calllog.add_events(session.call_sid, [{"at": s.clock(), "node": session.node,
                                                 "kind": "sms_error",
                                                 "data": {"error": str(exc)}}])
        return
    s.outbox.send(kind="callback_confirmed", to=number, body=body, call_sid=session.call_sid)


def _attempt() -> tuple[Any, Any, str]:
    s = services()
    raw = request.args.get("cb", "")
    token = request.args.get("token", "")[:32]
    cb = whole_number(raw)
    row = s.callbacks.store.get(cb) if cb is not None else None
    return s, row, token


def _answer() -> str:
    s, row, token = _attempt()
    sid = _call_sid()
    now = s.clock()
    existing = s.sessions.load(sid)
    if existing is not None and not existing.done:
        return _advance(existing, Repeat(), now)  # Twilio retried the answer request
    if row is None or row.dial_token != token or row.state != State.DIALING:
        log.warning("callback answer for %s attempt %s that is no longer dialing", row, token)
        return twiml.say_then_hangup(NOT_NEEDED)
    if row.dial_sid is None:
        s.callbacks.store.set_dial_sid(row.id, token, sid, now)
    answered_by = request.form.get("AnsweredBy", "")[:32]
    machine = answered_by in MACHINE
    if machine:
        s.callbacks.store.note(row.id, now, "callback_machine",
                               {"attempt": row.attempts, "answered_by": answered_by})
    else:
        s.callbacks.store.move(row.id, State.CONNECTED, now, kind="callback_answered",
                               token=token, expect=[State.DIALING],
                               data={"attempt": row.attempts, "sid": sid,
                                     "answered_by": answered_by or None})
    flow = s.registry.current(row.flow or s.config.flows.default)
    session = new_session(call_sid=sid, flow=flow.name, version=flow.version,
                          caller=row.number, called=request.form.get("From", "")[:64], now=now)
    pipe = s.redis.pipeline(transaction=False)
    s.calllog.call_started(call_sid=sid, account_sid=request.form.get("AccountSid", "")[:64],
                           from_number=row.number, to_number=session.called,
                           direction="outbound-api", flow=flow.name, version=flow.version,
                           at=now, pipe=pipe)
    info = {"id": row.id, "queue": row.queue, "reason": row.reason, "attempt": row.attempts,
            "original_call": row.call_sid, "context": dict(row.context or {}),
            "requested_at": row.created_at.isoformat()}
    event = CallStarted(previous_calls=None, settings=dict(s.config.flows.settings),
                        callback=info, machine=machine)
    return _advance(session, event, now, flow, pipe)


def _status() -> str:
    s, sid = services(), _call_sid()
    now = s.clock()
    status = request.form.get("CallStatus", "")[:20]
    if status not in ENDED_STATUSES:  # "initiated": name the attempt if its worker could not
        cb = whole_number(request.args.get("cb", ""))
        if cb is not None:  # one conditional UPDATE, nothing read
            s.callbacks.store.set_dial_sid(cb, request.args.get("token", "")[:32], sid, now)
        return twiml.empty()
    s, row, token = _attempt()
    if s.sessions.load(sid) is not None:
        call_status()  # the call's own end: its log, outcome and session
    if row is None or row.dial_token != token:
        return twiml.empty()  # an earlier attempt's late news
    if row.dial_sid is None:  # named once
        s.callbacks.store.set_dial_sid(row.id, token, sid, now)
    duration = request.form.get("CallDuration", "")
    attempt_ended(s.callbacks, row, token, status, request.form.get("AnsweredBy", ""),
                  now, whole_number(duration))
    return twiml.empty()
