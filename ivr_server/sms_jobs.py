"""The RQ side of sending texts: `deliver(message_id)` runs in an `ivr worker` process.

The worker sets its context once (`use_context`) from the same config as the web server:
the SMS store and Twilio's REST client. Twilio's 429 and 5xx answers (and no answer) raise,
so RQ retries with backoff (longer when Twilio's Retry-After asks for it); other refusals
are permanent and recorded on the message with Twilio's error code. Twilio's 21610 ("the
recipient has unsubscribed") opts the number out. When the retries run out, `on_failure`
keeps the message as failed, with the last error.

Sent at most once: the message is marked `sending` before each request to Twilio. A send
whose answer never came (a timeout, or a worker killed mid-request) stays `sending`, and
the next try first asks Twilio for a message to that number with that body created since
the first such attempt began, and not already another of our messages': found, the
earliest is recorded as sent and not sent again (sms_settle). Identical texts to one
number take turns from settling to recording Twilio's answer (sms_twins), so a settle
never takes the message of a twin whose answer is still on its way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import metrics
from .config import SmsConfig
from .json_logs import call_context
from .sms_settle import settle
from .sms_store import SmsStore
from .sms_twins import twins_take_turns
from .twilio_rest import TwilioRest, TwilioRestError

log = logging.getLogger("ivr_server.sms_jobs")
UNSUBSCRIBED = 21610
WAIT_KINDS = ("wait_estimate", "wait_update")
PENDING = ("queued", "retrying", "sending")
MAX_RETRY_AFTER = 3600  # seconds: a longer Retry-After is capped


class TemporaryFailure(RuntimeError):
    """Twilio was busy or unreachable: RQ tries again later."""


@dataclass
class JobContext:
    store: SmsStore
    rest: TwilioRest | None
    config: SmsConfig
    clock: Callable[[], datetime]
    status_callback: str | None = None
    # call sid -> still waiting in a queue? (a wait text is dropped once the caller left)
    still_queued: Callable[[str], bool] | None = None
    locks: Any = None  # a Redis client: identical texts to one number take turns
    key_prefix: str = ""


_context: JobContext | None = None


def use_context(context: JobContext | None) -> None:
    """Set by `ivr worker` (or a test) before jobs run in this process."""
    global _context
    _context = context


def deliver(message_id: int) -> str:
    """Send one stored message; returns what happened (kept as the job's result)."""
    if _context is None:
        raise RuntimeError("no SMS job context: run jobs with `ivr worker`")
    ctx = _context
    message = ctx.store.message(message_id)
    if message is None or message.status not in PENDING:
        return "skipped"  # already sent (a retried job) or gone
    with call_context(message.call_sid):  # also when run by something else than `ivr worker`
        if ctx.locks is None or ctx.rest is None:
            return _deliver(ctx, message_id, message)
        with twins_take_turns(ctx.locks, ctx.key_prefix, message, ctx.rest.timeout) as waited:
            return _deliver(ctx, message_id,
                            ctx.store.message(message_id) if waited else message)


def _deliver(ctx: JobContext, message_id: int, message: Any) -> str:
    if message is None or message.status not in PENDING:
        return "skipped"  # a twin's turn came first and this one was sent meanwhile
    if message.status == "sending" and ctx.rest is not None \
            and _taken_before(ctx, message_id, message):
        return "sent"
    if message.kind in WAIT_KINDS and message.call_sid and ctx.still_queued is not None \
            and not ctx.still_queued(message.call_sid):
        ctx.store.update_message(message_id, status="refused", at=ctx.clock(),
                                 error="the caller left the queue before it was sent")
        metrics.sms("refused")
        return "refused"
    if ctx.store.opted_out(message.to_number):  # honoured before every send
        ctx.store.update_message(message_id, status="refused", at=ctx.clock(),
                                 error="opted out")
        metrics.sms("refused")
        return "refused"
    if ctx.rest is None:
        ctx.store.update_message(message_id, status="failed", at=ctx.clock(),
                                 error="no Twilio account configured")
        metrics.sms("failed")
        return "failed"
    # A `sending` message's updated_at stays when its first unanswered try began, so that
    # a later check still counts what Twilio may have taken for that try.
    started = message.updated_at if message.status == "sending" else ctx.clock()
    ctx.store.update_message(message_id, status="sending", at=started)
    try:
        sid = ctx.rest.send_sms(message.to_number, ctx.config.from_number or None, message.body,
                                status_callback=ctx.status_callback,
                                messaging_service_sid=ctx.config.messaging_service_sid or None)
    except TwilioRestError as exc:
        if exc.status is None:  # sent, but no answer: Twilio may have it; ask before resending
            ctx.store.update_message(message_id, status="sending", at=started, error=str(exc))
            raise TemporaryFailure(str(exc)) from exc
        if exc.status == 429 or exc.status >= 500:  # refused: nothing was sent
            ctx.store.update_message(message_id, status="retrying", at=ctx.clock(),
                                     error=str(exc))
            _wait_at_least(exc.retry_after)
            raise TemporaryFailure(str(exc)) from exc
        ctx.store.update_message(message_id, status="failed", at=ctx.clock(),
                                 error_code=exc.code, error=str(exc))
        metrics.sms("failed")
        if exc.code == UNSUBSCRIBED and ctx.store.set_opt_out(message.to_number, True,
                                                              "TWILIO", ctx.clock()):
            metrics.sms("opt_out")
        log.warning("sms %s to %s failed for good: %s", message_id, message.to_number, exc)
        return "failed"
    ctx.store.update_message(message_id, status="sent", at=ctx.clock(), message_sid=sid,
                             durable=False)  # forgotten in a crash: `sending`, then settled
    metrics.sms("sent")
    return "sent"


def _taken_before(ctx: JobContext, message_id: int, message: Any) -> bool:
    """Did Twilio take an earlier attempt? (`updated_at` of a `sending` message is when the
    first unanswered attempt began.) True: recorded as sent. If Twilio cannot say, try
    again later."""
    assert ctx.rest is not None
    try:
        sid = settle(ctx.store, ctx.rest, message_id, message,
                     from_=ctx.config.from_number or None,
                     messaging_service_sid=ctx.config.messaging_service_sid or None,
                     at=ctx.clock())
    except TwilioRestError as exc:
        raise TemporaryFailure(f"cannot tell whether Twilio took the last try: {exc}") from exc
    if sid is None:
        return False
    log.warning("sms %s: Twilio had taken the try whose answer was lost (%s); not resent",
                message_id, sid)
    metrics.sms("sent")
    return True


def _wait_at_least(seconds: float | None) -> None:
    """Twilio's Retry-After: the next retry of this job waits at least that long."""
    from rq import get_current_job

    job = get_current_job()
    if not seconds or job is None or not job.retries_left or not job.retry_intervals:
        return
    intervals = list(job.retry_intervals)
    index = max(len(intervals) - job.retries_left, 0)  # the one RQ uses next (Job.retry)
    intervals[index] = max(intervals[index], math.ceil(min(seconds, MAX_RETRY_AFTER)))
    job.retry_intervals = intervals


def on_failure(job: Any, connection: Any, exc_type: Any, exc: Any, traceback: Any) -> None:
    """RQ calls this after each failed try, and for a job whose worker died. With no retry
    left, the message is kept as failed in SQL (not left pending for ever)."""
    if job.retries_left or _context is None:
        return  # RQ tries again (or this process cannot reach the store)
    message_id = int(job.args[0])
    message = _context.store.message(message_id)
    if message is None or message.status not in PENDING:
        return
    why = message.error or f"{getattr(exc_type, '__name__', 'error')}: {exc}"
    unsure = " (the last try got no answer: Twilio may have it)" \
        if message.status == "sending" else ""
    tries = len(job.retry_intervals or []) + 1
    _context.store.update_message(message_id, status="failed", at=_context.clock(),
                                  error=f"gave up after {tries} tries{unsure}: {why}")
    metrics.sms("failed")
    with call_context(message.call_sid):  # also for a dead worker's job, settled elsewhere
        log.error("sms %s to %s failed for good: %s", message_id, message.to_number, why)
