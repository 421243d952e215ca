"""Path 2: the caller's live audio (Twilio Media Streams), heard while the prompt plays.

`<Start><Stream>` forks the caller's audio to this websocket as JSON messages: connected,
start (our node and turn ride along as customParameters), media (base64 mu-law, 8 kHz,
20 ms each) and stop. A final result that matches the node's choices (or reads as digits)
is stored, the turn is claimed, and the live call is redirected to /voice/input through
Twilio's REST API (calls(sid).update), which cuts the prompt short: barge-in by voice.
Twilio signs the websocket handshake like any webhook, so unsigned connections get 403.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request
from flask_sock import ConnectionClosed, Sock

from flows.session import Session
from speech.streaming import StreamingRecognizer, Utterance

from . import metrics
from .json_logs import call_context, name_call
from .signature import http_url
from .twilio_rest import TwilioRestError
from .voice import bp, listening

log = logging.getLogger("ivr_server.media_stream")
sock = Sock()  # only registers the route on the voice blueprint; holds no connection

START_TIMEOUT = 10.0  # seconds to wait for Twilio's start message
RECEIVE_TIMEOUT = 30.0  # a stream silent this long (no frames at all) is dead
MAX_STREAM_SECONDS = 120.0  # stop listening to one prompt after this much audio
MAX_HOLD_SECONDS = 4 * 3600.0  # a call back offer is listened for through the whole hold
SPEAKING_CHECK_FRAMES = 10  # every 200 ms, tell the prompt's timeout if the caller is talking


@sock.route("/stream", bp=bp)
def media_stream(ws: Any) -> None:
    s = current_app.extensions["ivr"]
    if s.speech is None:
        log.warning("a media stream connected but no speech model is configured")
        return
    # The handshake is a GET with no CallSid: lines name the call once `start` has.
    with call_context(None):
        try:
            _listen(ws, s, _public_base())
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - the call goes on with keys and its timeout
            log.exception("media stream failed; the prompt still takes keys")


def _public_base() -> str:
    base = current_app.extensions["ivr"].config.server.public_base_url
    if base:
        return base.rstrip("/")
    return http_url(request.host_url.rstrip("/"))


def _listen(ws: Any, s: Any, public_base: str) -> None:
    start = _await_start(ws)
    if start is None:
        return
    sid = str(start.get("callSid", ""))
    name_call(sid)  # this stream's lines from here on, its traceback included
    params = start.get("customParameters")
    params = params if isinstance(params, dict) else {}  # Twilio sends an object; nothing else
    node_name, turn = str(params.get("node", "")), str(params.get("turn", ""))
    session: Session | None = s.sessions.load(sid)
    if session is None or session.done or session.node != node_name \
            or str(session.turn) != turn:
        log.info("call %s: stream for %s/%s is not for the prompt the call is at", sid[:64],
                 node_name[:64], turn[:10])
        return
    node = s.registry.version(session.flow, session.version).node(node_name)
    synonyms, digits = listening(node)
    phrases = s.speech.grammar(synonyms, digits=digits)
    if not phrases:
        return
    recognizer = StreamingRecognizer(s.speech.model, phrases,
                                     **s.speech.grammar_options(digits))
    name = str(params.get("stream", ""))
    on_hold = getattr(node, "type", "") == "enqueue"  # a call back offer heard on hold
    limit = MAX_HOLD_SECONDS if on_hold else MAX_STREAM_SECONDS
    frames = 0
    while recognizer.stream_seconds < limit:
        raw = ws.receive(timeout=RECEIVE_TIMEOUT)
        if raw is None:
            return
        message = _json(raw)
        event = message.get("event")
        if event == "stop":
            return
        if event != "media":
            continue
        media = message.get("media")
        if not isinstance(media, dict):
            continue
        if media.get("track", "inbound") != "inbound":
            continue
        try:
            frame = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (binascii.Error, ValueError):
            continue
        utterance = recognizer.feed_mulaw(frame)
        frames += 1
        if utterance is None and frames % SPEAKING_CHECK_FRAMES == 0 and recognizer.speaking():
            s.streams.mark_speaking(session.call_sid, session.turn)
        if utterance is not None and on_hold and not _offered(s, session):
            continue  # words said before the offer was made do not take them out of line
        if utterance is not None and _answered(s, session, utterance, synonyms, digits,
                                               recognizer.stream_seconds,
                                               _input_url(public_base, session, name)):
            return


def _offered(s: Any, session: Session) -> bool:
    fresh = s.sessions.load(session.call_sid)
    return bool(fresh is not None and not fresh.done and fresh.node == session.node
                and fresh.turn == session.turn and fresh.queue.get("offered_at") is not None
                and not fresh.queue.get("leaving"))


def _await_start(ws: Any) -> dict[str, Any] | None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        raw = ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        if raw is None:
            return None
        message = _json(raw)
        if message.get("event") == "start":
            start = message.get("start")
            return start if isinstance(start, dict) else None
        if message.get("event") == "stop":
            return None
    return None


def _json(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _input_url(public_base: str, session: Session, stream: str) -> str:
    query = {"node": session.node or "", "turn": session.turn, "stream": stream, "heard": 1}
    return f"{public_base}/voice/input?{urlencode(query)}"


def _answered(s: Any, session: Session, utterance: Utterance, synonyms: dict[str, list[str]],
              digits: bool, stream_seconds: float, url: str) -> bool:
    """Judge one final result. A match claims the turn and redirects the call (True); a
    no-match is kept for the prompt's timeout and listening goes on (a cough must not cut
    the prompt short)."""
    sid, turn = session.call_sid, session.turn
    metrics.recognition(utterance.recognition.decode_ms, "stream")
    heard = s.speech.judge(utterance.recognition, synonyms, digits=digits, path="stream")
    s.streams.put_heard(sid, turn, heard)
    if heard.choice is None and heard.digits is None:
        return False
    if s.streams.claim(sid, turn, "voice") != "voice":
        return True  # keys got there first: nothing to do
    started = time.perf_counter()
    error = None
    try:
        if s.rest is None:
            raise TwilioRestError("no Twilio account configured")
        s.rest.redirect_call(sid, url)
    except TwilioRestError as exc:  # the prompt's timeout still picks the answer up
        error = str(exc)[:300]
        log.error("call %s: could not redirect after hearing %r: %s", sid, heard.text, exc)
    s.calllog.add_events(sid, [{
        "at": s.clock(), "node": session.node, "kind": "speech_redirect",
        "data": {"text": heard.text,
                 "endpoint_ms": round((stream_seconds - utterance.speech_end_seconds) * 1000),
                 "redirect_ms": round((time.perf_counter() - started) * 1000),
                 **({"error": error} if error else {})}}])
    return True
