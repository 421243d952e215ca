"""The only writer of the durable call log, built so that a webhook never fails because of it.

Every write is one transaction. When the database is down, the record goes to a Redis
list (the backlog) and is replayed, in order, by the next write that finds the database
back. Records are idempotent (calls are upserted by CallSid, events carry an id made
before the first attempt), so replays and concurrent flushers never double-write. A
record the database rejects for good moves to a dead-letter list instead of blocking the
backlog. If Redis fails as well, the record is logged whole at ERROR level and kept in
this process's memory (a bounded buffer) until Redis or the database is back, when the
writer (or the next flush) writes it out: lost only if the process ends first.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from . import metrics
from .calllog_apply import (
    Record,
    apply_batch,
    aware,
    event_records,
    iso,
    json_dict,
    random_ids,
)
from .models import Call

# Twilio's From for callers who hide their number: the keypad spellings of ANONYMOUS,
# RESTRICTED, BLOCKED, UNKNOWN and UNAVAILABLE, as well as the words themselves.
WITHHELD_NUMBERS = frozenset({"266696687", "7378742833", "2562533", "8656696", "86282452253"})
WITHHELD_WORDS = frozenset({"anonymous", "restricted", "blocked", "unknown", "unavailable",
                            "private", "withheld"})

# Pops the records a flusher applied, but only while they are still at the head of the
# list: a second flusher that read the same batch pops nothing, so no unseen record is lost.
_TRIM_SCRIPT = """
local n = 0
for i = 1, #ARGV do
  if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[i] then break end
  redis.call('LPOP', KEYS[1])
  n = n + 1
end
return n
"""


def is_withheld(number: str | None) -> bool:
    """True when the caller's number says nothing about who they are (so: a first-time caller)."""
    text = (number or "").strip().lower()
    if not text or text in WITHHELD_WORDS or text.startswith(("client:", "sip:")):
        return True
    return text.lstrip("+") in WITHHELD_NUMBERS


