"""Call sessions in Redis, keyed by CallSid, so any web process can serve any webhook."""

from __future__ import annotations

import json
from typing import Any

import redis

from flows.session import Session


class SessionStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int):
        self.client, self.prefix, self.ttl = client, prefix, ttl

    def key(self, call_sid: str) -> str:
        return f"{self.prefix}call:{call_sid}"

    def load(self, call_sid: str) -> Session | None:
        raw = self.client.get(self.key(call_sid))
        if raw is None:
            return None
        return Session.from_dict(json.loads(raw))

    def save(self, session: Session, ttl: int | None = None, pipe: Any = None) -> None:
        """Store the session; with `pipe`, as part of that Redis pipeline."""
        (pipe or self.client).set(self.key(session.call_sid), json.dumps(session.to_dict()),
                                  ex=ttl or self.ttl)
