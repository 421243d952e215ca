"""Identical texts to one number take turns, from settling a lost send to recording
Twilio's answer.

Why: a text whose send got no answer is settled by listing Twilio's messages to its
number with its body (sms_settle). If an identical text's request were still on its way
back, the settle could take that message as its own, and two records would hold one
message while the phone got one text. Holding this lock across "settle, send, record"
makes the twin's answer land first.

The holder is the message's id, so the retry of a text whose worker was killed mid-send
takes its own lock over at once (RQ runs one try of a job at a time); a lock left by a dead
worker sending a twin lapses after two of Twilio's timeouts.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("ivr_server.sms_jobs")
POLL_S = 0.05

# Free, or held by an earlier try of this same text: take it (again) for ARGV[2] ms.
_TAKE = """
local holder = redis.call('get', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class TwinStillSending(RuntimeError):
    """An identical text to this number is being sent: RQ tries this one again later."""


@contextmanager
def twins_take_turns(redis: Any, key_prefix: str, message: Any, http_timeout: float, *,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> Iterator[bool]:
    """Hold the turn of `message`'s number and body; yields whether it had to wait (the
    message may have changed meanwhile). Waits at most one of Twilio's timeouts (a live
    twin's answer comes by then), then raises TwinStillSending."""
    digest = hashlib.sha256(f"{message.to_number}\n{message.body}".encode()).hexdigest()[:32]
    key, holder = f"{key_prefix}sms:twins:{digest}", str(message.id)
    ttl_ms = int((2 * http_timeout + 5) * 1000)
    deadline = clock() + http_timeout + 1
    take, release = redis.register_script(_TAKE), redis.register_script(_RELEASE)
    waited = False
    while not take(keys=[key], args=[holder, ttl_ms]):
        waited = True
        if clock() >= deadline:
            raise TwinStillSending(f"an identical text to this number is still being sent "
                                   f"(message {message.id} waits its turn)")
        sleep(POLL_S)
    try:
        yield waited
    finally:
        try:
            if not release(keys=[key], args=[holder]):
                log.warning("sms %s: its turn had lapsed before Twilio answered", message.id)
        except Exception:  # noqa: BLE001 - Redis away: the lock lapses by itself
            log.warning("sms %s: could not give up its turn", message.id, exc_info=True)
