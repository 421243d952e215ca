"""Call sessions in Redis, keyed by CallSid, so any web process can serve any webhook.

A webhook makes two round trips: it reads the call's session, and it writes the session
back together with the call-log records (a `RedisBatch`). Both go straight to a pooled
connection: redis-py's command and Pipeline layers cost about a third more CPU for the same
bytes, and these two calls are most of a webhook's Redis work. Failures behave as redis-py's
do: the connection's own retry policy, then redis.ConnectionError / TimeoutError.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from flows.session import Session

Command = tuple[Any, ...]


def round_trip(client: redis.Redis, commands: Sequence[Command]) -> list[Any]:
    """Send `commands` in one write and read their replies, as a pipeline without a
    transaction does; a command Redis refuses raises its error after every reply is read,
    so the connection stays in step."""
    pool, own = client.connection_pool, client.connection  # a single-connection client's
    try:
        conn = own or pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        conn = pool.get_connection(commands[0][0])
    try:
        return conn.retry.call_with_retry(lambda: _send(conn, commands),
                                          lambda _error: conn.disconnect())
    finally:
        try:
            reconnect = getattr(conn, "should_reconnect", None)
            if reconnect is not None and reconnect():  # a server maintenance notice asked
                conn.disconnect()
        finally:
            if own is None:
                pool.release(conn)


def _send(conn: Any, commands: Sequence[Command]) -> list[Any]:
    conn.send_packed_command(conn.pack_commands(commands))
    replies: list[Any] = []
    error: redis.ResponseError | None = None
    for _ in commands:
        try:
            replies.append(conn.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
            error = error or exc
    if error is not None:
        raise error
    return replies


class RedisBatch:
    """The writes of one webhook, sent in one round trip by `execute()`. Has the parts of
    redis-py's Pipeline the webhooks use: set, rpush, command_stack, execute."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.command_stack: list[tuple[Command, dict[str, Any]]] = []

    def set(self, name: str, value: str, ex: int | None = None) -> RedisBatch:
        args: Command = ("SET", name, value) if ex is None else ("SET", name, value, "EX", ex)
        self.command_stack.append((args, {}))
        return self

    def rpush(self, name: str, *values: str) -> RedisBatch:
        self.command_stack.append((("RPUSH", name, *values), {}))
        return self

    def execute(self) -> list[Any]:
        commands = [args for args, _ in self.command_stack]
        self.command_stack = []
        return round_trip(self.client, commands) if commands else []


class SessionStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl: int):
        self.client, self.prefix, self.ttl = client, prefix, ttl

    def key(self, call_sid: str) -> str:
        return f"{self.prefix}call:{call_sid}"

    def load(self, call_sid: str) -> Session | None:
        raw = round_trip(self.client, [("GET", self.key(call_sid))])[0]
        if raw is None:
            return None
        return Session.from_dict(json.loads(raw))

    def save(self, session: Session, ttl: int | None = None, pipe: Any = None) -> None:
        """Store the session; with `pipe` (a RedisBatch or a redis-py pipeline), as part of
        that round trip."""
        (pipe or self.client).set(self.key(session.call_sid), json.dumps(session.to_dict()),
                                  ex=ttl or self.ttl)

    def batch(self) -> RedisBatch:
        """A webhook's writes (this session, the call log's records) for one round trip."""
        return RedisBatch(self.client)
