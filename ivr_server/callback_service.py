"""Booking, scheduling and cancelling callbacks: shared by the webhooks and the worker.

The rules (who may be called, when, how often) are the pure `callbacks` package; the
truth is SQL (callback_store); RQ only holds "look at request N (schedule `seq`) at time
T". A job for an old `seq` finds nothing to do, so rescheduling never needs to find and
delete the jobs it replaces, and a lost job is re-created from SQL by the reconciler.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import redis
from rq import Queue
from rq.job import Job, JobStatus

from callbacks.errors import CallbackError, NotCallable
from callbacks.numbers import callable_number, time_zones
from callbacks.phrasing import when_phrase
from callbacks.retry import RetryPolicy
from callbacks.states import State
from callbacks.window import CallingPolicy, next_opening

from . import metrics
from .callback_served import ServedNotes
from .callback_store import CallbackStore, FirstSlot
from .config import CallbacksConfig
from .models import CallbackRequest
from .redis_conn import job_id_prefix

log = logging.getLogger("ivr_server.callbacks")
QUEUE_NAME = "callbacks"
PENDING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


@dataclass(frozen=True)
class Booking:
    """What the caller is told: when to expect the call, or why there will be none."""

    ok: bool
    callback_id: int | None = None
    merged: bool = False
    due: dt.datetime | None = None
    when: str = ""
    error: str | None = None


@dataclass(frozen=True)
class QueueRules:
    calling: CallingPolicy
    retry: RetryPolicy
    time_zone: str


def rules_for(config: CallbacksConfig, queue: str) -> QueueRules:
    """The queue's calling window and retry policy: [callbacks] with its queue's overrides."""
    over = dict(config.queues.get(queue, {}))
    merged = replace(config, **{k: v for k, v in over.items() if hasattr(config, k)})
    holidays = merged.holidays if isinstance(merged.holidays, list) else \
        [d.strip() for d in str(merged.holidays).split(",") if d.strip()]
    calling = CallingPolicy.from_settings(
        callee_hours=merged.callee_hours, business_hours=merged.business_hours or "always",
        time_zone=merged.time_zone, holidays=holidays)
    retry = RetryPolicy.from_settings(merged.attempts, merged.retry_delays, merged.on_machine)
    return QueueRules(calling, retry, merged.time_zone)


def check_rules(config: CallbacksConfig) -> list[str]:
    """Every queue's rules, parsed once at start so a typo stops the server, not a job."""
    problems = []
    for queue in ["", *config.queues]:
        try:
            rules_for(config, queue)
        except CallbackError as exc:
            problems.append(f"[callbacks{'.queues.' + queue if queue else ''}]: {exc}")
    return problems


def call_of(row: CallbackRequest) -> str | None:
    """The call a request's log lines name: the one the caller asked on, else (booked some
    other way) the callback's own call once placed."""
    return row.call_sid or row.dial_sid


class CallbackJobs:
    """The RQ side: "look at request N, schedule seq, at time T"."""

    def __init__(self, jobs_redis: redis.Redis, *, queue_name: str = QUEUE_NAME):
        """`jobs_redis`: a client made with `connect(url, decode=False)`, as RQ needs."""
        self.redis = jobs_redis
        self.queue = Queue(queue_name, connection=jobs_redis)
        self.job_prefix = job_id_prefix(queue_name)
        self.served = ServedNotes(self.queue)

    def job_id(self, callback_id: int, seq: int) -> str:
        return f"{self.job_prefix}-{callback_id}-{seq}"

    def at(self, row: CallbackRequest, seq: int, due: dt.datetime, now: dt.datetime) -> None:
        """The job for the request's schedule `seq`; its meta names the request's call, for
        the worker's log lines about it (cli_worker.CallWorker)."""
        job_id = self.job_id(row.id, seq)
        call_sid = call_of(row)
        kwargs: dict[str, Any] = {"job_id": job_id, "job_timeout": 30,
                                  "result_ttl": 60, "failure_ttl": 7 * 86400,
                                  "description": f"callback {row.id} (schedule {seq})",
                                  "meta": {"call_sid": call_sid} if call_sid else None}
        if due <= now:
            self.queue.enqueue("ivr_server.callback_jobs.run", row.id, seq, **kwargs)
        else:
            self.queue.enqueue_at(due, "ivr_server.callback_jobs.run", row.id, seq, **kwargs)

    def pending(self, callback_id: int, seq: int) -> bool:
        """Is the job for this schedule still waiting or running in RQ?"""
        try:
            job = Job.fetch(self.job_id(callback_id, seq), connection=self.redis)
        except Exception:  # noqa: BLE001 - NoSuchJobError: Redis lost it
            return False
        return job.get_status(refresh=False) in PENDING


