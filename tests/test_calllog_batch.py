"""One flush of the queued call log applies many calls' records at once (starts in one
statement, events in another) and leaves every call exactly as record-by-record writes would."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from .calllog_helpers import *  # noqa: F403  (the fixtures, used by name)
from .calllog_helpers import T0, call_of, events_of, make_log, new_sid, start


def test_a_batch_of_interleaved_calls_leaves_each_call_and_its_timeline_right(
        sessions, broken_sessions, redis_client, key_prefix):
    down = make_log(broken_sessions, redis_client, key_prefix)  # queues everything
    a, b, c, d = (new_sid() for _ in range(4))

    start(down, a, number="+15550000001")
    down.call_ended(call_sid=b, status="no-answer", outcome="abandoned", duration=20,
                    at=T0 + timedelta(seconds=20), tags={})
    start(down, c, number="+15550000003")
    start(down, d, number="+15550000004")
    start(down, c, at=T0 + timedelta(seconds=5), number="+15550009999")  # Twilio's retry
    down.add_events(a, [{"at": T0, "node": "menu", "kind": "key", "data": {"digits": "1"}},
                        {"at": T0, "node": "desk", "kind": "transfer", "data": {}}])
    start(down, b, at=T0 + timedelta(seconds=1), number="+15550000002")  # a late start
    down.call_ended(call_sid=a, status="completed", outcome="transferred", duration=30,
                    at=T0 + timedelta(seconds=30), tags={"split": "x"})
    down.add_events(d, [{"at": T0, "node": "greet", "kind": "prompt", "data": {"text": "Hi"}}])
    assert redis_client.llen(down.backlog_key) == 9

    up = make_log(sessions, redis_client, key_prefix)
    assert up.flush_backlog() == 9  # one batch
    assert redis_client.llen(up.backlog_key) == 0

    call_a, call_b, call_c, call_d = (call_of(sessions, sid) for sid in (a, b, c, d))
    assert (call_a.status, call_a.outcome, call_a.from_number, call_a.tags) == (
        "completed", "transferred", "+15550000001", {"split": "x"})
    assert (call_b.status, call_b.outcome, call_b.from_number, call_b.started_at) == (
        "no-answer", "abandoned", "+15550000002", T0 + timedelta(seconds=1))
    assert (call_c.status, call_c.from_number, call_c.started_at) == (
        "in-progress", "+15550000003", T0)  # the first start wins
    assert (call_d.status, call_d.from_number) == ("in-progress", "+15550000004")
    assert [(e.node, e.kind) for e in events_of(sessions, a)] == [("menu", "key"),
                                                                 ("desk", "transfer")]
    assert [e.data for e in events_of(sessions, d)] == [{"text": "Hi"}]


def test_calls_ending_back_to_back_are_each_logged_with_what_their_end_said(
        sessions, broken_sessions, redis_client, key_prefix):
    down = make_log(broken_sessions, redis_client, key_prefix)  # queues everything
    a, b, c = (new_sid() for _ in range(3))
    for sid in (a, b, c):
        start(down, sid, number="+15550000001")
    ended = T0 + timedelta(seconds=40)
    down.call_ended(call_sid=a, status="completed", outcome="self-served", duration=40,
                    at=ended, tags={})
    down.call_ended(call_sid=b, status="busy", outcome="failed", duration=0, at=ended, tags={})
    down.call_ended(call_sid=a, status="completed", outcome=None, duration=None, at=ended,
                    tags={})  # Twilio's retry of a's status callback, knowing less
    down.call_ended(call_sid=c, status="completed", outcome="transferred", duration=12,
                    at=ended, tags={"vip": "yes"})
    down.call_ended(call_sid=b, status="busy", outcome="failed", duration=0, at=ended, tags={})

    up = make_log(sessions, redis_client, key_prefix)
    assert up.flush_backlog() == 8  # one batch

    call_a, call_b, call_c = (call_of(sessions, sid) for sid in (a, b, c))
    assert (call_a.status, call_a.outcome, call_a.duration) == ("completed", "self-served", 40)
    assert (call_b.status, call_b.outcome, call_b.duration) == ("busy", "failed", 0)
    assert (call_c.outcome, call_c.duration, call_c.tags) == ("transferred", 12, {"vip": "yes"})


def test_queued_events_get_distinct_uuid4_ids_fixed_before_the_first_try(
        broken_sessions, redis_client, key_prefix):
    down = make_log(broken_sessions, redis_client, key_prefix)
    sid = new_sid()
    down.add_events(sid, [{"at": T0, "node": f"n{i}", "kind": "prompt", "data": {}}
                          for i in range(50)])
    down.add_events(sid, [{"at": T0, "node": "again", "kind": "prompt", "data": {}}])

    ids = [ev["event_id"] for raw in redis_client.lrange(down.backlog_key, 0, -1)
           for ev in json.loads(raw)["events"]]
    assert len(ids) == len(set(ids)) == 51
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert (parsed.hex, parsed.version, parsed.variant) == (event_id, 4, uuid.RFC_4122)
