"""Sign-in throttling in Redis, so every web node counts the same failures.

Failures are counted per username and per client address (which may be a whole office
behind one NAT, so it gets four times the limit); either reaching its limit locks sign-in
for that name or address until the window passes. A right password during
a lockout is still refused: otherwise the lockout would tell a guesser when they hit it.
"""

from __future__ import annotations

import contextlib
import hashlib

import redis


class LoginThrottle:
    def __init__(self, client: redis.Redis, prefix: str, max_failures: int,
                 lockout_seconds: int):
        self._redis = client
        self._prefix = f"{prefix}login:"
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds

    def _keys(self, username: str, address: str) -> list[str]:
        name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]
        return [f"{self._prefix}user:{name}", f"{self._prefix}addr:{address}"]

    def locked_for(self, username: str, address: str) -> int:
        """Seconds until sign-in is allowed again (0: allowed now). Fails open if Redis is
        down, since the password hash still has to be guessed."""
        try:
            pipe = self._redis.pipeline()
            for key in self._keys(username, address):
                pipe.get(key)
                pipe.ttl(key)
            values = pipe.execute()
        except redis.RedisError:
            return 0
        wait = 0
        limits = (self.max_failures, self.max_failures * 4)
        for count, ttl, limit in zip(values[::2], values[1::2], limits, strict=True):
            if count is not None and int(count) >= limit:
                wait = max(wait, int(ttl) if ttl and ttl > 0 else self.lockout_seconds)
        return wait

    def failed(self, username: str, address: str) -> None:
        try:
            pipe = self._redis.pipeline()
            for key in self._keys(username, address):
                pipe.incr(key)
                pipe.expire(key, self.lockout_seconds)
            pipe.execute()
        except redis.RedisError:
            pass

    def succeeded(self, username: str, address: str) -> None:
        """A right password clears the name's count (the address keeps its own)."""
        with contextlib.suppress(redis.RedisError):
            self._redis.delete(self._keys(username, address)[0])
