"""Twilio voice webhooks. Each turns a request into an engine event and the actions into TwiML.

Nothing here answers Twilio with a 500: any failure is logged with the CallSid and the
caller is sent down the safe path (an apology and a person, or a polite goodbye).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from flows import actions as act
from flows.engine import step
from flows.errors import FlowRuntimeError
from flows.events import CallStarted, DigitsEntered, Event, NoInput, Repeat, TransferEnded
from flows.loader import Flow
from flows.session import Session, new_session

from . import twiml
from .agent_brief import brief_agents
from .signature import is_signed, websocket_url
from .sms_triggers import survey_text

log = logging.getLogger("ivr_server.voice")
bp = Blueprint("voice", __name__, url_prefix="/voice")

SID = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{1,62}$")
KEYS = re.compile(r"[^0-9*#]")
STREAM_NAME = re.compile(r"[^A-Za-z0-9_.:-]")
MAX_LOOKUPS_PER_TURN = 10
DIAL_STATUSES = {"completed", "answered", "busy", "no-answer", "failed", "canceled"}
ENDED_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
ENDED_SESSION_TTL = 600


class BadWebhook(ValueError):
    """Parameters Twilio would never send (missing CallSid, garbage turn)."""


class UnknownCall(LookupError):
    """An action URL for a CallSid with no live session (expired, or never started here)."""


def services() -> Any:
    return current_app.extensions["ivr"]


@bp.before_request
def require_signature() -> Response | None:
    if signed_or_allowed():
        return None
    log.warning("refused %s with a missing or wrong X-Twilio-Signature (CallSid %s)",
                request.path, request.form.get("CallSid", "-")[:64])
    return Response("Forbidden: missing or invalid X-Twilio-Signature\n", 403,
                    mimetype="text/plain")


def signed_or_allowed() -> bool:
    s = services()
    if s.config.twilio.dev_skip_signatures:
        return True
    # Twilio signs a media stream's websocket handshake with its wss:// URL.
    websocket = request.path == bp.url_prefix + "/stream"
    return is_signed(request, s.validator, s.config.server.public_base_url, websocket=websocket)


# -- webhooks ------------------------------------------------------------------------------


@bp.post("/incoming")
def incoming() -> Response:
    return _safely(_incoming)


@bp.post("/input")
def gather_input() -> Response:
    return _safely(_input)


@bp.post("/dial")
def dial_result() -> Response:
    return _safely(_dial)


@bp.post("/status")
def status() -> Response:
    return _safely(_status, on_error=twiml.empty)


@bp.post("/whisper")
def whisper() -> Response:
    return _safely(_whisper, on_error=twiml.empty)


@bp.post("/fallback")
def fallback() -> Response:
    """For the number's 'primary handler fails' URL: the safe path, always."""
    log.error("Twilio used the fallback URL for call %s (ErrorCode %s)", _sid_or_dash(),
              request.form.get("ErrorCode", "-")[:20])
    return _xml(_safe_path())


def _incoming() -> str:
    s, form = services(), request.form
    sid = _call_sid()
    now = s.clock()
    existing = s.sessions.load(sid)
    if existing is not None and not existing.done:
        # Twilio retried the first request: carry on where the call is, don't start over.
        return _advance(existing, Repeat(), now)
    caller, called = form.get("From", "")[:64], form.get("To", "")[:64]
    flow = s.registry.current(s.config.flows.numbers.get(called, s.config.flows.default))
    session = new_session(call_sid=sid, flow=flow.name, version=flow.version, caller=caller,
                          called=called, now=now)
    previous = s.calllog.previous_calls(caller, now) if flow.reads_caller_history else None
    pipe = s.redis.pipeline(transaction=False)
    s.calllog.call_started(call_sid=sid, account_sid=form.get("AccountSid", "")[:64],
                           from_number=caller, to_number=called,
                           direction=form.get("Direction", "inbound")[:32], flow=flow.name,
                           version=flow.version, at=now, pipe=pipe)
    event = CallStarted(previous_calls=previous, settings=dict(s.config.flows.settings))
    return _advance(session, event, now, flow, pipe)


def _input() -> str:
    s = services()
    session = _session()
    stream = STREAM_NAME.sub("", request.args.get("stream", ""))[:80] or None
    if _stale(session):
        return _advance(session, Repeat(), s.clock(), stop_stream=stream)
    digits = KEYS.sub("", request.form.get("Digits", ""))[:40]  # Record sends "hangup" too
    recording = request.form.get("RecordingUrl", "")
    event: Event = DigitsEntered(digits) if digits else NoInput()
    if stream:  # path 2: the keypad and the voice race for this prompt
        event = s.streams.settle(session.call_sid, session.turn, event)
        if stream.endswith(twiml.HOLD_STREAM):  # heard on hold: the redirect took them out
            from .queue_calls import left_by_voice

            left_by_voice(session)
    elif recording and not digits and s.speech is not None:
        event = _hear(session, recording)
    return _advance(session, event, s.clock(), stop_stream=stream)


