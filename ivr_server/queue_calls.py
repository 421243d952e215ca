"""Queue webhooks: what a waiting caller hears, how they leave, and when an agent takes them.

`<Enqueue waitUrl=/voice/queue/wait action=/voice/queue/result>` puts the caller in a Twilio
queue. Twilio asks the wait URL for TwiML again each time the last answer has played; the
live queue state (queue_state.py) and the wait predictor turn that into the caller's place
and an honest estimate, and the flow decides what is said. An agent's line dials the queue
with `<Queue url=/voice/queue/connect>`, which Twilio runs on the caller's side just before
bridging: that is when the caller is answered. The result URL reports how the caller left.
A failure while waiting keeps the caller waiting, in their place, for up to a minute (a
wait URL cannot dial a person); failing that long, they leave the queue, and the result
URL puts them through to a person (the safe path, or the flow's fallback).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from flask import request

from flows.events import QueueLeft, QueueWaiting, Repeat, WaitEstimate
from flows.session import Session

from . import twiml
from .agent_brief import pop_screen
from .callback_calls import book_on_abandon, line_moved, served
from .sms_triggers import wait_text
from .voice import _advance, _safely, _session, _stale, bp, services, whole_number

log = logging.getLogger("ivr_server.queue_calls")
QUEUE_RESULTS = {"bridged", "leave", "hangup", "queue-full", "redirected", "error",
                 "system-error"}
HOLD_ON_ERROR_SECONDS = 15
LEAVE_AFTER_ERRORS_FOR = 60  # seconds of failing wait turns before the caller leaves
MAX_QUEUE_NUMBER = 86_400  # seconds in a day; no call waits, nor a line holds, more


@bp.post("/queue/wait")
def queue_wait():  # noqa: ANN201 - Flask view
    return _safely(_wait, on_error=_hold_then_leave)


@bp.post("/queue/result")
def queue_result():  # noqa: ANN201
    return _safely(_result)


@bp.post("/queue/connect")
def queue_connect():  # noqa: ANN201
    return _safely(_connect, on_error=twiml.empty)


def _hold() -> str:
    return twiml.pause_only(HOLD_ON_ERROR_SECONDS)


def _hold_then_leave() -> str:
    """A failed wait turn: hold, then ask again through a URL carrying when the failures
    began and when the last one was (signed by Twilio with the rest); failing for a
    minute in a row, leave the queue. A last failure older than two holds means turns
    went well in between: the minute starts again."""
    now = int(services().clock().timestamp())
    since, last = (_past_time(request.args.get(name, ""), now)
                   for name in ("failing_since", "failed_at"))
    if since is None or last is None or now - last > 2 * HOLD_ON_ERROR_SECONDS:
        since = now
    if now - since >= LEAVE_AFTER_ERRORS_FOR:
        log.error("call %s: wait turns failing for %d s; leaving the queue for a person",
                  request.form.get("CallSid", "-")[:64], now - since)
        return twiml.leave_queue()
    query = {**{k: v for k, v in request.args.items() if k not in ("failing_since",
                                                                   "failed_at")},
             "failing_since": since, "failed_at": now}  # the same node and turn
    return twiml.pause_then_redirect(HOLD_ON_ERROR_SECONDS,
                                     f"{request.path}?{twiml.urlencode(query)}")


def _past_time(raw: str, now: int) -> int | None:
    """A time from our own URL, if it is one: not in the future, not over a day old."""
    value = whole_number(raw, digits=12)
    return value if value is not None and now - MAX_QUEUE_NUMBER <= value <= now else None


def _int(name: str) -> int:
    """QueueTime, QueuePosition or CurrentQueueSize; 0 when missing or absurd (a wait
    longer than a day would date the caller's place in line, and skew every estimate)."""
    value = whole_number(request.form.get(name, ""))
    return value if value is not None and value <= MAX_QUEUE_NUMBER else 0


def _wait() -> str:
    s = services()
    session = _session()
    queue = session.queue.get("name")
    if _stale(session) or not queue:
        return _hold()  # the call has moved on; Twilio will hear from the result URL
    now = s.clock()
    waited = _int("QueueTime")
    position = max(1, _int("QueuePosition"))
    s.queues.expire_stale(queue, now.timestamp())  # callers whose end was never reported
    joined = s.queues.arrive(queue, session.call_sid, now.timestamp() - waited)
    estimate = s.estimates.remaining(queue, session.call_sid, now.timestamp())
    if joined:
        _joined(session, queue, now.timestamp(), estimate)
    wait_text(s, session, position, estimate)
    event = QueueWaiting(position=position, waited=float(waited),
                         size=_int("CurrentQueueSize") or position, estimate=estimate)
    return _advance(session, event, now)


def _joined(session: Session, queue: str, ts: float, estimate: WaitEstimate | None) -> None:
    """The prediction a caller got when they joined, kept to compare with their real wait."""
    s = services()
    predicted = {"wait": round(estimate.seconds), "p10": round(estimate.p10),
                 "p90": round(estimate.p90)} if estimate else None
    session.queue["joined_at"] = ts
    session.queue["predicted"] = predicted
    s.calllog.add_events(session.call_sid, [{"at": s.clock(), "node": session.node,
                                             "kind": "queue_joined",
                                             "data": {"queue": queue, "predicted": predicted}}])


def _result() -> str:
    s = services()
    session = _session()
    queue = session.queue.get("name")
    if _stale(session) or not queue:
        return _advance(session, Repeat(), s.clock())
    result = request.form.get("QueueResult", "error")
    result = result if result in QUEUE_RESULTS else "error"
    if result == "redirected":
        return twiml.empty()  # moved by our REST redirect, which already carries on the call
    waited = _int("QueueTime")
    now = s.clock()
    _left_queue(s, session, queue, result, waited, now)
    return _advance(session, QueueLeft(result, float(waited)), now)


def left_by_voice(session: Session) -> None:
    """A caller redirected out of the queue by a spoken answer: counted as leaving now
    (Twilio's own QueueResult=redirected is ignored)."""
    s = services()
    queue = session.queue.get("name")
    if not queue:
        return
    now = s.clock()
    joined = float(session.queue.get("joined_at") or now.timestamp())
    _left_queue(s, session, queue, "redirected", round(now.timestamp() - joined), now)


def _left_queue(s: Any, session: Session, queue: str, result: str, waited: int,
                now: dt.datetime) -> None:
    """The live queue state, callbacks and the timeline learn how the caller left."""
    s.queues.disconnected(queue, session.call_sid)  # off the agent's screen, if they were on
    if result == "bridged":  # the agent's call ended (answered here if nobody said so)
        answered_now = s.queues.answer(queue, session.call_sid, now.timestamp())
        s.queues.hangup(queue, session.call_sid, now.timestamp())
        if answered_now:  # else the connect webhook already did this
            served(s, queue, session.call_sid, now, session.caller)
    else:
        s.queues.abandon(queue, session.call_sid, now.timestamp())
        if result == "hangup":
            book_on_abandon(s, session, waited, now)
        line_moved(s, queue)
    s.calllog.add_events(session.call_sid, [{
        "at": now, "node": session.node, "kind": "queue_result",
        "data": {"queue": queue, "result": result, "waited": waited,
                 "predicted": session.queue.get("predicted")}}])


def _connect() -> str:
    """Runs on the caller's side as an agent's line dequeues them: the caller is answered."""
    s = services()
    queue = request.args.get("queue", "")[:64]
    caller = request.form.get("CallSid", "")[:64]
    now = s.clock()
    agent = request.form.get("DequeingCallSid", "")[:64]
    answered = bool(queue and caller and s.queues.answer(queue, caller, now.timestamp()))
    pairs = bool(queue and caller and agent)  # the exact pair, for the agent's desktop
    session = s.sessions.load(caller) if answered or pairs else None  # read once for both
    if answered:
        s.calllog.add_events(caller, [{
            "at": now, "node": None, "kind": "queue_answered",
            "data": {"queue": queue, "waited": _int("QueueTime"), "agent_call": agent}}])
        served(s, queue, caller, now, session.caller if session is not None else "")
    if pairs:
        pop_screen(s, queue, caller, agent, now, _int("QueueTime"), session)
    briefed = s.queues.briefed(queue, agent) if queue and agent else None
    if briefed and briefed != caller:  # two agents raced: this one was told about another
        data = {"queue": queue, "agent_call": agent, "briefed_about": briefed,
                "connected": caller}
        for sid in (caller, agent):
            s.calllog.add_events(sid, [{"at": now, "node": None, "kind": "brief_mismatch",
                                        "data": data}])
        log.warning("queue %s: agent call %s was briefed about %s but got %s", queue, agent,
                    briefed, caller)
    return twiml.empty()
