"""Texts whose job Redis lost: sent after all, or, when too late to matter, marked failed.

A text is stored in SQL before its job goes to Redis, so a Redis that restarts without
its data, or a failover to a replica that had not caught up, leaves messages `queued`
(or `retrying`, `sending`) with no job to send them. The worker looks for such messages
every `callbacks.reconcile_interval` seconds: one queued more than LOST_GRACE ago whose
job RQ no longer knows gets a new job (the send settles with Twilio first, so one that did
go out is not sent twice; a wait text whose caller has left hold is dropped as usual); one
older than LOST_TOO_LATE is marked failed instead, as a text hours late would confuse.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

from rq.job import Job

from .sms_jobs import PENDING
from .sms_outbox import SmsOutbox

log = logging.getLogger("ivr_server.sms_jobs")
LOST_GRACE = dt.timedelta(minutes=2)  # a job may still be on its way to Redis
LOST_TOO_LATE = dt.timedelta(hours=1)


def recover_lost_texts(outbox: SmsOutbox, now: dt.datetime) -> Counter[str]:
    """Resend (or give up on) pending texts with no job in Redis; counts what it did."""
    done: Counter[str] = Counter()
    pending = outbox.store.pending_outbound(PENDING, now - LOST_GRACE)
    with outbox.queue.connection.pipeline(transaction=False) as pipe:
        for message in pending:
            pipe.exists(Job.key_for(outbox.job_id(message.id)))
        known = pipe.execute()
    for message, has_job in zip(pending, known, strict=True):
        if has_job:
            continue  # in line, waiting to retry, or being sent
        if message.created_at < now - LOST_TOO_LATE:
            outbox.store.update_message(message.id, status="failed", at=now,
                                        error="its job was lost (Redis) and it is too late "
                                              "to send")
            done["too_late"] += 1
            continue
        outbox.enqueue(message.id, message.kind, message.to_number, message.call_sid)
        done["resent"] += 1
    if done:
        log.warning("texts whose job Redis lost: %s", dict(done))
    return done
