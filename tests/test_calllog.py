"""The call log writes every record at once: calls, events and the count of previous calls."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy import select

from ivr_server.models import Call

from .calllog_helpers import *  # noqa: F403  (the fixtures, used by name)
from .calllog_helpers import T0, call_of, events_of, make_log, new_sid, start

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