def listening(node: Any) -> tuple[dict[str, list[str]], bool]:
    """What a waiting node accepts by voice: a menu's synonyms, digits for a collect, or
    the words of a queue's call back offer."""
    offer = getattr(node, "offer_callback", None)
    if offer is not None and offer.words:
        return {offer.key: list(offer.words)}, False
    synonyms = {o.key: list(o.say) for o in getattr(node, "options", []) if o.say}
    return synonyms, getattr(node, "type", "") == "collect"


def _hear(session: Session, recording_url: str) -> Event:
    """Recognise a recorded answer against the waiting node's grammar (path 1)."""
    s = services()
    node = s.registry.version(session.flow, session.version).node(session.node or "")
    synonyms, digits = listening(node)
    if not synonyms and not digits:
        return NoInput()
    return s.speech.hear(recording_url, synonyms, digits=digits)


def _dial() -> str:
    session = _session()
    if _stale(session):
        return _advance(session, Repeat(), services().clock())
    status_ = request.form.get("DialCallStatus", "failed")
    if status_ not in ("completed", "answered") and request.form.get("CallStatus") == "completed":
        # The caller hung up while the agent's phone rang: nothing to say to anyone.
        s = services()
        session.done, session.outcome, session.node = True, "abandoned", None
        s.sessions.save(session)
        s.calllog.add_events(session.call_sid, [{"at": s.clock(), "node": request.args.get(
            "node"), "kind": "caller_hung_up", "data": {"dial_status": status_[:20]}}])
        return twiml.empty()
    duration = request.form.get("DialCallDuration", "")
    event = TransferEnded(status=status_ if status_ in DIAL_STATUSES else "failed",
                          duration=int(duration) if duration.isdigit() else None)
    return _advance(session, event, services().clock())


def _status() -> str:
    s, form = services(), request.form
    sid = _call_sid()
    now = s.clock()
    call_status = form.get("CallStatus", "")[:20]
    duration = form.get("CallDuration", "")
    session = s.sessions.load(sid)
    s.calllog.add_events(sid, [{"at": now, "node": session.node if session else None,
                                "kind": "status",
                                "data": {"status": call_status, "duration": duration[:10]}}])
    if call_status in ENDED_STATUSES:
        outcome = _outcome(session, call_status)
        s.calllog.call_ended(call_sid=sid, status=call_status, outcome=outcome,
                             duration=int(duration) if duration.isdigit() else None, at=now,
                             tags=session.tags if session else {},
                             queue=(session.queue.get("name") or None) if session else None)
        if session is not None:
            session.done, session.outcome = True, outcome
            s.sessions.save(session, ttl=ENDED_SESSION_TTL)
            if call_status == "completed":
                survey_text(s, session, int(duration) if duration.isdigit() else None, now)
            if session.queue.get("name"):  # in case the queue's own callback never comes
                s.queues.abandon(session.queue["name"], sid, now.timestamp())
                s.queues.hangup(session.queue["name"], sid, now.timestamp())
    return twiml.empty()


def _whisper() -> str:
    """What the agent hears before being connected: who is calling and what they already said."""
    parts = []
    for key, value in request.args.items():
        if key.startswith("c_") and value:
            label = key[2:].replace("_", " ")
            spoken = " ".join(value) if value.isdigit() else value
            parts.append(f"{label}: {spoken}.")
    return twiml.say_only(["Incoming call.", *parts] if parts else ["Incoming call."])


# -- the turn ------------------------------------------------------------------------------


def _advance(session: Session, event: Event, now: Any, flow: Flow | None = None,
             pipe: Any = None, stop_stream: str | None = None) -> str:
    """Run the engine, then save the session and queue the call's events in one round trip."""
    s = services()
    flow = flow or s.registry.version(session.flow, session.version)
    out: list[act.Action] = []
    for _ in range(MAX_LOOKUPS_PER_TURN):
        session, actions = step(flow, session, event, now)
        out.extend(actions)
        last = actions[-1] if actions else None
        if isinstance(last, act.HttpRequest):
            event = s.lookup(last)
        elif isinstance(last, act.BookCallback):
            from .callback_calls import book_for_call

            event = book_for_call(s, session, last, now)
        else:
            break
        now = s.clock()
    else:
        raise FlowRuntimeError(flow.name, session.node or "-", "too many lookups in one turn")
    pipe = pipe if pipe is not None else s.redis.pipeline(transaction=False)
    s.sessions.save(session, pipe=pipe)
    s.calllog.add_events(session.call_sid, [
        {"at": now, "node": a.node, "kind": a.kind, "data": a.data}
        for a in out if isinstance(a, act.Log)], pipe=pipe)
    pipe.execute()
    out = brief_agents(s, session.call_sid, out)
    return twiml.render(out, listen=_listening(), stop_stream=stop_stream)


