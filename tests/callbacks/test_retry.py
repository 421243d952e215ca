"""Retries: answered ends it, a machine ends it unless told otherwise, the rest try again."""

from __future__ import annotations

import pytest

from callbacks.errors import CallbackError
from callbacks.retry import RetryPolicy, next_delay

DEFAULT = RetryPolicy()


def test_the_default_is_three_calls_five_then_fifteen_minutes_apart() -> None:
    assert RetryPolicy(3, (300, 900), "stop") == DEFAULT
    assert next_delay(DEFAULT, "no-answer", 1) == 300
    assert next_delay(DEFAULT, "busy", 2) == 900
    assert next_delay(DEFAULT, "busy", 3) is None


def test_an_answered_call_is_never_retried() -> None:
    assert next_delay(DEFAULT, "answered", 1) is None
    assert next_delay(RetryPolicy(on_machine="retry"), "answered", 1) is None


def test_a_machine_stops_by_default_and_retries_when_told_to() -> None:
    assert next_delay(DEFAULT, "machine", 1) is None
    again = RetryPolicy(on_machine="retry")
    assert next_delay(again, "machine", 1) == 300
    assert next_delay(again, "machine", 3) is None


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed", "canceled"])
def test_unanswered_calls_are_retried_until_attempts_run_out(outcome: str) -> None:
    policy = RetryPolicy(attempts=2, delays=(120,))
    assert next_delay(policy, outcome, 1) == 120
    assert next_delay(policy, outcome, 2) is None
    assert next_delay(policy, outcome, 7) is None


def test_the_last_delay_repeats() -> None:
    policy = RetryPolicy(attempts=6, delays=(60, 600))
    assert [next_delay(policy, "busy", n) for n in range(1, 7)] == [60, 600, 600, 600, 600, None]


def test_a_single_attempt_never_retries() -> None:
    once = RetryPolicy(attempts=1, delays=())
    assert next_delay(once, "busy", 1) is None


@pytest.mark.parametrize("outcome", ["No-Answer", "no_answer", "cancelled", " BUSY "])
def test_outcomes_are_read_in_twilio_and_british_spellings(outcome: str) -> None:
    assert next_delay(DEFAULT, outcome, 1) == 300


def test_an_unknown_outcome_is_an_error() -> None:
    with pytest.raises(CallbackError, match='call outcome "ringing": expected one of'):
        next_delay(DEFAULT, "ringing", 1)


def test_from_settings_reads_the_config_forms() -> None:
    assert RetryPolicy.from_settings(4, "300, 900,1800", "retry") == RetryPolicy(
        4, (300, 900, 1800), "retry")
    assert RetryPolicy.from_settings("2", [60], "STOP") == RetryPolicy(2, (60,), "stop")
    assert RetryPolicy(delays=[60, 120]).delays == (60, 120)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"attempts": 0}, "retry attempts 0: must be 1..10"),
    ({"attempts": 11}, "retry attempts 11: must be 1..10"),
    ({"attempts": True}, "retry attempts True: must be 1..10"),
    ({"delays": (300, 0)}, "retry delays (300, 0): each must be a positive number"),
    ({"delays": (-5,)}, "retry delays (-5,): each must be"),
    ({"delays": ()}, "retry delays (): 3 attempts need at least one delay"),
    ({"on_machine": "hangup"}, 'retry on_machine "hangup": use "retry" or "stop"'),
])
def test_bad_policies_are_refused_with_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(CallbackError) as info:
        RetryPolicy(**kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(("args", "message"), [
    (("three", "300", "stop"), "retry attempts 'three': not a whole number"),
    ((3, "5m,15m", "stop"), 'retry delays "5m,15m": expected seconds such as "300,900"'),
    ((3, "300,-1", "stop"), 'retry delays "300,-1": expected seconds'),
    ((3, "300", "maybe"), 'retry on_machine "maybe"'),
])
def test_bad_settings_are_refused_with_the_value(args: tuple, message: str) -> None:
    with pytest.raises(CallbackError) as info:
        RetryPolicy.from_settings(*args)
    assert str(info.value).startswith(message)
