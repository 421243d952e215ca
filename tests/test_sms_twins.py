"""Identical texts to one number take turns; a dead worker's own turn never holds its text."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ivr_server.redis_conn import connect
from ivr_server.simulator import new_sid
from ivr_server.sms_twins import TwinStillSending, twins_take_turns

from .helpers import fresh_number


class StoppedClock:
    """Time passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def turns(redis_url: str):  # noqa: ANN201 - a function taking a message's turn
    redis, prefix, clock = connect(redis_url), f"test-twins-{new_sid('')}:", StoppedClock()

    def take(message: SimpleNamespace):  # noqa: ANN202
        return twins_take_turns(redis, prefix, message, 5.0, clock=clock, sleep=clock.sleep)

    yield take
    for key in redis.scan_iter(match=f"{prefix}*"):
        redis.delete(key)
    redis.close()


def text(message_id: int, to: str, body: str = "You're number 2 in line.") -> SimpleNamespace:
    return SimpleNamespace(id=message_id, to_number=to, body=body)


def test_a_twin_waits_for_the_text_being_sent_then_gives_up_for_a_later_retry(turns):
    to = fresh_number()
    with turns(text(1, to)), pytest.raises(TwinStillSending, match="still being sent"), \
            turns(text(2, to)):
        pass


def test_the_retry_of_a_text_whose_worker_died_mid_send_takes_its_turn_at_once(turns):
    to = fresh_number()
    dead_worker = turns(text(7, to))
    dead_worker.__enter__()  # killed holding it: never released
    with turns(text(7, to)) as waited:
        assert not waited


def test_texts_to_other_numbers_or_with_other_words_never_wait(turns):
    to = fresh_number()
    with turns(text(1, to)), turns(text(2, fresh_number())) as waited, \
            turns(text(3, to, "Other words")) as other_words:
        assert not waited and not other_words
    with turns(text(4, to)) as waited:  # given back: the next one goes straight in
        assert not waited
