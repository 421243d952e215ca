"""Never a 500 to Twilio: any failure in a voice webhook becomes the safe path.

Twilio would play "an application error has occurred" for a 500; instead the failure is
logged with the CallSid and the path, recorded in the call's log, and the caller hears an
apology and is put through to the fallback number or the flow's person of last resort.
The safe path is itself an event in the call's log (written straight to SQL when Redis is
what failed), which is how the call ends labelled "transferred" (see calllog_apply).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from flows.errors import FlowRuntimeError

from . import twiml
from .calllog_apply import SAFE_PATH, SAFE_PATH_GOODBYE

log = logging.getLogger("ivr_server.voice")
SID = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{1,62}\Z")  # \Z: "$" would let "CA1\n" in
VOICE_PREFIX = "/voice"
# TwiML answered here never reaches the caller: Twilio ignores a status callback's, and a
# whisper is played to the agent's leg (another CallSid).
NOT_HEARD_BY_THE_CALLER = frozenset({VOICE_PREFIX + "/status", VOICE_PREFIX + "/whisper"})


class BadWebhook(ValueError):
    """Parameters Twilio would never send (missing CallSid, garbage turn)."""


class UnknownCall(LookupError):
    """An action URL for a CallSid with no live session (expired, or never started here)."""


def services() -> Any:
    return current_app.extensions["ivr"]


def _sid_or_dash() -> str:
    return request.form.get("CallSid", "-")[:64]


def _safely(handler: Callable[[], str], on_error: Callable[[], str] | None = None) -> Response:
    try:
        return _xml(handler())
    except Exception as exc:  # noqa: BLE001 - the caller must always get valid TwiML
        sid = _sid_or_dash()
        if isinstance(exc, BadWebhook | UnknownCall | FlowRuntimeError):
            log.error("call %s: %s %s; safe path", sid, request.path, exc)
        else:
            log.exception("call %s: %s failed; safe path", sid, request.path)
        if on_error:
            _record(sid, exc, None)
            return _xml(on_error())
        return _xml(_safe_path(exc))


def _record(sid: str, exc: Exception | None, safe_path: str | None) -> None:
    """The failure and the safe path taken (its event kind) in the call's log, in one write:
    with Redis away each write waits out Redis before going to SQL."""
    try:
        s = services()
        if not SID.match(sid):
            return
        if request.path in (VOICE_PREFIX + "/incoming", VOICE_PREFIX + "/fallback"):
            _log_start(s, sid)  # the turn that would have logged the call failed
        now, events = s.clock(), []
        if exc is not None:
            events.append({"at": now, "node": None, "kind": "error",
                           "data": {"where": request.path,
                                    "error": f"{type(exc).__name__}: {exc}"[:500]}})
        if safe_path:
            events.append({"at": now, "node": None, "kind": safe_path,
                           "data": {"where": request.path[:200]}})
        s.calllog.add_events(sid, events)
    except Exception:  # noqa: BLE001 - already on the error path
        log.exception("call %s: could not record the error", sid)


def _log_start(s: Any, sid: str) -> None:
    """Log who called though their first turn failed (Redis away, a broken flow); a repeat
    of a start already logged changes nothing."""
    form = request.form
    called = form.get("To", "")[:64]
    try:
        flow = s.registry.current(s.config.flows.numbers.get(called, s.config.flows.default))
        name, version = flow.name, flow.version
    except Exception:  # noqa: BLE001 - the flow may be what failed
        name = version = None
    s.calllog.call_started(call_sid=sid, account_sid=form.get("AccountSid", "")[:64],
                           from_number=form.get("From", "")[:64], to_number=called,
                           direction=form.get("Direction", "inbound")[:32], flow=name,
                           version=version, at=s.clock())


def _safe_path(error: Exception | None = None) -> str:
    """The apology and a person (or goodbye), recorded in the call's log with the `error`
    that led here: a stale or unreadable session's call is labelled by it (calllog_apply)."""
    s = services()
    fb = s.config.fallback
    target = fb.number or _flow_human()
    heard = request.path not in NOT_HEARD_BY_THE_CALLER
    _record(_sid_or_dash(), error, (SAFE_PATH if target else SAFE_PATH_GOODBYE) if heard
            else None)
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
            from .voice import signed_or_allowed

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
