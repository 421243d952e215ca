"""When the server texts a caller: a wait estimate while they queue, a survey after a call.

Both are decided here from the live state and the pure policy (sms.policy), then queued for
the worker (sms_outbox); nothing here waits on Twilio. A text the database cannot take now
is not sent, and the call log says so: the caller's turn goes on without it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from flows.events import WaitEstimate
from flows.session import Session
from sms.errors import SmsError
from sms.numbers import normalise
from sms.policy import should_send_wait_update, survey_due
from sms.templates import DEFAULT_TEMPLATES, render_sms

log = logging.getLogger("ivr_server.sms")


def templates(s: Any, session: Session | None) -> dict[str, str]:
    """The defaults, then [sms.templates] from config, then the caller's flow's own."""
    own: dict[str, str] = {}
    if session is not None:
        try:
            own = s.registry.version(session.flow, session.version).model.sms_templates
        except Exception:  # noqa: BLE001 - a flow that cannot load keeps the defaults
            own = {}
    return {**DEFAULT_TEMPLATES, **s.config.sms.templates, **own}


def wait_text(s: Any, session: Session, position: int, estimate: WaitEstimate | None) -> None:
    """Text the caller their place and wait: once when the wait is long enough to matter,
    then only when it moved enough, at most `wait_max_messages` per call."""
    config = s.config.sms
    if not s.outbox.configured or estimate is None or session.queue.get("leaving"):
        return
    sent: list[float] = list(session.queue.get("sms", []))
    if not should_send_wait_update(sent, estimate.seconds, len(sent),
                                   threshold=config.wait_threshold,
                                   min_change=config.wait_min_change,
                                   max_messages=config.wait_max_messages, in_queue=True):
        return
    kind = "wait_update" if sent else "wait_estimate"
    try:
        body = render_sms(kind, {"company": config.company, "position": position,
                                 "wait": estimate.phrase}, templates=templates(s, session))
    except SmsError as exc:
        _note(s, session, "sms_error", {"error": str(exc)})
        return
    try:
        queued = s.outbox.send(kind=kind, to=session.caller, body=body,
                               call_sid=session.call_sid)
    except SQLAlchemyError as exc:
        _not_stored(s, session, kind, exc)
        return
    if queued:
        session.queue["sms"] = [*sent, estimate.seconds]
        _note(s, session, "sms_queued", {"kind": kind, "body": body})


def survey_text(s: Any, session: Session, duration: int | None, now: dt.datetime) -> None:
    """One survey after a completed call, unless the number was surveyed in the last
    `survey_every_days` (however it is formatted, whichever process asks), opted out, or the
    call was too short to judge."""
    try:
        _survey(s, session, duration, now)
    except SQLAlchemyError as exc:
        _not_stored(s, session, "survey_question", exc)


def _not_stored(s: Any, session: Session, kind: str, exc: SQLAlchemyError) -> None:
    cause = getattr(exc, "orig", None) or exc  # e.g. QueryCanceled: the statement timed out
    error = f"not sent, database unavailable: {type(cause).__name__}"
    log.error("sms %s for call %s %s", kind, session.call_sid, error)
    _note(s, session, "sms_error", {"kind": kind, "error": error})


def _note(s: Any, session: Session, kind: str, data: dict[str, Any],
          at: dt.datetime | None = None, node: str | None = "") -> None:
    """One event in the call's log; `node` "" is the caller's current node."""
    s.calllog.add_events(session.call_sid, [{"at": at or s.clock(),
                                             "node": session.node if node == "" else node,
                                             "kind": kind, "data": data}])


def _survey(s: Any, session: Session, duration: int | None, now: dt.datetime) -> None:
    config = s.config.sms
    if not (config.surveys and s.outbox.configured) or session.outcome == "callback":
        return  # a call that ends with a call back pending is judged after the call back
    if duration is None or duration < config.survey_min_call_seconds:
        return  # too short to judge (as survey_due says): no need to ask the database
    number = normalise(session.caller, config.default_region)
    if number is None:
        return
    last_surveyed, opted_out = s.sms_store.survey_state(number)
    if not survey_due(last_surveyed, now, duration, every_days=config.survey_every_days,
                      min_call_seconds=config.survey_min_call_seconds, opted_out=opted_out):
        return
    try:
        body = render_sms("survey_question", {"company": config.company},
                          templates=templates(s, session))
    except SmsError as exc:
        _note(s, session, "sms_error", {"error": str(exc)}, at=now, node=None)
        return
    gate = f"{s.config.redis.key_prefix}sms:surveyed:{number}"
    if not s.redis.set(gate, session.call_sid, nx=True, ex=config.survey_every_days * 86400):
        return  # another process is surveying this number for another call right now
    if not s.sms_store.start_survey(number, session.call_sid, now):
        return
    s.outbox.send(kind="survey_question", to=number, body=body, call_sid=session.call_sid,
                  opt_out_checked=True)
