"""Sending a text: decided in the webhook, sent by an RQ worker, never inside the request.

`SmsOutbox.send` checks the number can take a text (sms.numbers) and has not opted out,
stores the message as queued (so it is in the call's timeline at once), and enqueues
`sms_jobs.deliver` on the "sms" queue with retries. The worker sends it through Twilio's
REST API and records what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import redis
from rq import Callback, Queue, Retry

from sms.errors import NotTextable
from sms.numbers import textable

from . import metrics
from .config import SmsConfig
from .redis_conn import job_id_prefix
from .sms_store import SmsStore

log = logging.getLogger("ivr_server.sms")
QUEUE_NAME = "sms"  # after the Redis key prefix: "ivr:sms"


def retry_policy(config: SmsConfig) -> Retry | None:
    """Retries for Twilio's 429 and 5xx answers, spaced as configured ("10,60,300")."""
    intervals = [int(x) for x in config.retry_intervals.split(",") if x.strip()]
    return Retry(max=len(intervals), interval=intervals) if intervals else None


class SmsOutbox:
    def __init__(self, jobs_redis: redis.Redis, store: SmsStore, config: SmsConfig,
                 clock: Callable[[], datetime], *, queue_name: str = QUEUE_NAME):
        """`jobs_redis`: a client made with `connect(url, decode=False)`, as RQ needs."""
        self.store, self.config, self.clock = store, config, clock
        self.queue = Queue(queue_name, connection=jobs_redis)

    @property
    def configured(self) -> bool:
        return bool(self.config.from_number or self.config.messaging_service_sid)

    def send(self, *, kind: str, to: str, body: str, call_sid: str | None = None,
             opt_out_checked: bool = False) -> int | None:
        """Queue a text; the stored message's id, or None when it may not be sent (the
        reason is logged and, for a real number, stored as a refused message).
        `opt_out_checked`: the caller just asked (the worker asks again before sending)."""
        now = self.clock()
        sender = self.config.from_number or self.config.messaging_service_sid
        try:
            number = textable(to, self.config.default_region,
                              allow_voip=self.config.allow_voip)
        except NotTextable as exc:
            log.info("sms %s for call %s not sent: %s", kind, call_sid or "-", exc)
            return None
        if not opt_out_checked and self.store.opted_out(number):
            self.store.add_message(direction="outbound", kind=kind, to_number=number,
                                   from_number=sender, body=body, status="refused", at=now,
                                   call_sid=call_sid)
            metrics.sms("refused")
            return None
        message_id = self.store.add_message(direction="outbound", kind=kind, to_number=number,
                                            from_number=sender, body=body, status="queued",
                                            at=now, call_sid=call_sid)
        try:
            self.enqueue(message_id, kind, number, call_sid)
        except redis.RedisError as exc:  # no worker will ever see it: say so, don't leave it
            log.error("sms %s for call %s not queued: %s", kind, call_sid or "-", exc)
            self.store.update_message(message_id, status="failed", at=now,
                                      error=f"not queued, Redis unavailable: {exc}")
            metrics.sms("failed")
            return None
        metrics.sms("queued")
        return message_id

    def enqueue(self, message_id: int, kind: str, number: str, call_sid: str | None) -> None:
        """The worker's job for a stored message; its id names the message, so the worker
        can tell a text whose job Redis lost (sms_recover), and its meta the message's call,
        for the worker's log lines about it (cli_worker.CallWorker)."""
        self.queue.enqueue("ivr_server.sms_jobs.deliver", message_id,
                           job_id=self.job_id(message_id),
                           meta={"call_sid": call_sid} if call_sid else None,
                           retry=retry_policy(self.config), job_timeout=60,
                           on_failure=Callback("ivr_server.sms_jobs.on_failure"),
                           description=f"sms {kind} to {number[:6]}...")

    def job_id(self, message_id: int) -> str:
        return f"{job_id_prefix(self.queue.name)}-{message_id}"
