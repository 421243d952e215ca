"""Callers who reached an agent, noted for the worker in batches, one job per queue a second.

When a queued caller is answered, a callback their number still has pending is no longer
needed, and the line moved, so a callback holding its place may be due. Both are the
worker's (no SQL in the webhook), and at a busy centre's dozen answers a second one RQ job
each cost the worker more than the work: webhooks append a note to a Redis list per queue,
and the first note after a batch schedules the next batch (`batch_delay` later). The job
clears that mark before reading, so a note written while it runs schedules another; notes
are trimmed only once handled (at least once: cancelling twice changes nothing). The
reconciler handles any queue whose notes were left behind (a job lost with its worker).
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import redis
from rq import Queue

log = logging.getLogger("ivr_server.callback_served")
BATCH = 500  # notes a job handles at most; a longer list is left to the next job
MARK_TTL = 30  # seconds: a mark whose job never got queued stops blocking the next one


class ServedNotes:
    def __init__(self, queue: Queue, batch_delay: float = 1.0):
        """`queue`: the callback jobs' RQ queue (its name carries the key prefix)."""
        self.queue, self.redis, self.batch_delay = queue, queue.connection, batch_delay
        self.base = f"{queue.name}:served:"

    def note(self, queue: str, number: str, call_sid: str, now: dt.datetime) -> None:
        """A caller of `queue` was answered (no number: the line moved, nobody to cancel)."""
        pipe = self.redis.pipeline(transaction=False)
        if number:
            pipe.rpush(self.base + "notes:" + queue, json.dumps([number, call_sid]))
        pipe.set(self.base + "due:" + queue, b"1", nx=True, ex=MARK_TTL)
        if not pipe.execute()[-1]:
            return  # a batch is already coming
        when = now + dt.timedelta(seconds=self.batch_delay)
        self.queue.enqueue_at(when, "ivr_server.callback_jobs.served", queue, job_timeout=60,
                              result_ttl=60, failure_ttl=3600,
                              description=f"served callers of queue {queue}")

    def take(self, queue: str) -> list[tuple[str, str]]:
        """The queue's notes, oldest first; a note written from now on schedules a batch."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.base + "due:" + queue)
        pipe.lrange(self.base + "notes:" + queue, 0, BATCH - 1)
        notes = []
        for raw in pipe.execute()[1]:
            try:
                number, call_sid = json.loads(raw)
                notes.append((str(number), str(call_sid)))
            except (TypeError, ValueError):
                log.warning("queue %s: an unreadable served note was dropped: %r", queue, raw)
                notes.append(("", ""))
        return notes

    def done(self, queue: str, handled: int) -> None:
        if handled:
            self.redis.ltrim(self.base + "notes:" + queue, handled, -1)

    def queues_with_notes(self) -> list[str]:
        prefix = self.base + "notes:"
        try:
            keys = list(self.redis.scan_iter(match=prefix + "*", count=500))
        except redis.RedisError as exc:
            log.warning("could not look for served notes left behind: %s", exc)
            return []
        return sorted(k.decode()[len(prefix):] if isinstance(k, bytes) else k[len(prefix):]
                      for k in keys)
