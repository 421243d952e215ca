"""Who answered a streaming prompt: the keypad or the voice, whichever claimed the turn first.

With path 2 a prompt is answered either by keys (Twilio posts the Gather's action) or by
speech (our websocket hears it and redirects the live call). Both can happen within
milliseconds, so each claims the turn in Redis (HSETNX) and only the winner acts. What the
stream heard is kept beside the claim, so the webhook that runs next can read it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import redis

from flows.events import DigitsEntered, Event, NoInput, SpeechHeard

TTL_SECONDS = 300  # a prompt's answer is long settled by then
SPEAKING_MS = 600  # a "caller is speaking" mark lasts this long unless renewed
SPEAKING_GRACE = 2.0  # seconds a timed-out prompt waits for an answer being spoken


class StreamAnswers:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis, self.prefix = client, prefix

    def _key(self, call_sid: str, turn: int | str) -> str:
        return f"{self.prefix}stream:{call_sid}:{turn}"

    def claim(self, call_sid: str, turn: int | str, by: str) -> str:
        """Claim the turn for `by` ("keys" or "voice"); returns who holds it now."""
        key = self._key(call_sid, turn)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(key, "claim", by)
        pipe.expire(key, TTL_SECONDS)
        pipe.hget(key, "claim")
        holder = pipe.execute()[-1]
        return holder.decode() if isinstance(holder, bytes) else str(holder)

    def put_heard(self, call_sid: str, turn: int | str, heard: SpeechHeard) -> None:
        key = self._key(call_sid, turn)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, "heard", json.dumps(asdict(heard), ensure_ascii=False))
        pipe.expire(key, TTL_SECONDS)
        pipe.execute()

    def mark_speaking(self, call_sid: str, turn: int | str) -> None:
        self.redis.set(self._key(call_sid, turn) + ":speaking", 1, px=SPEAKING_MS)

    def speaking(self, call_sid: str, turn: int | str) -> bool:
        return bool(self.redis.exists(self._key(call_sid, turn) + ":speaking"))

    def heard(self, call_sid: str, turn: int | str) -> SpeechHeard | None:
        raw = self.redis.hget(self._key(call_sid, turn), "heard")
        if raw is None:
            return None
        try:
            return SpeechHeard(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    def settle(self, call_sid: str, turn: int | str, event: DigitsEntered | NoInput) -> Event:
        """The event for a streaming prompt's webhook (keys, timeout or the stream's redirect).

        Keys that claim the turn win. If the voice claimed it first, what it heard is the
        answer. A timeout that claims the turn still takes whatever the stream heard (a
        no-match is a no-match, not silence), waiting briefly if the caller is speaking."""
        holder = self.claim(call_sid, turn, "keys")
        if holder == "keys" and isinstance(event, DigitsEntered):
            return event
        heard = self.heard(call_sid, turn)
        if heard is None and isinstance(event, NoInput):
            heard = self._wait_while_speaking(call_sid, turn)
        return heard if heard is not None else event

    def _wait_while_speaking(self, call_sid: str, turn: int | str) -> SpeechHeard | None:
        """The prompt timed out while the caller was mid-sentence: give the recogniser the
        moment it needs to finish, rather than talk over the caller with a reprompt."""
        deadline = time.monotonic() + SPEAKING_GRACE
        while self.speaking(call_sid, turn) and time.monotonic() < deadline:
            time.sleep(0.05)
            heard = self.heard(call_sid, turn)
            if heard is not None:
                return heard
        return self.heard(call_sid, turn)
