"""Live queue state in Redis: every caller counted once, whatever order or how often Twilio
and several web processes report them; lost callbacks expire."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ivr_server.queue_state import QueueState
from ivr_server.redis_conn import connect


@pytest.fixture
def queues(redis_url: str, redis_prefix: str) -> Iterator[QueueState]:
    client = connect(redis_url)
    yield QueueState(client, redis_prefix, stale_after=3600)
    client.close()


def test_a_caller_waits_is_answered_and_finishes(queues: QueueState) -> None:
    queues.set_agents("support", 2, 0)
    assert queues.arrive("support", "CA1", 10)
    assert queues.arrive("support", "CA2", 12)
    assert [sid for sid, _ in queues.waiting("support")] == ["CA1", "CA2"]
    assert queues.answer("support", "CA1", 40)
    assert queues.in_service("support") == {"CA1": 40.0}
    assert queues.hangup("support", "CA1", 100)
    assert [(e.event, e.call_id) for e in queues.events("support")] == [
        ("agents", ""), ("arrive", "CA1"), ("arrive", "CA2"), ("answer", "CA1"),
        ("hangup", "CA1")]
    assert queues.agents("support") == 2


def test_repeated_and_out_of_order_reports_count_once(queues: QueueState) -> None:
    assert queues.arrive("support", "CA1", 10)
    assert not queues.arrive("support", "CA1", 11), "a retried wait request"
    assert not queues.hangup("support", "CA1", 12), "not with an agent yet"
    assert queues.answer("support", "CA1", 20)
    assert not queues.answer("support", "CA1", 21)
    assert not queues.arrive("support", "CA1", 22), "with an agent: not waiting again"
    assert not queues.abandon("support", "CA1", 23), "answered callers do not abandon"
    assert queues.hangup("support", "CA1", 30)
    assert not queues.hangup("support", "CA1", 31)
    assert [e.event for e in queues.events("support")] == ["arrive", "answer", "hangup"]


def test_many_processes_reporting_the_same_answer_count_it_once(redis_url: str,
                                                               redis_prefix: str) -> None:
    setup = QueueState(connect(redis_url), redis_prefix)
    for i in range(20):
        setup.arrive("sales", f"CA{i}", i)
    results: list[bool] = []

    def worker() -> None:
        mine = QueueState(connect(redis_url), redis_prefix)  # its own connection, as a process
        results.extend(mine.answer("sales", f"CA{i}", 100 + i) for i in range(20))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 20
    assert [e.event for e in setup.events("sales")].count("answer") == 20


def test_callers_whose_end_was_never_reported_expire(queues: QueueState) -> None:
    queues.arrive("support", "CA-lost", 0)
    queues.arrive("support", "CA-new", 3000)
    queues.arrive("support", "CA-busy", 5)
    queues.answer("support", "CA-busy", 10)
    assert queues.expire_stale("support", now=4000) == 2
    assert [sid for sid, _ in queues.waiting("support")] == ["CA-new"]
    assert queues.in_service("support") == {}
    assert [e.event for e in queues.events("support")][-2:] == ["abandon", "hangup"]


def test_stale_callers_are_looked_for_once_a_minute_not_on_every_wait_poll(
        queues: QueueState) -> None:
    queues.arrive("support", "CA-early", 0)
    assert queues.expire_stale("support", now=100) == 0
    queues.arrive("support", "CA-lost-too", 1)
    assert queues.expire_stale("support", now=4000) == 2  # the last look was long ago
    queues.arrive("support", "CA-late", 2)
    assert queues.expire_stale("support", now=4030) == 0  # looked 30 s ago: not yet
    assert queues.expire_stale("support", now=4061) == 1


def test_the_event_log_keeps_the_most_recent_events(redis_url: str, redis_prefix: str) -> None:
    small = QueueState(connect(redis_url), redis_prefix, max_events=5)
    for i in range(8):
        small.arrive("q", f"CA{i}", i)
    assert [e.call_id for e in small.events("q")] == ["CA3", "CA4", "CA5", "CA6", "CA7"]


def test_agents_on_duty_are_logged_only_when_they_change(queues: QueueState) -> None:
    assert queues.set_agents("support", 3, 0)
    assert not queues.set_agents("support", 3, 5)
    assert queues.set_agents("support", 2, 9)
    assert [(e.event, e.value) for e in queues.events("support")] == [
        ("agents", "3"), ("agents", "2")]
    with pytest.raises(ValueError):
        queues.set_agents("support", -1, 10)


def test_agents_signing_in_and_out_set_who_is_on_duty(queues: QueueState) -> None:
    assert queues.sign_in("support", "ada", 0)
    assert not queues.sign_in("support", "ada", 1), "already on duty"
    assert queues.sign_in("support", "grace", 2)
    assert queues.on_duty("support") == ["ada", "grace"] and queues.agents("support") == 2
    assert queues.sign_out("support", "ada", 3)
    assert not queues.sign_out("support", "ada", 4)
    assert queues.agents("support") == 1
    assert [(e.event, e.value) for e in queues.events("support")] == [
        ("agents", "1"), ("agents", "2"), ("agents", "1")]
    with pytest.raises(ValueError):
        queues.sign_in("support", " ", 5)
