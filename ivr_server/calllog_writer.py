"""Applies the queued call log to SQL in batches, in a background thread of each process.

Webhooks only RPUSH records to Redis (write-behind), so a slow or absent database never
slows a caller down. One writer at a time holds a short Redis lock, so several web
processes do not apply the same batch twice over (it would be harmless: records are
idempotent, but wasted work).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from .calllog import CallLog


class BacklogWriter:
    def __init__(self, calllog: CallLog, redis: Any, key_prefix: str, *, interval: float = 0.2,
                 batch: int = 500, logger: logging.Logger | None = None):
        self.calllog, self.redis = calllog, redis
        self.interval, self.batch = interval, batch
        self.lock_name = f"{key_prefix}calllog:writer-lock"
        self.log = logger or logging.getLogger(__name__)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Other work kept through an outage, replayed on the same beat (sms_deferred).
        self.chores: list[Callable[[], int]] = []

    def start(self) -> BacklogWriter:
        self._thread = threading.Thread(target=self._run, name="calllog-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, then write what is still queued (on the way out of a process)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.drain()

    def drain(self) -> int:
        """Apply everything queued now; returns how many records were written."""
        total = 0
        while (n := self.flush_once()) > 0:
            total += n
        return total

    def flush_once(self) -> int:
        # This process's own records kept in memory while Redis and the database were both
        # away: they need no lock, and the database may be back before Redis is.
        released = self.calllog.release_held()
        try:
            lock = self.redis.lock(self.lock_name, timeout=30, blocking=False)
            if not lock.acquire():
                return released  # another process is writing right now
        except Exception as exc:  # noqa: BLE001 - Redis away: nothing queued can be read
            self.log.debug("call log writer: no lock (%s)", exc)
            return released
        try:
            return self.calllog.flush_backlog(self.batch)
        finally:
            # An expired lock or Redis gone: its timeout frees it.
            with contextlib.suppress(Exception):
                lock.release()

    def run_chores(self) -> int:
        done = 0
        for chore in self.chores:
            try:
                done += chore()
            except Exception:  # noqa: BLE001 - the next beat tries again
                self.log.exception("background chore %s failed", chore)
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                written = self.flush_once()
            except Exception:  # noqa: BLE001 - the thread must outlive any one failure
                self.log.exception("call log writer: flush failed")
                written = 0
            self.run_chores()
            if written < self.batch:
                self._stop.wait(self.interval)
