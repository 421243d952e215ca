"""Twilio voice webhooks. Each turns a request into an engine event and the actions into TwiML.

Nothing here answers Twilio with a 500: any failure is logged with the CallSid and the
caller is sent down the safe path (an apology and a person, or a polite goodbye).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from flask import Blueprint, Response, request

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
from .voice_safety import (  # noqa: F401 - the names other modules import from here
    SID,
    BadWebhook,
    UnknownCall,
    _safe_path,
    _safely,
    _sid_or_dash,
    _xml,
    register_error_handlers,
    services,
)

log = logging.getLogger("ivr_server.voice")
bp = Blueprint("voice", __name__, url_prefix="/voice")

KEYS = re.compile(r"[^0-9*#]")
STREAM_NAME = re.compile(r"[^A-Za-z0-9_.:-]")
MAX_LOOKUPS_PER_TURN = 10
DIAL_STATUSES = {"completed", "answered", "busy", "no-answer", "failed", "canceled"}
ENDED_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
ENDED_SESSION_TTL = 600


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
    if existing is not None:  # a replay after the call ended: never start it over
        return twiml.render([act.Hangup()])
    caller, called = form.get("From", "")[:64], form.get("To", "")[:64]
    flow = s.registry.current(s.config.flows.numbers.get(called, s.config.flows.default))
    session = new_session(call_sid=sid, flow=flow.name, version=flow.version, caller=caller,
                          called=called, now=now)
    previous = s.calllog.previous_calls(caller, now) if flow.reads_caller_history else None
    pipe = s.sessions.batch()
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
                          duration=whole_number(duration))
    return _advance(session, event, services().clock())


def _status() -> str:
    s, form = services(), request.form
    sid = _call_sid()
    now = s.clock()
    call_status = form.get("CallStatus", "")[:20]
    duration = form.get("CallDuration", "")
    try:
        session, unreadable = s.sessions.load(sid), False
    except redis.RedisError as exc:  # the end is still logged, straight to the database
        log.error("call %s: session unreadable (%s); logging the end without it", sid, exc)
        session, unreadable = None, True
    batch = s.sessions.batch()  # the status, the end and the session: one round trip
    s.calllog.add_events(sid, [{"at": now, "node": session.node if session else None,
                                "kind": "status",
                                "data": {"status": call_status, "duration": duration[:10]}}],
                         pipe=batch)
    ended = call_status in ENDED_STATUSES
    if ended:
        # Unreadable: the call met the outage, whose every turn was the safe path. A stale
        # or unreadable session guesses; the call log relabels a call whose last turn was
        # the safe path to a person as transferred (calllog_apply.SAFE_PATH).
        outcome = "failed" if unreadable else _outcome(session, call_status)
        s.calllog.call_ended(call_sid=sid, status=call_status, outcome=outcome,
                             duration=whole_number(duration), at=now,
                             tags=session.tags if session else {},
                             queue=(session.queue.get("name") or None) if session else None,
                             pipe=batch)
        if session is not None:
            session.done, session.outcome = True, outcome
            s.sessions.save(session, ttl=ENDED_SESSION_TTL, pipe=batch)
    try:
        s.calllog.execute(batch)  # without Redis, its call-log records go to SQL instead
    except redis.RedisError:
        if session is not None:
            raise
        return twiml.empty()
    if ended and session is not None:
        if call_status == "completed":
            survey_text(s, session, whole_number(duration), now)
        if session.queue.get("name"):  # in case the queue's own callback never comes
            s.queues.abandon(session.queue["name"], sid, now.timestamp())
            s.queues.hangup(session.queue["name"], sid, now.timestamp())
            s.queues.disconnected(session.queue["name"], sid)  # the screen pop
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
    pipe = pipe if pipe is not None else s.sessions.batch()
    s.sessions.save(session, pipe=pipe)
    s.calllog.add_events(session.call_sid, [
        {"at": now, "node": a.node, "kind": a.kind, "data": a.data}
        for a in out if isinstance(a, act.Log)], pipe=pipe)
    s.calllog.execute(pipe)  # if Redis fails here, its call-log records go to SQL instead
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


def whole_number(raw: str, digits: int = 9) -> int | None:
    """A duration, count or id as Twilio sends it: plain ASCII digits, a sane length. Not
    "²" or "٣" (str.isdigit says yes, int() fails or reads them), nor 5,000 digits (int()
    refuses, and no SQL integer column holds them)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= digits else None


def _call_sid() -> str:
    sid = request.form.get("CallSid", "")
    if not SID.match(sid):
        raise BadWebhook(f"missing or malformed CallSid {sid[:70]!r}")
    return sid
