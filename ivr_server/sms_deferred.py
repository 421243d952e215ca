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
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis

Handler = Callable[[str, dict[str, str], datetime], None]
HELD_LIMIT = 10_000
LOCK_SECONDS = 30


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
        reason (the database still away) stays first in line and ends the pass; one that
        fails otherwise (a bug, data the database refuses) is set aside in the dead list
        and logged, so it cannot hold every later text back. The pass also ends well
        within the lock's time, so no other process takes the same item meanwhile. How
        many left the line."""
        try:
            self.release_held()
            lock = self.redis.lock(self.lock_name, timeout=LOCK_SECONDS, blocking=False)
            if not lock.acquire():
                return 0  # another process is replaying
        except redis.RedisError:
            return 0
        done, ends = 0, time.monotonic() + LOCK_SECONDS / 3
        try:
            while done < limit and time.monotonic() < ends:
                raw = self.redis.lindex(self.key, 0)
                if raw is None:
                    break
                item = _parse(raw)
                if item is None:
                    self._set_aside(raw, "unreadable")
                else:
                    try:
                        handle(item["kind"], item["form"], datetime.fromisoformat(item["at"]))
                    except Exception as exc:  # noqa: BLE001 - kept, or set aside
                        if transient(exc):
                            self.log.warning("sms: kept %s webhook not handled yet (%s: %s)",
                                             item["kind"], type(exc).__name__, exc)
                            break
                        self.log.exception("sms: kept %s webhook failed", item["kind"])
                        self._set_aside(raw, f"{type(exc).__name__}: {exc}")
                self.redis.lpop(self.key)
                done += 1
        except redis.RedisError as exc:
            self.log.warning("sms: replay of kept webhooks stopped: %s", exc)
        finally:
            # An expired lock or Redis gone: its timeout frees it.
            with contextlib.suppress(Exception):
                lock.release()
        return done

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