class CallLog:
    """Writes calls and their events; never raises into the caller."""

    def __init__(self, session_factory: sessionmaker[Session], redis: Any, key_prefix: str,
                 logger: logging.Logger | None = None, *, batch_size: int = 500,
                 retry_after: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 write_behind: bool = False, held_limit: int = 10_000) -> None:
        self._sessions = session_factory
        self._redis = redis
        self._log = logger or logging.getLogger(__name__)
        self.backlog_key = f"{key_prefix}calllog:backlog"
        self.dead_key = f"{key_prefix}calllog:dead"
        self._batch_size = batch_size
        # After a connection failure, skip the database for a few seconds so each webhook
        # does not wait out another connect timeout.
        self._retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self._trim = redis.register_script(_TRIM_SCRIPT) if redis is not None else None
        # Write-behind: webhooks only queue records in Redis (one RPUSH); a BacklogWriter
        # applies them to SQL in batches, off the request path.
        self.write_behind = write_behind and redis is not None
        # Records neither Redis nor the database took, oldest first (see release_held).
        self._held: deque[str] = deque()
        self._held_limit = held_limit
        self._held_lock = threading.Lock()

    # -- public API -----------------------------------------------------------------------

    def call_started(self, *, call_sid: str, account_sid: str, from_number: str,
                     to_number: str, direction: str, flow: str | None, version: str | None,
                     at: datetime, pipe: Any = None) -> None:
        """Record a new call (status in-progress); a repeat for the same CallSid changes nothing."""
        self._guarded(call_sid, lambda: {
            "op": "start", "call_sid": call_sid, "account_sid": account_sid or "",
            "from_number": from_number or "", "to_number": to_number or "",
            "direction": direction or "", "flow": flow, "version": version, "at": iso(at)},
            pipe)

    def add_events(self, call_sid: str, events: list[dict[str, Any]], pipe: Any = None) -> None:
        """Append timeline events ({at, node, kind, data}); ids are fixed before the first try."""
        if not events:
            return
        self._guarded(call_sid, lambda: {"op": "events", "call_sid": call_sid,
                                         "events": event_records(events)}, pipe)

    def call_ended(self, *, call_sid: str, status: str, outcome: str | None,
                   duration: int | None, at: datetime, tags: dict[str, Any],
                   queue: str | None = None, pipe: Any = None) -> None:
        """Record how a call ended (and the queue it joined, if any); creates the call when
        its start was never recorded. With `pipe`, as `add_events`."""
        self._guarded(call_sid, lambda: {
            "op": "end", "call_sid": call_sid, "status": status, "outcome": outcome,
            "duration": int(duration) if duration is not None else None, "at": iso(at),
            "tags": json_dict(tags), "queue": queue}, pipe)

    def previous_calls(self, from_number: str, before: datetime) -> int:
        """How many calls this number made before ``before``; 0 if withheld or unknowable."""
        if is_withheld(from_number) or self._db_resting():
            return 0
        try:
            with self._sessions() as session:
                return session.scalar(
                    select(func.count()).select_from(Call).where(
                        Call.from_number == from_number, Call.started_at < aware(before))) or 0
        except Exception as exc:
            self._note_failure(exc)
            self._log.error("call log: could not count previous calls of %s: %s",
                            from_number, exc)
            return 0

    def flush_backlog(self, limit: int = 500) -> int:
        """Replay up to ``limit`` queued records in order; returns how many were applied."""
        try:
            self.release_held()
            return self._flush(limit)[0]
        except Exception:  # pragma: no cover - defensive: never raise into a webhook
            self._log.exception("call log: flushing the backlog failed")
            return 0

    def execute(self, pipe: Any) -> list[Any]:
        """Send a Redis pipeline that carries call-log records (see `pipe=`). If Redis fails,
        those records are written the other way (the database, else memory), then it raises."""
        texts = [args[2] for args, _ in pipe.command_stack
                 if len(args) == 3 and args[0] == "RPUSH" and args[1] == self.backlog_key]
        try:
            return pipe.execute()
        except Exception:
            for record in map(json.loads, texts):
                self._guarded(str(record.get("call_sid")), lambda record=record: record)
            raise

    def release_held(self) -> int:
        """Write out the records kept in memory while Redis and the database were both away:
        to Redis's backlog if it is back, else straight to the database. Returns how many."""
        with self._held_lock:
            texts, self._held = list(self._held), deque()
        if not texts:
            return 0
        if self._push_all(texts) or self._apply_all(texts):
            self._log.warning("call log: %d records kept in memory are written out", len(texts))
            return len(texts)
        with self._held_lock:  # still nowhere to go: keep them, oldest first
            self._held.extendleft(reversed(texts))
            self._trim_held()
        return 0

    def _hold(self, text: str) -> None:
        with self._held_lock:
            self._held.append(text)
            self._trim_held()

    def _trim_held(self) -> None:
        while len(self._held) > self._held_limit:
            self._log.error("call log: LOST RECORD (over %d kept in memory): %s",
                            self._held_limit, self._held.popleft())

    def _push_all(self, texts: list[str]) -> bool:
        if self._redis is None:
            return False
        try:
            self._redis.rpush(self.backlog_key, *texts)
            return True
        except Exception:  # noqa: BLE001 - still away: the caller keeps them
            return False

    def _apply_all(self, texts: list[str]) -> bool:
        if self._db_resting():
            return False
        _, handled, failure = self._apply_in_order(texts, self._log_rejected)
        if failure is not None and not handled:
            return False
        if handled < len(texts):  # gone again: keep the rest for later
            with self._held_lock:
                self._held.extendleft(reversed(texts[handled:]))
                self._trim_held()
        return True

    def _log_rejected(self, text: str | bytes, exc: BaseException) -> None:
        self._log.error("call log: record rejected by the database (%s): %s", exc, text)

    def _apply_in_order(self, texts: list[Any], rejected: Callable[[Any, BaseException], None]
                        ) -> tuple[int, int, BaseException | None]:
        """Apply records in one transaction, else one by one so a record the database rejects
        for good (given to `rejected`) cannot block the rest; stop where the database is
        unreachable. Returns (applied, handled: applied or rejected, that failure)."""
        try:
            self._commit([json.loads(text) for text in texts])
            return len(texts), len(texts), None
        except Exception as exc:
            if self._note_failure(exc):
                return 0, 0, exc
        applied = handled = 0
        for text in texts:
            try:
                self._commit([json.loads(text)])
                applied += 1
            except Exception as exc:
                if self._note_failure(exc):
                    return applied, handled, exc
                rejected(text, exc)
            handled += 1
        return applied, handled, None

    # -- writing --------------------------------------------------------------------------

    def _guarded(self, call_sid: str, build: Callable[[], Record], pipe: Any = None) -> None:
        """Write one record. With write-behind and a Redis pipeline, the record joins the
        pipeline (sent with the call's session in one round trip) and the caller executes it."""
        try:
            record = build()
        except Exception:
            self._log.exception("call log: could not build a record for %s", call_sid)
            return
        record["rid"] = random_ids(1)[0]  # makes every queued record unique
        if pipe is not None and self.write_behind:
            pipe.rpush(self.backlog_key, json.dumps(record, default=str))
            return
        try:
            self._write(record)
        except Exception:  # pragma: no cover - defensive: never raise into a webhook
            self._log.exception("call log: unexpected failure for %s", call_sid)
            self._to_backlog(record, "unexpected failure")

    def _write(self, record: Record) -> None:
        if self.write_behind and self._push(json.dumps(record, default=str)):
            return  # else Redis is down: write straight to the database below
        if self._redis is not None:
            if self._db_resting():
                self._to_backlog(record, "the database failed moments ago")
                return
            if not self._flush(self._batch_size)[1]:
                # Older records are still queued: queue behind them to keep the order.
                self._to_backlog(record, None)
                return
        try:
            self._commit([record])
        except Exception as exc:
            self._note_failure(exc)
            self._to_backlog(record, exc)

    def _commit(self, records: list[Record]) -> None:
        """Apply records in one transaction; once it is committed, count each call it ended
        in the calls-ended metric, with the outcome the log now holds (a safe-path call is
        transferred in both), once per call however often its end is reported."""
        with self._sessions.begin() as session:
            outcomes = apply_batch(session, records)
        for outcome in outcomes:
            metrics.call_ended(outcome)

    def _to_backlog(self, record: Record, reason: object) -> None:
        text = json.dumps(record, default=str)
        if reason is not None:
            self._log.error("call log: %s record for %s not written (%s); queuing it in %s",
                            record.get("op"), record.get("call_sid"), reason, self.backlog_key)
        if not self._push(text):
            self._log.error("call log: LOST RECORD for %s if this process ends before Redis or "
                            "the database is back (kept in memory till then): %s",
                            record.get("call_sid"), text)
            self._hold(text)

    def _push(self, text: str) -> bool:
        if self._redis is None:
            return False
        try:
            self._redis.rpush(self.backlog_key, text)
            return True
        except Exception as exc:
            self._log.error("call log: Redis backlog unavailable: %s", exc)
            return False

    # -- the backlog ----------------------------------------------------------------------

    def _flush(self, limit: int) -> tuple[int, bool]:
        """Apply one batch; returns (records applied, backlog known to be empty now)."""
        if self._redis is None:
            return 0, True
        try:
            raws = self._redis.lrange(self.backlog_key, 0, max(limit, 1) - 1)
        except Exception as exc:
            self._log.warning("call log: cannot read the backlog: %s", exc)
            return 0, True  # Redis is down: nothing we can replay, write directly
        if not raws:
            return 0, True
        applied, handled, failure = self._apply_in_order(raws, self._dead_letter)
        if failure is not None and not handled:
            self._log.warning("call log: backlog of %s kept, database unavailable: %s",
                              self.backlog_key, failure)
            return 0, False
        if handled:
            try:
                self._trim(keys=[self.backlog_key], args=raws[:handled])
            except Exception as exc:  # re-applied later, harmlessly: records are idempotent
                self._log.warning("call log: cannot trim the backlog: %s", exc)
                return applied, False
        if applied:
            self._log.info("call log: replayed %d queued records", applied)
        return applied, handled == len(raws) and self._backlog_empty()

    def _backlog_empty(self) -> bool:
        try:
            return not self._redis.llen(self.backlog_key)
        except Exception:
            return True

    def _dead_letter(self, raw: str | bytes, exc: BaseException) -> None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        self._log.error("call log: record rejected by the database (%s), moved to %s: %s",
                        exc, self.dead_key, text)
        try:
            self._redis.rpush(self.dead_key, text)
        except Exception as redis_exc:
            self._log.error("call log: LOST RECORD (%s): %s", redis_exc, text)

    # -- database health ------------------------------------------------------------------

    def _db_resting(self) -> bool:
        return self._clock() < self._down_until

    def _note_failure(self, exc: BaseException) -> bool:
        """Start the retry pause if ``exc`` means the database is unreachable; say if it did."""
        if not transient_db_error(exc):
            return False
        self._down_until = self._clock() + self._retry_after
        return True


def transient_db_error(exc: BaseException) -> bool:
    """Worth retrying later (connection, lock, missing schema), not a record the DB rejects."""
    if isinstance(exc, IntegrityError | DataError):
        return False
    return isinstance(exc, DBAPIError | DisconnectionError | PoolTimeoutError)
