"""Text webhooks that failed, kept and handled later: a STOP, a survey score or a delivery
report that arrives while the database (or Redis) is away is not lost with the outage.

Twilio does not retry a failed SMS webhook, so the webhook keeps the form it got: in a
Redis list, or with Redis away too, in this process's memory (bounded) until Redis is
back. Each web process's background writer hands them, oldest first and one process at a
time, back to the webhooks' own handlers (sms_hooks.replay); an item leaves the list only
once handled, so a crash mid-replay handles it again (the handlers tolerate a repeat).
While any are waiting, new text webhooks queue behind them, so a STOP and the START after
it are applied in the order they were sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis
from redis.exceptions import LockError

Handler = Callable[[str, dict[str, str], datetime], None]
HELD_LIMIT = 10_000
LOCK_SECONDS = 30  # renewed before each item; one item's handling takes seconds at most
REST_SECONDS = 5  # after the database failed an item: not every beat of the writer
DONE_MARK_SECONDS = 86_400
# Pop the head only if it is still the item just handled.
POP_IF_FIRST = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then return redis.call('LPOP', KEYS[1]) end
return false
"""


class DeferredTexts:
    def __init__(self, client: redis.Redis, key_prefix: str,
                 logger: logging.Logger | None = None, held_limit: int = HELD_LIMIT):
        self.redis = client
        self.key = f"{key_prefix}sms:deferred"
        self.lock_name = f"{key_prefix}sms:deferred-lock"
        self.dead_key = f"{key_prefix}sms:deferred:dead"
        self.log = logger or logging.getLogger(__name__)
        self.held_limit = held_limit
        self._held: deque[str] = deque()
        self._mutex = threading.Lock()
        self._resting_until = 0.0
        self._pop_if_first = client.register_script(POP_IF_FIRST)

    def keep(self, kind: str, form: dict[str, str], at: datetime) -> None:
        """Keep a webhook (`kind`: "incoming" or "status") to be handled later."""
        text = json.dumps({"kind": kind, "form": form, "at": at.isoformat()})
        try:
            self.release_held()
            self.redis.rpush(self.key, text)
        except redis.RedisError as exc:
            self._hold(text, exc)

    def waiting(self) -> bool:
        """Any kept webhook not handled yet (a new one must queue behind it)."""
        if self._held:
            return True
        try:
            return bool(self.redis.llen(self.key))
        except redis.RedisError:
            return False  # nothing can be replayed now either; handle the new one live

    def release_held(self) -> int:
        """Move this process's memory-held webhooks to Redis; how many moved."""
        with self._mutex:
            if not self._held:
                return 0
            texts = list(self._held)
            self.redis.rpush(self.key, *texts)  # raises with Redis still away: kept
            self._held.clear()
        self.log.warning("sms: %d text webhooks kept in memory are queued for replay",
                         len(texts))
        return len(texts)

    def replay(self, handle: Handler, transient: Callable[[Exception], bool],
               limit: int = 100) -> int:
        """Handle up to `limit` kept webhooks in order. One that fails for a `transient`
        reason (the database still away) stays first in line, ends the pass and rests the
        replay for REST_SECONDS; one that fails otherwise (a bug, data the database
        refuses) is set aside in the dead list and logged, so it cannot hold every later
        text back. The lock is renewed before each item and an item leaves the line only
        if it is still first, so two processes never take one item, nor drop another's.
        How many left the line."""
        if time.monotonic() < self._resting_until:
            return 0
        try:
            self.release_held()
            lock = self.redis.lock(self.lock_name, timeout=LOCK_SECONDS, blocking=False)
            if not lock.acquire():
                return 0  # another process is replaying
        except redis.RedisError:
            return 0
        done = 0
        try:
            while done < limit:
                lock.reacquire()  # raises once lost: another process may be replaying
                raw = self.redis.lindex(self.key, 0)
                if raw is None:
                    break
                if not self._handle_once(raw, handle, transient):
                    self._resting_until = time.monotonic() + REST_SECONDS
                    break
                if self._pop_if_first(keys=[self.key], args=[raw]) is None:
                    break  # another process took it: the line is theirs now
                done += 1
        except (redis.RedisError, LockError) as exc:
            self.log.warning("sms: replay of kept webhooks stopped: %s", exc)
        finally:
            with contextlib.suppress(Exception):  # expired, or Redis gone: its timeout frees it
                lock.release()
        return done

    def _handle_once(self, raw: Any, handle: Handler,
                     transient: Callable[[Exception], bool]) -> bool:
        """Handle one kept webhook unless a pass that died before popping it already did
        (marked by its text's digest); False to leave it first in line."""
        done_key = f"{self.key}:done:{hashlib.sha1(str(raw).encode()).hexdigest()}"
        if self.redis.exists(done_key):
            return True
        item = _parse(raw)
        if item is None:
            self._set_aside(raw, "unreadable")
            return True
        try:
            handle(item["kind"], item["form"], datetime.fromisoformat(item["at"]))
        except Exception as exc:  # noqa: BLE001 - kept, or set aside
            if transient(exc):
                self.log.warning("sms: kept %s webhook not handled yet (%s: %s); next try in "
                                 "%d s", item["kind"], type(exc).__name__, exc, REST_SECONDS)
                return False
            self.log.exception("sms: kept %s webhook failed", item["kind"])
            self._set_aside(raw, f"{type(exc).__name__}: {exc}")
            return True
        self.redis.set(done_key, 1, ex=DONE_MARK_SECONDS)
        return True

    def _set_aside(self, raw: Any, why: str) -> None:
        """Out of the line, into `<key>:dead` for a person to look at (and replay by hand)."""
        self.log.error("sms: kept text webhook set aside in %s (%s): %.300s", self.dead_key,
                       why[:200], raw)
        self.redis.rpush(self.dead_key, raw)

    def _hold(self, text: str, exc: Exception) -> None:
        with self._mutex:
            self._held.append(text)
            while len(self._held) > self.held_limit:
                lost = self._held.popleft()
                self.log.error("sms: LOST text webhook (over %d kept in memory): %s",
                               self.held_limit, lost)
        self.log.error("sms: text webhook kept in this process's memory till Redis is back "
                       "(%s); lost if the process ends first", exc)


def _parse(raw: Any) -> dict[str, Any] | None:
    try:
        item = json.loads(raw)
        if item["kind"] in ("incoming", "status") and isinstance(item["form"], dict):
            datetime.fromisoformat(item["at"])
            return item
    except (ValueError, KeyError, TypeError):
        pass
    return None
