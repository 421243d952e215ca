"""The line of kept text webhooks against a real Redis, with two processes (two instances)
replaying it: nothing handled twice that a pass already finished, nothing dropped that
nobody handled, when a lock lapses mid-item or a pass dies before taking its item out."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from ivr_server.redis_conn import connect
from ivr_server.sms_deferred import DeferredTexts

AT = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def never_transient(exc: Exception) -> bool:
    return False


@pytest.fixture
def line(redis_url: str, redis_prefix: str) -> tuple[DeferredTexts, DeferredTexts]:
    """The same kept line as two web processes see it."""
    return (DeferredTexts(connect(redis_url), redis_prefix),
            DeferredTexts(connect(redis_url), redis_prefix))


def keep(texts: DeferredTexts, *bodies: str) -> None:
    for body in bodies:
        texts.keep("incoming", {"Body": body, "MessageSid": f"SM{body}"}, AT)


def test_a_pass_whose_lock_lapsed_mid_item_drops_nothing_it_did_not_handle(line):
    a, b = line
    keep(a, "STOP", "START", "HELLO")
    handled: list[tuple[str, str]] = []

    def slow_in_a(kind: str, form: dict[str, str], at: dt.datetime) -> None:
        handled.append(("a", form["Body"]))
        if form["Body"] == "STOP":  # the database is slow: a's lock lapses meanwhile
            a.redis.delete(a.lock_name)
            b.replay(lambda k, f, t: handled.append(("b", f["Body"])), never_transient,
                     limit=1)  # b takes the lock and the STOP

    assert a.replay(slow_in_a, never_transient) == 0  # it noticed it had lost the line
    assert b.replay(lambda k, f, t: handled.append(("b", f["Body"])), never_transient) == 2

    assert [body for _, body in handled] == ["STOP", "STOP", "START", "HELLO"]
    assert a.redis.llen(a.key) == 0


def test_a_pass_that_died_before_taking_its_item_out_is_not_handled_again(line, monkeypatch):
    a, b = line
    keep(a, "CALLBACK", "HELP")
    handled: list[str] = []

    def pop_fails(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("Redis went away between the handling and the pop")

    monkeypatch.setattr(a, "_pop_if_first", pop_fails)
    a.replay(lambda k, f, t: handled.append(f["Body"]), never_transient)
    assert handled == ["CALLBACK"]

    assert b.replay(lambda k, f, t: handled.append(f["Body"]), never_transient) == 2
    assert handled == ["CALLBACK", "HELP"]  # the CALLBACK's reply is not sent twice


def test_after_a_database_failure_the_line_rests_before_trying_again(line):
    a, _ = line
    keep(a, "STOP")
    tries: list[str] = []

    def database_away(kind: str, form: dict[str, str], at: dt.datetime) -> None:
        tries.append(form["Body"])
        raise ConnectionRefusedError("the database is away")

    for _ in range(5):  # the writer's beats, a fraction of a second apart
        a.replay(database_away, lambda exc: True)
    assert tries == ["STOP"]
    assert a.redis.llen(a.key) == 1
