"""Call sessions and a webhook's batched writes go to Redis over a pooled connection directly:
the same answers and the same failures as redis-py's commands and pipelines."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import redis

from flows.session import new_session
from ivr_server.redis_conn import connect
from ivr_server.sessions import RedisBatch, SessionStore

NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def client(redis_url: str):  # noqa: ANN201 - redis.Redis
    c = connect(redis_url)
    yield c
    c.close()


def a_session(sid: str = "CA" + "5" * 32):  # noqa: ANN201 - Session
    s = new_session(call_sid=sid, flow="company", version="v1", caller="+14155550100",
                    called="+15005550006", now=NOW)
    s.vars["account"] = "31415926"
    s.choices.append("billing")
    return s


def test_a_session_saved_in_a_batch_with_log_records_comes_back_whole(client, redis_prefix):
    store = SessionStore(client, redis_prefix, ttl=300)
    session = a_session()
    batch = store.batch()
    store.save(session, pipe=batch)
    batch.rpush(f"{redis_prefix}log", "record-1").rpush(f"{redis_prefix}log", "record-2")
    assert [args[0] for args, _ in batch.command_stack] == ["SET", "RPUSH", "RPUSH"]

    assert batch.execute() == ["OK", 1, 2]
    assert batch.command_stack == [] and batch.execute() == []
    assert store.load(session.call_sid) == session
    assert 0 < client.ttl(store.key(session.call_sid)) <= 300
    assert client.lrange(f"{redis_prefix}log", 0, -1) == ["record-1", "record-2"]
    assert store.load("CA" + "0" * 32) is None


def test_a_session_saved_without_a_batch_is_written_at_once(client, redis_prefix):
    store = SessionStore(client, redis_prefix, ttl=300)
    session = a_session()
    store.save(session, ttl=60)
    assert json.loads(client.get(store.key(session.call_sid)))["vars"] == {"account": "31415926"}
    assert 0 < client.ttl(store.key(session.call_sid)) <= 60


def test_a_write_redis_refuses_raises_after_the_others_are_done_and_the_link_stays_usable(
        client, redis_prefix):
    store = SessionStore(client, redis_prefix, ttl=300)
    client.set(f"{redis_prefix}not-a-list", "x")
    session = a_session()
    batch = RedisBatch(client)
    batch.rpush(f"{redis_prefix}not-a-list", "r")  # WRONGTYPE
    store.save(session, pipe=batch)

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        batch.execute()
    assert store.load(session.call_sid) == session  # the SET after it was applied, and read


def test_a_connection_the_server_dropped_is_replaced_without_the_webhook_noticing(
        client, redis_url, redis_prefix):
    victim = connect(redis_url)  # its one pooled connection is the one Redis will drop
    store = SessionStore(victim, redis_prefix, ttl=300)
    session = a_session()
    store.save(session)
    own_id = victim.client_id()
    assert store.load(session.call_sid) == session
    assert victim.client_id() == own_id  # still that one connection

    client.client_kill_filter(_id=own_id)  # Redis drops it (a restart, a blip)
    assert store.load(session.call_sid) == session
    assert victim.client_id() != own_id
    victim.close()


def test_an_unreachable_redis_raises_a_connection_error_the_safe_path_catches(redis_prefix):
    dead = connect("redis://127.0.0.1:1/0")  # nothing listens on port 1
    store = SessionStore(dead, redis_prefix, ttl=300)
    with pytest.raises(redis.ConnectionError):
        store.load("CA" + "5" * 32)
    batch = store.batch()
    store.save(a_session(), pipe=batch)
    with pytest.raises(redis.ConnectionError):
        batch.execute()
