"""Make RQ and Redis agree with SQL again: run when a worker starts and every little while.

SQL holds every callback request; Redis only holds the jobs that will look at them. After a
Redis restart, a flushed queue, or a worker killed mid-job, this finds each active request
whose job is gone and schedules it again, and settles attempts that were being dialled when
a worker died: if Twilio has the call, its outcome is applied; if not, the attempt did not
happen and the request goes back to scheduled. Nothing is dialled from here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import Counter

import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from callbacks.states import State

from .callback_jobs import CallbackContext, attempt_ended, handle_served
from .callback_service import call_of
from .json_logs import call_context
from .models import CallbackRequest
from .twilio_rest import TwilioRestError

log = logging.getLogger("ivr_server.callback_reconcile")
FINAL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
REQUESTED_GRACE = dt.timedelta(seconds=30)  # a booking still being scheduled
CONNECTED_LIMIT = dt.timedelta(hours=4)  # a call whose end Twilio never reported
RECHECK_RINGING = dt.timedelta(minutes=5)  # between asking Twilio about one call
MAX_STATUS_CHECKS = 50  # calls asked about per pass
MOVER_LOCK = 5  # seconds; held for milliseconds, a killed holder delays due jobs this long


def reconcile(ctx: CallbackContext, now: dt.datetime | None = None) -> Counter[str]:
    """One pass; each request's lines (a reschedule failing, Twilio unreachable while
    settling an attempt) name the call it was booked on."""
    now = now or ctx.clock()
    done: Counter[str] = Counter()
    for row in ctx.store.in_states([State.REQUESTED]):
        if now - row.created_at >= REQUESTED_GRACE:
            with call_context(call_of(row)):
                ctx.callbacks.reschedule(row, row.predicted_at or now, now,
                                         kind="callback_scheduled", expect=[State.REQUESTED],
                                         data={"why": "recovered: its booking never finished"})
            done["requested"] += 1
    known = _jobs_in_redis(ctx)
    for row in ctx.store.in_states([State.SCHEDULED]):
        if ctx.callbacks.jobs.job_id(row.id, row.seq) not in known:
            with call_context(call_of(row)):
                ctx.callbacks.jobs.at(row, row.seq, row.due_at or now, now)
            done["rescheduled"] += 1
    grace = dt.timedelta(seconds=ctx.config.dial_grace)
    dialing = ctx.store.in_states([State.DIALING])
    # First the attempts Twilio never named (a worker died placing them): each may be a
    # callback nobody will place until it is settled.
    for row in (r for r in dialing if r.dial_sid is None):
        if now - (row.dial_started_at or row.updated_at) >= grace:
            done[settle_dialing(ctx, row, now)] += 1
    # Then calls whose end Twilio has not reported: a few each pass, each asked about again
    # only after a while, so a backlog of them never delays the first kind.
    patience = grace + dt.timedelta(seconds=ctx.config.ring_timeout + 120)
    named = sorted((r for r in dialing if r.dial_sid is not None
                    and now - (r.dial_started_at or r.updated_at) >= patience
                    and now - r.updated_at >= RECHECK_RINGING), key=lambda r: r.updated_at)
    for row in named[:MAX_STATUS_CHECKS]:
        done[settle_dialing(ctx, row, now)] += 1
    for row in ctx.store.in_states([State.CONNECTED]):
        if now - row.updated_at >= CONNECTED_LIMIT:
            with call_context(call_of(row)):
                ctx.store.move(row.id, State.COMPLETED, now, kind="callback_completed",
                               expect=[State.CONNECTED], last_outcome="answered",
                               data={"why": "Twilio never reported the end of the call"})
            done["closed"] += 1
    for queue in ctx.callbacks.jobs.served.queues_with_notes():  # a batch job was lost
        handle_served(ctx, queue, [])
        done["served notes"] += 1
    if done:
        log.info("callbacks reconciled: %s", dict(done))
    return done


def settle_dialing(ctx: CallbackContext, row: CallbackRequest, now: dt.datetime) -> str:
    """An attempt with no word from Twilio: ask Twilio whether the call exists."""
    with call_context(call_of(row)):
        return _settle_dialing(ctx, row, now)


def _settle_dialing(ctx: CallbackContext, row: CallbackRequest, now: dt.datetime) -> str:
    token = row.dial_token or ""
    caller_id = ctx.config.from_number or row.caller_id or ""
    started = row.dial_started_at or row.updated_at
    sid, status = row.dial_sid, None
    if ctx.rest is not None:
        try:
            if sid is None:
                found = ctx.rest.find_call(to=row.number, from_=caller_id, since=started)
                if found is not None:
                    sid, status = found
                    ctx.store.set_dial_sid(row.id, token, sid, now)
            else:
                status = ctx.rest.call_status(sid)
        except TwilioRestError as exc:
            log.warning("callback %s: cannot ask Twilio about attempt %s yet: %s", row.id,
                        row.attempts, exc)
            return "unsettled"
    if sid is None:  # Twilio has no such call: the attempt never happened
        ctx.callbacks.reschedule(row, now, now, kind="callback_attempt_lost", token=token,
                                 expect=[State.DIALING], attempts=max(0, row.attempts - 1),
                                 data={"attempt": row.attempts,
                                       "why": "the call never reached Twilio"})
        return "lost"
    if status in FINAL_STATUSES:
        attempt_ended(ctx, row, token, status, "", now)
        return "settled"
    ctx.store.touch(row.id, now)
    return "still-ringing"


def _jobs_in_redis(ctx: CallbackContext) -> set[str]:
    """Every callback job RQ still has: scheduled for later, queued, or running. Read in the
    order jobs move (scheduled, queued, started), so one moving meanwhile is still seen. A
    job started longer ago than its timeout does not count: its worker died with it (a live
    worker ends a job at its timeout), though RQ lists it as started for a while longer."""
    queue = ctx.callbacks.jobs.queue
    ids = set(ScheduledJobRegistry(queue=queue).get_job_ids())
    ids.update(queue.get_job_ids())
    now = time.time()
    for job_id in StartedJobRegistry(queue=queue).get_job_ids():
        job = queue.fetch_job(job_id)
        began = (job.started_at or job.enqueued_at) if job is not None else None
        if job is not None and (began is None or
                                now - began.timestamp() <= (job.timeout or 180) + 5):
            ids.add(job.id)
    return ids


def move_due(queue: Queue, stop: threading.Event, every: float = 1.0) -> None:
    """Put the queue's due jobs in line, from every worker, every second. This is the only
    scheduler: RQ's forks a process from one worker (a lock per queue), which a SIGKILL
    leaves holding its lock for a minute, and which a SIGTERM landing mid-start left running
    with the worker waiting on it forever."""
    while not stop.wait(every):
        try:
            move_due_once(queue)
        except Exception:  # noqa: BLE001 - Redis away: the next tick tries again
            log.exception("moving due jobs failed")


def move_due_once(queue: Queue) -> int:
    """Enqueue the queue's jobs whose time has come, as RQ's scheduler did: one worker at a
    time (a lock of MOVER_LOCK seconds per queue), each job put in line and taken off the
    schedule in one transaction, so a worker killed midway neither loses nor doubles one.
    Returns how many this worker moved."""
    registry = ScheduledJobRegistry(queue=queue)
    if not registry.get_jobs_to_schedule(int(time.time())):
        return 0  # the usual case, without taking the lock
    lock = queue.connection.lock(f"{registry.key}:mover", timeout=MOVER_LOCK, blocking=False)
    if not lock.acquire():
        return 0  # another worker is moving them right now
    try:
        job_ids = registry.get_jobs_to_schedule(int(time.time()))
        jobs = Job.fetch_many(job_ids, connection=queue.connection, serializer=queue.serializer)
        with queue.connection.pipeline() as transaction:
            for job_id, job in zip(job_ids, jobs, strict=True):
                if job is not None:  # expired meanwhile: only its schedule is left to drop
                    queue.enqueue_job(job, pipeline=transaction)
                registry.remove(job_id, pipeline=transaction)
            transaction.execute()
        return sum(job is not None for job in jobs)
    finally:
        with contextlib.suppress(redis.RedisError):  # expired: its timeout freed it
            lock.release()
