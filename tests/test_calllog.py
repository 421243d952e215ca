"""The call log keeps every record: written at once, or queued in Redis and replayed once."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from ivr_server import db
from ivr_server.calllog import CallLog
from ivr_server.models import Call, CallEvent, FlowVersion

try:
    from tests.db_fixtures import (
        fresh_database,
        key_prefix,
        redis_client,
        redis_server,
        unreachable_database_url,
    )
except ImportError:  # tests/ itself is on sys.path (no tests/__init__.py)
    from db_fixtures import (  # type: ignore[no-redef]
        fresh_database,
        key_prefix,
        redis_client,
        redis_server,
        unreachable_database_url,
    )

__all__ = ["key_prefix", "redis_client", "redis_server"]  # fixtures used by name

T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        db.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def module_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(database_url)
    yield db.make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sessions(module_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    with module_sessions.begin() as session:
        for model in (CallEvent, Call, FlowVersion):
            session.execute(delete(model))
    return module_sessions


@pytest.fixture
def broken_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a database that really cannot be reached (OperationalError on connect)."""
    # Not make_engine: for SQLite it would create the missing folder.
    engine = create_engine(db.normalize_url(unreachable_database_url(tmp_path)))
    yield db.make_session_factory(engine)
    engine.dispose()


def make_log(sessions, redis_client, key_prefix, **kwargs) -> CallLog:
    kwargs.setdefault("retry_after", 0)
    return CallLog(sessions, redis_client, key_prefix, logging.getLogger("test.calllog"),
                   **kwargs)


def new_sid() -> str:
    return "CA" + uuid.uuid4().hex


def start(log: CallLog, sid: str, at: datetime = T0, number: str = "+15550001111") -> None:
    log.call_started(call_sid=sid, account_sid="AC" + "1" * 32, from_number=number,
                     to_number="+15559990000", direction="inbound", flow="main",
                     version="abc123", at=at)


def events_of(sessions, sid: str) -> list[CallEvent]:
    with sessions() as session:
        return list(session.scalars(
            select(CallEvent).where(CallEvent.call_sid == sid).order_by(CallEvent.id)))


def call_of(sessions, sid: str) -> Call | None:
    with sessions() as session:
        return session.scalar(select(Call).where(Call.call_sid == sid))


def backlog(redis_client: redis.Redis, log: CallLog) -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange(log.backlog_key, 0, -1)]


# -- writing --------------------------------------------------------------------------------


def test_a_call_round_trips_with_aware_utc_times_and_json_data(sessions, redis_client,
                                                               key_prefix):
    log = make_log(sessions, redis_client, key_prefix)
    sid = new_sid()
    paris = timezone(timedelta(hours=1))

    start(log, sid, at=T0.astimezone(paris))
    log.add_events(sid, [
        {"at": T0 + timedelta(seconds=1), "node": "menu", "kind": "prompt",
         "data": {"text": "Press 1", "choices": ["1", "2"]}},
        {"at": T0 + timedelta(seconds=4), "node": "menu", "kind": "key",
         "data": {"digits": "1", "confidence": 0.93}},
    ])
    log.call_ended(call_sid=sid, status="completed", outcome="self-served", duration=42,
                   at=T0 + timedelta(seconds=42), tags={"greeting_test": "new"})

    call = call_of(sessions, sid)
    assert call is not None
    assert (call.status, call.outcome, call.duration) == ("completed", "self-served", 42)
    assert (call.from_number, call.flow, call.flow_version) == ("+15550001111", "main", "abc123")
    assert call.started_at == T0 and call.started_at.utcoffset() == timedelta(0)
    assert call.ended_at == T0 + timedelta(seconds=42) and call.ended_at.tzinfo is not None
    assert call.tags == {"greeting_test": "new"}
    events = events_of(sessions, sid)
    assert [(e.kind, e.node) for e in events] == [("prompt", "menu"), ("key", "menu")]
    assert events[0].data == {"text": "Press 1", "choices": ["1", "2"]}
    assert events[1].data["confidence"] == pytest.approx(0.93)
    assert events[1].at == T0 + timedelta(seconds=4) and events[1].at.tzinfo is not None
    assert all(len(e.event_id) == 32 for e in events)
    assert redis_client.llen(log.backlog_key) == 0