class Callbacks:
    def __init__(self, store: CallbackStore, jobs: CallbackJobs, config: CallbacksConfig,
                 clock: Callable[[], dt.datetime]):
        self.store, self.jobs, self.config, self.clock = store, jobs, config, clock
        self._rules: dict[str, QueueRules] = {}

    def rules(self, queue: str) -> QueueRules:
        """Parsed once per queue (the config does not change while the process runs)."""
        rules = self._rules.get(queue)
        if rules is None:
            rules = self._rules[queue] = rules_for(self.config, queue)
        return rules

    def zones(self, number: str, queue: str) -> tuple[str, ...]:
        return time_zones(number, self.rules(queue).time_zone)

    def book(self, *, number: str, queue: str, reason: str, call_sid: str | None = None,
             flow: str | None = None, caller_id: str | None = None,
             context: dict[str, Any] | None = None, place_at: dt.datetime | None = None,
             wait_seconds: float | None = None) -> Booking:
        """Book (or merge into the caller's active request) and schedule it for when the
        caller would have reached an agent, inside the calling window."""
        if not self.config.enabled:
            return Booking(ok=False, error="callbacks are turned off")
        now = self.clock()
        try:
            e164 = callable_number(number, self.config.region)
        except NotCallable as exc:
            return Booking(ok=False, error=str(exc))
        predicted = now + dt.timedelta(seconds=max(0.0, wait_seconds or 0.0))
        opening = self._opening(e164, queue, predicted, now)
        first = None if opening is None else FirstSlot(opening[0], predicted, opening[1])
        booked = self.store.book(number=e164, queue=queue, reason=reason, at=now,
                                 call_sid=call_sid, flow=flow, caller_id=caller_id,
                                 context=context, place_at=place_at or now, first=first)
        row = booked.request
        if not booked.merged:
            metrics.callback("requested")
        if booked.merged and row.state != State.REQUESTED:
            due = row.due_at or now
            return Booking(ok=True, callback_id=row.id, merged=True, due=due,
                           when=self.when(row, due, now))
        if not booked.merged and first is not None:  # booked already scheduled
            self.jobs.at(row, row.seq, first.due, now)
            return Booking(ok=True, callback_id=row.id, due=first.due,
                           when=self.when(row, first.due, now))
        return self._plan(row, predicted, now, merged=booked.merged)

    def _plan(self, row: CallbackRequest, predicted: dt.datetime, now: dt.datetime, *,
              merged: bool) -> Booking:
        moved = self.reschedule(row, predicted, now, kind="callback_scheduled", data={},
                                predicted_at=predicted)
        if moved is None or moved.due_at is None:
            now_row = self.store.get(row.id)
            error = "there is no time we may call in the next two weeks" \
                if now_row is not None and now_row.state == State.FAILED \
                else "the request changed meanwhile"
            return Booking(ok=False, callback_id=row.id, error=error)
        return Booking(ok=True, callback_id=row.id, merged=merged, due=moved.due_at,
                       when=self.when(row, moved.due_at, now))

    def when(self, row: CallbackRequest, due: dt.datetime, now: dt.datetime) -> str:
        zones = self.zones(row.number, row.queue)
        return when_phrase(due, now, zones[0])

    def reschedule(self, row: CallbackRequest, earliest: dt.datetime, now: dt.datetime, *,
                   kind: str, data: dict[str, Any], token: str | None = None,
                   **fields: Any) -> CallbackRequest | None:
        """Move to the first open moment at or after `earliest`; fail if there is none."""
        opening = self._opening(row.number, row.queue, earliest, now)
        if opening is None:
            self.store.move(row.id, State.FAILED, now, kind="callback_failed", token=token,
                            data={**data, "why": "no calling window in the next 14 days"},
                            last_outcome="no-window")
            metrics.callback("failed")
            return None
        due, why = opening
        data = {**why, **data}
        moved = self.store.schedule(row.id, due, now, kind=kind, data=data, token=token,
                                    **fields)
        if moved is not None:
            self.jobs.at(row, moved.seq, due, now)
        return moved

    def _opening(self, number: str, queue: str, earliest: dt.datetime, now: dt.datetime
                 ) -> tuple[dt.datetime, dict[str, Any]] | None:
        """The first moment at or after `earliest` (never before now) that the number may
        be called from this queue, and why then; None if none in the next 14 days."""
        rules = self.rules(queue)
        earliest = max(earliest, now)
        due = next_opening(earliest, time_zones(number, rules.time_zone), rules.calling)
        if due is None:
            return None
        return due, {"why": "calling window" if due > earliest else "on time"}

    def cancel(self, number: str, why: str, *, queue: str | None = None,
               call_sid: str | None = None) -> int:
        """Cancel the number's pending callbacks (served meanwhile, or texted CANCEL). A
        call already ringing is left to finish."""
        now = self.clock()
        try:
            e164 = callable_number(number, self.config.region)
        except NotCallable:
            return 0
        cancelled = 0
        for row in self.store.active(e164, queue):
            if self.store.move(row.id, State.CANCELLED, now, kind="callback_cancelled",
                               expect=[State.REQUESTED, State.SCHEDULED],
                               data={"why": why, "by_call": call_sid}) is not None:
                cancelled += 1
        return cancelled
