"""SMS webhooks: replies from callers (`POST /sms/incoming`) and delivery status
(`POST /sms/status`), signature-checked like the voice ones.

Replies: STOP and the other opt-out words opt the number out of everything (kept for good,
confirmed once), START opts back in, HELP explains; CALLBACK asks for a call back and takes
the caller out of the queue at the next wait turn; a 1-5 answers the pending survey;
anything else gets a short help reply at most once a day. A reply is TwiML, which Twilio
sends; every message either way is stored with its call for the call's timeline.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import redis
from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from sms.keywords import classify
from sms.numbers import normalise
from sms.templates import render_sms

from . import metrics
from .callback_calls import book_for_call, booking_for
from .calllog import transient_db_error
from .signature import is_signed
from .sms_triggers import templates
from .voice import whole_number

log = logging.getLogger("ivr_server.sms_hooks")
bp = Blueprint("sms", __name__, url_prefix="/sms")
SURVEY_OPEN_DAYS = 7
HELP_AGAIN_SECONDS = 24 * 3600
FIELDS = ("MessageSid", "MessageStatus", "ErrorCode", "From", "To", "Body", "AccountSid")
FIELD_LIMIT = 1600  # a long text's Body; every other field is far shorter


def services() -> Any:
    return current_app.extensions["ivr"]


@bp.before_request
def require_signature() -> Response | None:
    s = services()
    if s.config.twilio.dev_skip_signatures or is_signed(request, s.validator,
                                                        s.config.server.public_base_url):
        return None
    log.warning("refused %s with a missing or wrong X-Twilio-Signature", request.path)
    return Response("Forbidden: missing or invalid X-Twilio-Signature\n", 403,
                    mimetype="text/plain")


@bp.post("/status")
def status() -> Response:
    s = services()
    form = _form()
    _live_or_kept(s, "status", form, s.clock())
    return Response("", 204)


@bp.post("/incoming")
def incoming() -> Response:
    s = services()
    return _twiml(_live_or_kept(s, "incoming", _form(), s.clock()))


def _live_or_kept(s: Any, kind: str, form: dict[str, str], now: dt.datetime) -> str | None:
    """Handle a text webhook now, or keep it for later (sms_deferred) when that fails or
    others wait before it: Twilio does not send it again, and a 500 helps nobody. The
    reply to send in TwiML, if any (a kept one's reply goes out as a text later)."""
    try:
        if not s.sms_deferred.waiting():
            return _handle(s, kind, form, now, replayed=False)
    except Exception as exc:  # noqa: BLE001 - kept, never lost
        log.error("sms %s %s not handled now (%s: %s); kept for later", kind,
                  form.get("MessageSid", "-"), type(exc).__name__, exc)
    s.sms_deferred.keep(kind, form, now)
    return None


def replay(s: Any) -> int:
    """Handle the text webhooks kept while the database or Redis was away (background)."""
    return s.sms_deferred.replay(
        lambda kind, form, at: _handle(s, kind, form, at, replayed=True), _outage)


def _outage(exc: Exception) -> bool:
    """A failure that waiting cures (the database or Redis away or slow), not one that
    would fail the same way every time."""
    return isinstance(exc, redis.RedisError | OSError) or transient_db_error(exc)


def _handle(s: Any, kind: str, form: dict[str, str], now: dt.datetime,
            replayed: bool) -> str | None:
    if kind == "status":
        _status(s, form, now)
        return None
    return _incoming(s, form, now, replayed)


def _status(s: Any, form: dict[str, str], now: dt.datetime) -> None:
    sid, state = _text(form, "MessageSid", 64), _text(form, "MessageStatus", 64)
    if sid and state:
        known = s.sms_store.status_by_sid(sid, state[:20], now,
                                          whole_number(form.get("ErrorCode", "")))
        if known and state in ("failed", "undelivered"):
            metrics.sms("undelivered")


def _incoming(s: Any, form: dict[str, str], now: dt.datetime, replayed: bool) -> str | None:
    """A reply from a caller; the reply's text for TwiML, or None. `replayed`: kept from
    an outage, so it may be stored already, and its reply is sent as a text."""
    number = normalise(form.get("From", ""), s.config.sms.default_region)
    body = _text(form, "Body", 1600)
    if number is None:
        return None
    message_sid = _text(form, "MessageSid", 64) or None
    last = s.sms_store.last_outbound(number, before=now if replayed else None)
    call_sid = last.call_sid if last is not None else None
    if not (replayed and message_sid and s.sms_store.inbound_stored(message_sid)):
        s.sms_store.add_message(direction="inbound", kind="reply", to_number=number,
                                from_number=number, body=body, status="received", at=now,
                                call_sid=call_sid, message_sid=message_sid)
        metrics.sms("received")
    survey_open = s.sms_store.open_survey(number, now - dt.timedelta(days=SURVEY_OPEN_DAYS))
    offered = last is not None and last.kind in ("wait_estimate", "wait_update")
    latest = "survey" if last is not None and last.kind == "survey_question" else \
        "callback" if offered else None
    said = classify(body, offered_callback=offered, survey_pending=survey_open is not None,
                    latest=latest)
    reply = _act(s, said.kind, said.value, number, call_sid, now)
    if reply and call_sid:
        s.calllog.add_events(call_sid, [{"at": now, "node": None, "kind": "sms_reply",
                                         "data": {"kind": said.kind}}])
    if not reply:
        return None
    if replayed:
        _reply_later(s, reply, number, call_sid)
        return None
    return _record_reply(s, reply, number, call_sid, now)


def _act(s: Any, kind: str, value: Any, number: str, call_sid: str | None,
         now: dt.datetime) -> str | None:
    """What the reply does; the name of the template to answer with, if any."""
    if kind == "stop":
        changed = s.sms_store.set_opt_out(number, True, str(value), now)
        if changed:
            metrics.sms("opt_out")
        # CANCEL is an opt-out word on Twilio too; it also cancels a pending call back.
        cancelled = str(value).lower() == "cancel" and s.callbacks.callbacks.cancel(
            number, "texted CANCEL", call_sid=call_sid)
        if cancelled:
            return "callback_cancelled" if s.config.sms.keyword_replies else None
        return "opted_out" if changed and s.config.sms.keyword_replies else None
    if kind == "start":
        changed = s.sms_store.set_opt_out(number, False, str(value), now)
        return "opted_in" if changed and s.config.sms.keyword_replies else None
    if kind == "help":
        return "help" if s.config.sms.keyword_replies else None
    if kind == "callback":
        return "callback_requested" if _callback_by_text(s, call_sid, now) else \
            "unknown_reply"
    if kind == "survey":
        answered = s.sms_store.answer_survey(number, int(value), now)
        if answered:
            s.calllog.add_events(answered, [{"at": now, "node": None, "kind": "survey_answer",
                                             "data": {"score": int(value)}}])
        return "survey_thanks" if answered else None
    key = f"{s.config.redis.key_prefix}sms:helped:{number}"
    return "unknown_reply" if s.redis.set(key, 1, nx=True, ex=HELP_AGAIN_SECONDS) else None


def _callback_by_text(s: Any, call_sid: str | None, now: dt.datetime) -> bool:
    """A caller still on hold leaves the queue at their next wait turn for the flow's
    callback node (which books, keeping their place); one who has hung up is booked now."""
    session = s.sessions.load(call_sid) if call_sid else None
    if session is None or not session.queue.get("name"):
        return False
    s.calllog.add_events(session.call_sid, [{"at": now, "node": None,
                                             "kind": "callback_requested",
                                             "data": {"via": "sms"}}])
    if not session.done:
        session.queue["leaving"] = "callback"
        s.sessions.save(session)
        return True
    return book_for_call(s, session, booking_for(session, "sms"), now).ok


def _reply_text(s: Any, template: str, call_sid: str | None) -> str:
    """The reply, in the words of the flow the texter's call was on (its templates)."""
    session = s.sessions.load(call_sid) if call_sid else None
    return render_sms(template, {"company": s.config.sms.company},
                      templates=templates(s, session))


def _record_reply(s: Any, template: str, number: str, call_sid: str | None,
                  now: dt.datetime) -> str:
    text = _reply_text(s, template, call_sid)
    s.sms_store.add_message(direction="outbound", kind=template, to_number=number,
                            from_number=s.config.sms.from_number or "reply", body=text,
                            status="replied", at=now, call_sid=call_sid)
    return text


def _reply_later(s: Any, template: str, number: str, call_sid: str | None) -> None:
    """A kept webhook's reply, sent as a text now (its TwiML answer went out empty). Not
    the opt-out confirmation: Twilio confirms STOP itself, and the number is opted out."""
    if template == "opted_out":
        return
    s.outbox.send(kind=template, to=number, body=_reply_text(s, template, call_sid),
                  call_sid=call_sid)


def _form() -> dict[str, str]:
    """The fields the handlers read, cut to size: what is kept of a webhook for later."""
    return {k: request.form[k][:FIELD_LIMIT] for k in FIELDS if k in request.form}


def _text(form: dict[str, str], name: str, limit: int) -> str:
    """A form field as stored: cut to size, without NULs (PostgreSQL refuses them in text)."""
    return form.get(name, "").replace("\x00", "")[:limit]


def _twiml(text: str | None) -> Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return Response(str(response), 200, mimetype="text/xml")
