"""The RQ side of callbacks: `run(callback_id, seq)` runs in an `ivr worker` process.

A job looks at one request at its due time. Outside the calling window it moves the request
to the next opening; while the caller's virtual place has not reached the head of the line
(or no agent is free) it looks again shortly; otherwise it claims the attempt in SQL
(scheduled -> dialing, exactly one winner) and places the call. How the attempt ended comes
back through Twilio's status callbacks (callback_calls.py), which apply `attempt_ended`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from callbacks.numbers import time_zones
from callbacks.retry import next_delay
from callbacks.states import State
from callbacks.window import is_open

from . import metrics
from .callback_service import Callbacks, call_of
from .callback_store import CallbackStore
from .json_logs import call_context
from .models import CallbackRequest
from .queue_state import QueueState
from .twilio_rest import TwilioRest, TwilioRestError

log = logging.getLogger("ivr_server.callback_jobs")
MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other",
           "fax")
API_BUSY_DELAY = 30  # Twilio answered 429/5xx: the call was not placed; try again soon,
API_BUSY_MAX_DELAY = 900  # doubling the wait each time up to this (or Twilio's Retry-After)
API_BUSY_LIMIT = 8  # busy answers for one request before it is kept as failed
BUSY_NOTE = re.compile(r"^twilio busy x(\d+)")


@dataclass
class CallbackContext:
    callbacks: Callbacks
    store: CallbackStore
    rest: TwilioRest | None
    queues: QueueState | None
    base_url: str
    clock: Callable[[], dt.datetime]

    @property
    def config(self):  # noqa: ANN201 - CallbacksConfig
        return self.callbacks.config


_context: CallbackContext | None = None


def use_context(context: CallbackContext | None) -> None:
    """Set by `ivr worker` (or a test) before jobs run in this process."""
    global _context
    _context = context


def context() -> CallbackContext:
    if _context is None:
        raise RuntimeError("no callback job context: run jobs with `ivr worker`")
    return _context


def run(callback_id: int, seq: int) -> str:
    """Look at one request at its due time; returns what happened (kept as the result)."""
    ctx = context()
    row = ctx.store.get(callback_id)
    if row is None or row.state != State.SCHEDULED or row.seq != seq:
        return "stale"  # rescheduled, cancelled, or already dialled by another job
    with call_context(call_of(row)):  # also when run by something else than `ivr worker`
        return _run(ctx, row, seq)


def _run(ctx: CallbackContext, row: CallbackRequest, seq: int) -> str:
    now = ctx.clock()
    rules = ctx.callbacks.rules(row.queue)
    if not is_open(now, time_zones(row.number, rules.time_zone), rules.calling):
        ctx.callbacks.reschedule(row, now, now, kind="callback_scheduled",
                                 data={"why": "calling window"}, expect=[State.SCHEDULED])
        return "window"
    if not place_reached(ctx, row):
        due = now + dt.timedelta(seconds=ctx.config.recheck_seconds)
        moved = ctx.store.schedule(row.id, due, now, kind="", expect=[State.SCHEDULED])
        if moved is not None:
            ctx.callbacks.jobs.at(row, moved.seq, due, now)
        return "waiting"
    claimed = ctx.store.claim_attempt(row.id, seq, now)
    if claimed is None:
        return "raced"
    return dial(ctx, claimed, now)


def place_reached(ctx: CallbackContext, row: CallbackRequest) -> bool:
    """Virtual hold: would this caller be with an agent now? Nobody who joined before their
    place is still waiting, and an agent is free (not with a caller nor held by a callback
    being placed). A queue with no agent count cannot say: the predicted time stands."""
    if ctx.queues is None or row.place_at is None:
        return True
    agents = ctx.queues.agents(row.queue)
    if agents is None:
        return True
    place = row.place_at.timestamp()
    others = ctx.store.in_states([State.DIALING, State.CONNECTED], queue=row.queue)
    # A callback answered and back in line holds an agent; one ringing does too.
    answered = {r.dial_sid for r in others if r.state == State.CONNECTED and r.dial_sid}
    waiting = ctx.queues.waiting(row.queue)
    ahead = sum(1 for sid, joined in waiting if joined < place and sid not in answered)
    held = sum(1 for r in others if r.state == State.DIALING) + \
        sum(1 for sid, _ in waiting if sid in answered)
    busy = len(ctx.queues.in_service(row.queue)) + held
    return ahead == 0 and busy < agents


def dial(ctx: CallbackContext, row: CallbackRequest, now: dt.datetime) -> str:
    """Place the claimed attempt. A refusal before Twilio took the call reschedules or
    fails it; no answer at all leaves it dialing for the reconciler to settle."""
    token = row.dial_token or ""
    caller_id = ctx.config.from_number or row.caller_id or ""
    if ctx.rest is None or not caller_id or not ctx.base_url:
        why = "no Twilio account configured" if ctx.rest is None else \
            "no number to call from (callbacks.from_number)" if not caller_id else \
            "no public URL for Twilio to reach (server.public_base_url)"
        ctx.store.move(row.id, State.FAILED, now, kind="callback_failed", token=token,
                       expect=[State.DIALING], data={"why": why}, last_outcome="not-placed")
        metrics.callback("failed")
        return "failed"
    query = urlencode({"cb": row.id, "token": token})
    try:
        sid = ctx.rest.place_call(
            to=row.number, from_=caller_id, timeout=ctx.config.ring_timeout,
            url=f"{ctx.base_url}/voice/callback/answer?{query}",
            status_callback=f"{ctx.base_url}/voice/callback/status?{query}")
    except TwilioRestError as exc:
        if exc.status is None:  # sent, but no answer: Twilio may have placed it
            ctx.store.note(row.id, now, "callback_dial_unknown",
                           {"attempt": row.attempts, "error": str(exc)[:300]})
            return "unknown"
        if exc.status == 429 or exc.status >= 500:
            return twilio_busy(ctx, row, exc, now)
        ctx.store.move(row.id, State.FAILED, now, kind="callback_failed", token=token,
                       expect=[State.DIALING], last_outcome="refused",
                       data={"why": str(exc)[:300], "code": exc.code})
        metrics.callback("failed")
        return "failed"
    ctx.store.set_dial_sid(row.id, token, sid, now, kind="callback_call_placed",
                           data={"attempt": row.attempts, "sid": sid})
    metrics.callback("placed")
    return "placed"


def twilio_busy(ctx: CallbackContext, row: CallbackRequest, exc: TwilioRestError,
                now: dt.datetime) -> str:
    """Twilio did not take the call (429/5xx): not an attempt on the callee. Try again
    after a doubling wait (at least Twilio's Retry-After); after API_BUSY_LIMIT such answers
    the request is kept as failed. The count lives in the request's `note`."""
    token = row.dial_token or ""
    found = BUSY_NOTE.match(row.note or "")
    busy = (int(found.group(1)) if found else 0) + 1
    data = {"why": f"Twilio answered {exc.status}", "attempt": row.attempts, "busy": busy}
    if busy > API_BUSY_LIMIT:
        ctx.store.move(row.id, State.FAILED, now, kind="callback_failed", token=token,
                       expect=[State.DIALING], last_outcome="twilio-busy",
                       data={**data, "why": f"Twilio answered {exc.status} {busy} times; "
                             f"last: {str(exc)[:200]}"},
                       attempts=row.attempts - 1, note=f"twilio busy x{busy}")
        metrics.callback("failed")
        return "failed"
    delay = min(API_BUSY_DELAY * 2 ** (busy - 1), API_BUSY_MAX_DELAY)
    delay = max(delay, min(exc.retry_after or 0, 3600))
    ctx.callbacks.reschedule(row, now + dt.timedelta(seconds=delay), now,
                             kind="callback_retry", token=token, expect=[State.DIALING],
                             data={**data, "delay": delay}, attempts=row.attempts - 1,
                             note=f"twilio busy x{busy}: HTTP {exc.status}")
    return "retry"


def attempt_ended(ctx: CallbackContext, row: CallbackRequest, token: str, status: str,
                  answered_by: str, now: dt.datetime, duration: int | None = None) -> str:
    """Twilio says the attempt's call is over: complete, retry inside the window, or fail."""
    data = {"attempt": row.attempts, "status": status, "answered_by": answered_by or None,
            "duration": duration}
    if row.state == State.CONNECTED:
        ctx.store.move(row.id, State.COMPLETED, now, kind="callback_completed", token=token,
                       expect=[State.CONNECTED], data=data, last_outcome="answered")
        metrics.callback("completed")
        return "completed"
    if row.state != State.DIALING:
        return "ignored"
    machine = answered_by in MACHINE
    outcome = "machine" if machine else status if status != "completed" else "failed"
    policy = ctx.callbacks.rules(row.queue).retry
    delay = next_delay(policy, outcome, row.attempts)
    if delay is None:
        final = State.COMPLETED if machine else State.FAILED
        kind = "callback_completed" if machine else "callback_failed"
        ctx.store.move(row.id, final, now, kind=kind, token=token, expect=[State.DIALING],
                       data={**data, "why": "message left" if machine else
                             f"{row.attempts} attempt(s), last {outcome}"},
                       last_outcome=outcome)
        metrics.callback("completed" if machine else "failed")
        return "completed" if machine else "failed"
    ctx.callbacks.reschedule(row, now + dt.timedelta(seconds=delay), now,
                             kind="callback_retry", token=token, expect=[State.DIALING],
                             data={**data, "outcome": outcome}, last_outcome=outcome)
    return "retry"


def served(queue: str, number: str = "", call_sid: str = "") -> int:
    """The batch job for callers of `queue` who reached an agent (callback_served): cancel
    the callbacks their numbers still have pending there (a call already ringing finishes),
    then nudge the line, which moved. (`number`: a job queued by an older server.)"""
    return handle_served(context(), queue, [(number, call_sid)] if number else [])


def handle_served(ctx: CallbackContext, queue: str, extra: list[tuple[str, str]]) -> int:
    notes = ctx.callbacks.jobs.served.take(queue)
    for number, call_sid in dict.fromkeys([*notes, *extra]):
        if number:
            with call_context(call_sid or None):
                ctx.callbacks.cancel(number, "served on another call", queue=queue,
                                     call_sid=call_sid)
    ctx.callbacks.jobs.served.done(queue, len(notes))
    return nudge(queue, ctx)


def nudge(queue: str, ctx: CallbackContext | None = None) -> int:
    """The line moved: dial, now, the waiting callbacks whose place has reached the head
    (their job may be set for a later predicted time). Returns how many were moved."""
    ctx = ctx or context()
    now = ctx.clock()
    moved = 0
    rows = sorted((r for r in ctx.store.in_states([State.SCHEDULED], queue=queue)
                   if r.due_at is not None and r.due_at > now),
                  key=lambda r: r.place_at or r.created_at)
    for row in rows[:1]:  # one at a time: each holds an agent once dialled
        with call_context(call_of(row)):
            if not place_reached(ctx, row):
                break
            again = ctx.store.schedule(row.id, now, now, kind="", expect=[State.SCHEDULED])
            if again is not None:
                ctx.callbacks.jobs.at(row, again.seq, now, now)
                moved += 1
    return moved
