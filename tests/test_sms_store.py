"""What the SMS records keep: opt-outs for good, every message with its status, and one
survey per call, whichever process asks first."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from ivr_server.db import make_engine, make_session_factory
from ivr_server.simulator import new_sid
from ivr_server.sms_store import SmsStore

from .helpers import fresh_number

NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(database_url: str) -> SmsStore:
    return SmsStore(make_session_factory(make_engine(database_url)))


def number() -> str:
    """A number of its own per test: the database outlives a test run."""
    return fresh_number("415")


def test_stop_and_start_are_kept_and_only_changes_count(store: SmsStore) -> None:
    who = number()
    assert not store.opted_out(who)
    assert store.set_opt_out(who, True, "STOP", NOW)
    assert not store.set_opt_out(who, True, "QUIT", NOW), "already opted out"
    assert store.opted_out(who)
    assert store.set_opt_out(who, False, "START", NOW)
    assert not store.opted_out(who)


def test_a_message_is_stored_with_its_call_and_follows_its_delivery_status(store) -> None:
    call, sid = new_sid("CA"), new_sid("SM")
    message = store.add_message(direction="outbound", kind="wait_estimate", to_number=number(),
                                from_number="+15005550006", body="You're number 2.",
                                status="queued", at=NOW, call_sid=call)
    store.update_message(message, status="sent", at=NOW, message_sid=sid)
    assert store.status_by_sid(sid, "delivered", NOW)
    assert not store.status_by_sid(new_sid("SM"), "delivered", NOW), "not ours"
    [row] = store.messages_for_call(call)
    assert (row.status, row.message_sid, row.kind) == ("delivered", sid, "wait_estimate")


def test_a_survey_is_asked_once_per_call_even_when_processes_race(store: SmsStore) -> None:
    who, call = number(), new_sid("CA")
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(
        store.start_survey(who, call, NOW))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert store.survey_state(who) == (NOW, False)


def test_a_calls_end_learns_the_last_survey_and_the_opt_out_in_one_go(store) -> None:
    who = number()
    assert store.survey_state(who) == (None, False)  # never surveyed, never opted out
    store.start_survey(who, new_sid("CA"), NOW - dt.timedelta(days=40))
    store.start_survey(who, new_sid("CA"), NOW - dt.timedelta(days=3))
    store.set_opt_out(who, True, "STOP", NOW)
    assert store.survey_state(who) == (NOW - dt.timedelta(days=3), True)


def test_a_survey_answer_goes_to_the_latest_open_survey(store: SmsStore) -> None:
    who, first, second = number(), new_sid("CA"), new_sid("CA")
    store.start_survey(who, first, NOW - dt.timedelta(days=40))
    store.start_survey(who, second, NOW)
    assert store.answer_survey(who, 4, NOW) == second
    assert store.answer_survey(who, 5, NOW) == first, "then the older one still open"
    assert store.answer_survey(who, 3, NOW) is None
