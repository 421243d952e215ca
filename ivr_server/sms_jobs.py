"""The RQ side of sending texts: `deliver(message_id)` runs in an `ivr worker` process.

The worker sets its context once (`use_context`) from the same config as the web server:
the SMS store and Twilio's REST client. Twilio's 429 and 5xx answers (and no answer) raise,
so RQ retries with backoff; other refusals are permanent and recorded on the message with
Twilio's error code. Twilio's 21610 ("the recipient has unsubscribed") opts the number out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .config import SmsConfig
from .sms_store import SmsStore
from .twilio_rest import TwilioRest, TwilioRestError

log = logging.getLogger("ivr_server.sms_jobs")
UNSUBSCRIBED = 21610
WAIT_KINDS = ("wait_estimate", "wait_update")


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
    if message is None or message.status not in ("queued", "retrying"):
        return "skipped"  # already sent (a retried job) or gone
    if message.kind in WAIT_KINDS and message.call_sid and ctx.still_queued is not None \
            and not ctx.still_queued(message.call_sid):
        ctx.store.update_message(message_id, status="refused", at=ctx.clock(),
                                 error="the caller left the queue before it was sent")
        return "refused"
    if ctx.store.opted_out(message.to_number):  # honoured before every send
        ctx.store.update_message(message_id, status="refused", at=ctx.clock(),
                                 error="opted out")
        return "refused"
    if ctx.rest is None:
        ctx.store.update_message(message_id, status="failed", at=ctx.clock(),
                                 error="no Twilio account configured")
        return "failed"
    try:
        sid = ctx.rest.send_sms(message.to_number, ctx.config.from_number or None, message.body,
                                status_callback=ctx.status_callback,
                                messaging_service_sid=ctx.config.messaging_service_sid or None)
    except TwilioRestError as exc:
        if exc.status is None or exc.status == 429 or exc.status >= 500:
            ctx.store.update_message(message_id, status="retrying", at=ctx.clock(),
                                     error=str(exc))
            raise TemporaryFailure(str(exc)) from exc
        ctx.store.update_message(message_id, status="failed", at=ctx.clock(),
                                 error_code=exc.code, error=str(exc))
        if exc.code == UNSUBSCRIBED:
            ctx.store.set_opt_out(message.to_number, True, "TWILIO", ctx.clock())
        log.warning("sms %s to %s failed for good: %s", message_id, message.to_number, exc)
        return "failed"
    ctx.store.update_message(message_id, status="sent", at=ctx.clock(), message_sid=sid)
    return "sent"