def _listening() -> twiml.Listening | None:
    """How this server can hear callers (None: no speech model, keys only)."""
    s = services()
    if s.speech is None:
        return None
    base = s.config.server.public_base_url.rstrip("/") or request.host_url.rstrip("/")
    return twiml.Listening(
        digits=s.speech.digits_language is not None,
        stream_url=websocket_url(base) + bp.url_prefix + "/stream",
        max_recording_seconds=s.config.speech.max_recording_seconds)


def _session() -> Session:
    s = services()
    session = s.sessions.load(_call_sid())
    if session is None:
        raise UnknownCall(f"no session for call {_call_sid()}")
    return session


def _stale(session: Session) -> bool:
    """A replayed or out-of-order request: not for the turn the call is on now."""
    node, turn = request.args.get("node", ""), request.args.get("turn", "")
    return session.done or node != session.node or turn != str(session.turn)


def _outcome(session: Session | None, call_status: str) -> str:
    if session is None:
        return "abandoned" if call_status in ("completed", "canceled") else "failed"
    if session.outcome:
        return session.outcome
    if session.node and session.node in _transfer_nodes(session):
        return "transferred"
    return "abandoned" if call_status in ("completed", "canceled") else "failed"


def _transfer_nodes(session: Session) -> set[str]:
    try:
        flow = services().registry.version(session.flow, session.version)
    except Exception:  # noqa: BLE001 - only used to label the outcome
        return set()
    return {n for n, node in flow.model.nodes.items() if node.type == "transfer"}


def _call_sid() -> str:
    sid = request.form.get("CallSid", "")
    if not SID.match(sid):
        raise BadWebhook(f"missing or malformed CallSid {sid[:70]!r}")
    return sid


def _sid_or_dash() -> str:
    return request.form.get("CallSid", "-")[:64]


# -- never a 500 ---------------------------------------------------------------------------


def _safely(handler: Callable[[], str], on_error: Callable[[], str] | None = None) -> Response:
    try:
        return _xml(handler())
    except Exception as exc:  # noqa: BLE001 - the caller must always get valid TwiML
        sid = _sid_or_dash()
        if isinstance(exc, BadWebhook | UnknownCall | FlowRuntimeError):
            log.error("call %s: %s %s; safe path", sid, request.path, exc)
        else:
            log.exception("call %s: %s failed; safe path", sid, request.path)
        _record_error(sid, exc)
        return _xml(on_error() if on_error else _safe_path())


def _record_error(sid: str, exc: Exception) -> None:
    try:
        s = services()
        if SID.match(sid):
            s.calllog.add_events(sid, [{"at": s.clock(), "node": None, "kind": "error",
                                        "data": {"where": request.path,
                                                 "error": f"{type(exc).__name__}: {exc}"[:500]}}])
    except Exception:  # noqa: BLE001 - already on the error path
        log.exception("call %s: could not record the error", sid)


def _safe_path() -> str:
    s = services()
    fb = s.config.fallback
    target = fb.number or _flow_human()
    return twiml.say_then_dial(fb.message, target, fb.goodbye, fb.voice, fb.language)


def _flow_human() -> str | None:
    """The flow's person of last resort; the flow is known in memory even if Redis is down."""
    s = services()
    name = s.config.flows.numbers.get(request.form.get("To", ""), s.config.flows.default)
    try:
        session = s.sessions.load(_sid_or_dash())
        name = session.flow if session else name
    except Exception:  # noqa: BLE001 - Redis may be what failed
        pass
    try:
        return s.registry.current(name).model.human
    except Exception:  # noqa: BLE001 - or the flow itself
        return None


def _xml(body: str) -> Response:
    return Response(body, 200, mimetype="text/xml")


def register_error_handlers(app: Flask) -> None:
    """Unknown /voice URLs and methods get the safe path too (when Twilio signed them)."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if request.path.startswith("/voice/") and exc.code in (404, 405):
            if not signed_or_allowed():
                return Response("Forbidden\n", 403, mimetype="text/plain")
            log.error("call %s: %s %s answered with the safe path", _sid_or_dash(),
                      exc.code, request.path)
            return _xml(_safe_path())
        if request.path.startswith("/admin"):
            from .admin.auth import error_page

            return error_page(exc)
        return exc

    @app.errorhandler(Exception)
    def _any_error(exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.path)
        if request.path.startswith("/voice/"):
            return _xml(_safe_path())
        return Response("Internal error\n", 500, mimetype="text/plain")
