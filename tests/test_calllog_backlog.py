"""The call log keeps every record: queued in Redis while the database is away and replayed once."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest
import redis

from ivr_server.calllog import CallLog

from .calllog_helpers import *  # noqa: F403  (the fixtures, used by name)
from .calllog_helpers import T0, backlog, call_of, events_of, make_log, new_sid, start

# -- the backlog ----------------------------------------------------------------------------


def write_a_call(log: CallLog, sid: str, n_events: int = 3) -> None:
    start(log, sid)
    for i in range(n_events):
        log.add_events(sid, [{"at": T0 + timedelta(seconds=i), "node": f"n{i}", "kind": "prompt",
                              "data": {"i": i}}])
    log.call_ended(call_sid=sid, status="completed", outcome="self-served", duration=9,
                   at=T0 + timedelta(seconds=9), tags={"split": "b"})


def test_an_unreachable_database_queues_records_and_a_flush_writes_them_once_in_order(
        sessions, broken_sessions, redis_client, key_prefix, caplog):
    down = make_log(broken_sessions, redis_client, key_prefix)
    sid = new_sid()

    write_a_call(down, sid)

    queued = backlog(redis_client, down)
    assert [r["op"] for r in queued] == ["start", "events", "events", "events", "end"]
    assert queued[0]["at"] == T0.isoformat()
    assert "not written" in caplog.text and sid in caplog.text
    assert call_of(sessions, sid) is None

    up = make_log(sessions, redis_client, key_prefix)
    assert up.flush_backlog() == 5
    assert up.flush_backlog() == 0

    call = call_of(sessions, sid)
    assert (call.status, call.from_number, call.tags) == ("completed", "+15550001111",
                                                          {"split": "b"})
    assert [e.data["i"] for e in events_of(sessions, sid)] == [0, 1, 2]
    assert redis_client.llen(up.backlog_key) == 0


def test_replaying_an_already_applied_backlog_writes_nothing_twice(
        sessions, broken_sessions, redis_client, key_prefix):
    down = make_log(broken_sessions, redis_client, key_prefix)
    sid = new_sid()
    write_a_call(down, sid)
    saved = redis_client.lrange(down.backlog_key, 0, -1)
    up = make_log(sessions, redis_client, key_prefix)
    up.flush_backlog()

    redis_client.rpush(up.backlog_key, *saved)  # e.g. the trim was lost
    assert up.flush_backlog() == 5

    assert len(events_of(sessions, sid)) == 3
    assert call_of(sessions, sid).status == "completed"


def test_the_next_successful_write_first_replays_the_backlog(
        sessions, broken_sessions, redis_client, key_prefix):
    down = make_log(broken_sessions, redis_client, key_prefix)
    sid = new_sid()
    start(down, sid)
    down.add_events(sid, [{"at": T0, "node": "a", "kind": "prompt", "data": {}}])

    up = make_log(sessions, redis_client, key_prefix)
    up.add_events(sid, [{"at": T0, "node": "b", "kind": "key", "data": {}}])

    assert call_of(sessions, sid) is not None
    assert [e.node for e in events_of(sessions, sid)] == ["a", "b"]
    assert redis_client.llen(up.backlog_key) == 0


def test_writes_queue_behind_a_backlog_longer_than_one_batch_to_keep_order(
        sessions, broken_sessions, redis_client, key_prefix):
    down = make_log(broken_sessions, redis_client, key_prefix)
    sid = new_sid()
    for i in range(5):
        down.add_events(sid, [{"at": T0, "node": str(i), "kind": "prompt", "data": {}}])

    up = make_log(sessions, redis_client, key_prefix, batch_size=2)
    up.add_events(sid, [{"at": T0, "node": "5", "kind": "prompt", "data": {}}])
    assert [e.node for e in events_of(sessions, sid)] == ["0", "1"]
    while up.flush_backlog(limit=2):
        pass

    assert [e.node for e in events_of(sessions, sid)] == ["0", "1", "2", "3", "4", "5"]


def test_two_call_logs_flushing_the_same_backlog_at_once_do_not_duplicate(
        sessions, broken_sessions, redis_client, key_prefix):
    down = make_log(broken_sessions, redis_client, key_prefix)
    sids = [new_sid() for _ in range(4)]
    for sid in sids:
        write_a_call(down, sid, n_events=8)
    total = redis_client.llen(down.backlog_key)
    flushers = [make_log(sessions, redis_client, key_prefix) for _ in range(2)]
    barrier = threading.Barrier(len(flushers))
    errors: list[BaseException] = []

    def flush(log: CallLog) -> None:
        try:
            barrier.wait()
            for _ in range(200):
                if not log.flush_backlog(limit=5) and not redis_client.llen(log.backlog_key):
                    return
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(log,)) for log in flushers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == [] and total == len(sids) * 10
    assert redis_client.llen(down.backlog_key) == 0
    for sid in sids:
        assert [e.data["i"] for e in events_of(sessions, sid)] == list(range(8))
        assert call_of(sessions, sid).status == "completed"


def test_a_flusher_with_a_stale_batch_does_not_drop_records_it_never_saw(
        sessions, redis_client, key_prefix):
    first, second = (make_log(sessions, redis_client, key_prefix) for _ in range(2))
    redis_client.rpush(first.backlog_key, "r1", "r2")
    stale = redis_client.lrange(first.backlog_key, 0, -1)

    first._trim(keys=[first.backlog_key], args=stale)  # the first flusher finishes
    redis_client.rpush(first.backlog_key, "r3", "r4")
    second._trim(keys=[second.backlog_key], args=stale)  # the second, late, with its old batch

    assert redis_client.lrange(first.backlog_key, 0, -1) == [b"r3", b"r4"]


def test_a_record_the_database_rejects_moves_aside_without_blocking_the_rest(
        sessions, broken_sessions, redis_client, key_prefix, caplog):
    down = make_log(broken_sessions, redis_client, key_prefix)
    sid = new_sid()
    start(down, sid)
    redis_client.rpush(down.backlog_key, "not json", json.dumps({"op": "bogus"}))
    down.add_events(sid, [{"at": T0, "node": "after", "kind": "prompt", "data": {}}])

    up = make_log(sessions, redis_client, key_prefix)
    assert up.flush_backlog() == 2

    assert call_of(sessions, sid) is not None
    assert [e.node for e in events_of(sessions, sid)] == ["after"]
    assert redis_client.lrange(up.dead_key, 0, -1) == [b"not json", b'{"op": "bogus"}']
    assert redis_client.llen(up.backlog_key) == 0
    assert "moved to" in caplog.text


@pytest.mark.parametrize("redis_down", ["closed port", "no redis"])
def test_when_redis_fails_too_the_whole_record_is_logged_as_an_error(
        broken_sessions, key_prefix, caplog, redis_down):
    closed = redis.Redis(host="127.0.0.1", port=1, retry=None)  # refused at once, no retries
    client = closed if redis_down == "closed port" else None
    log = make_log(broken_sessions, client, key_prefix)
    sid = new_sid()

    with caplog.at_level(logging.ERROR):
        start(log, sid)
        log.add_events(sid, [{"at": T0, "node": "menu", "kind": "key", "data": {"d": "7"}}])

    lost = [r.getMessage() for r in caplog.records
            if r.levelno == logging.ERROR and "LOST RECORD" in r.getMessage()]
    assert len(lost) == 2
    record = json.loads(lost[1][lost[1].index("{"):])
    assert record["op"] == "events" and record["call_sid"] == sid
    assert record["events"][0]["data"] == {"d": "7"}
    assert record["events"][0]["at"] == T0.isoformat()


def test_after_a_failure_the_database_is_left_alone_briefly(broken_sessions, redis_client,
                                                            key_prefix):
    now = [100.0]
    log = make_log(broken_sessions, redis_client, key_prefix, retry_after=5,
                   clock=lambda: now[0])
    sid = new_sid()

    start(log, sid)  # fails: the database is resting for 5 seconds
    assert log._db_resting()
    log.add_events(sid, [{"at": T0, "node": "a", "kind": "prompt", "data": {}}])
    assert log.previous_calls("+15550001111", T0) == 0
    now[0] += 6

    assert not log._db_resting()
    assert [r["op"] for r in backlog(redis_client, log)] == ["start", "events"]