def test_repeated_start_and_end_webhooks_leave_one_call(sessions, redis_client, key_prefix):
    log = make_log(sessions, redis_client, key_prefix)
    sid = new_sid()

    start(log, sid)
    start(log, sid, at=T0 + timedelta(seconds=5), number="+15550002222")
    log.call_ended(call_sid=sid, status="completed", outcome="transferred", duration=30,
                   at=T0 + timedelta(seconds=30), tags={"a": "b"})
    log.call_ended(call_sid=sid, status="completed", outcome=None, duration=None,
                   at=T0 + timedelta(seconds=30), tags={})

    with sessions() as session:
        calls = list(session.scalars(select(Call).where(Call.call_sid == sid)))
    assert len(calls) == 1
    call = calls[0]
    assert (call.from_number, call.started_at) == ("+15550001111", T0)
    assert (call.outcome, call.duration, call.tags) == ("transferred", 30, {"a": "b"})


def test_ending_an_unknown_call_creates_it_and_a_late_start_fills_in_the_caller(
        sessions, redis_client, key_prefix):
    log = make_log(sessions, redis_client, key_prefix)
    sid = new_sid()

    log.call_ended(call_sid=sid, status="no-answer", outcome="abandoned", duration=20,
                   at=T0 + timedelta(seconds=20), tags={})
    call = call_of(sessions, sid)
    assert call is not None
    assert (call.status, call.outcome, call.from_number) == ("no-answer", "abandoned", None)
    assert call.started_at == T0  # its end minus its length

    start(log, sid, at=T0 + timedelta(seconds=1))
    call = call_of(sessions, sid)
    assert (call.status, call.from_number) == ("no-answer", "+15550001111")
    assert call.started_at == T0 + timedelta(seconds=1)


def test_overlong_values_are_cut_to_their_columns_rather_than_rejected(sessions, redis_client,
                                                                       key_prefix):
    log = make_log(sessions, redis_client, key_prefix)
    sid = new_sid()

    log.add_events(sid, [{"at": T0, "node": "n" * 300, "kind": "k" * 300, "data": {}}])

    [event] = events_of(sessions, sid)
    assert (len(event.node), len(event.kind)) == (100, 40)


def test_bad_input_is_logged_and_never_raised(sessions, redis_client, key_prefix, caplog):
    log = make_log(sessions, redis_client, key_prefix)

    log.call_started(call_sid=new_sid(), account_sid="", from_number="", to_number="",
                     direction="inbound", flow=None, version=None, at="not a time")  # type: ignore[arg-type]

    assert "could not build a record" in caplog.text


# -- previous calls -------------------------------------------------------------------------


def test_previous_calls_counts_only_earlier_calls_from_that_number(sessions, redis_client,
                                                                   key_prefix):
    log = make_log(sessions, redis_client, key_prefix)
    number, other = "+15551230001", "+15551230002"
    for minutes in (0, 10, 20):
        start(log, new_sid(), at=T0 + timedelta(minutes=minutes), number=number)
    start(log, new_sid(), at=T0, number=other)

    assert log.previous_calls(number, T0) == 0
    assert log.previous_calls(number, T0 + timedelta(minutes=15)) == 2
    assert log.previous_calls(number, T0 + timedelta(days=1)) == 3
    assert log.previous_calls(other, T0 + timedelta(days=1)) == 1
    assert log.previous_calls("+15551230003", T0 + timedelta(days=1)) == 0


@pytest.mark.parametrize("withheld", ["", "anonymous", "Anonymous", "+266696687", "restricted",
                                      "+7378742833", "client:agent42", "  "])
def test_withheld_numbers_are_always_first_time_callers(sessions, redis_client, key_prefix,
                                                        withheld):
    log = make_log(sessions, redis_client, key_prefix)
    for minutes in (0, 10):
        start(log, new_sid(), at=T0 + timedelta(minutes=minutes), number=withheld)

    assert log.previous_calls(withheld, T0 + timedelta(days=1)) == 0


def test_previous_calls_is_zero_and_logged_when_the_database_is_down(
        broken_sessions, redis_client, key_prefix, caplog):
    log = make_log(broken_sessions, redis_client, key_prefix)

    assert log.previous_calls("+15550001111", T0) == 0
    assert "could not count previous calls of +15550001111" in caplog.text


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
