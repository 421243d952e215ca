"""What the caller hears: short waits, round numbers, never below the median."""

from __future__ import annotations

import pytest

from queue_estimator import Prediction, phrase
from queue_estimator.phrasing import round_minutes


def _p(mean: float, p10: float, p50: float, p90: float) -> Prediction:
    return Prediction(mean, p10, p50, p90, "adaptive", 3, 5)


def test_short_waits_are_less_than_a_minute() -> None:
    assert phrase(_p(0, 0, 0, 0)) == "less than a minute"
    assert phrase(_p(42, 10, 35, 58)) == "less than a minute"


def test_the_headline_is_never_below_the_median() -> None:
    # Mean below the median (a left-skewed case): the median wins and is rounded up.
    assert phrase(_p(100, 60, 250, 300)) == "about 5 minutes"
    assert phrase(_p(50, 10, 70, 80)) == "about 2 minutes"


def test_one_minute_is_singular() -> None:
    assert phrase(_p(60, 40, 55, 80)) == "about 1 minute"


def test_a_wide_interval_is_said_as_a_range() -> None:
    assert phrase(_p(230, 120, 200, 410)) == "between 4 and 7 minutes"


def test_a_float_hair_above_a_round_number_is_not_rounded_up() -> None:
    assert phrase(_p(360.0007, 300, 340, 400)) == "about 6 minutes"


def test_long_waits_are_rounded_to_fives_then_tens_then_hours() -> None:
    assert phrase(_p(13 * 60, 11 * 60, 12 * 60, 15 * 60)) == "about 15 minutes"
    assert phrase(_p(41 * 60, 38 * 60, 40 * 60, 47 * 60)) == "about 40 minutes"
    assert phrase(_p(44 * 60, 38 * 60, 44 * 60, 50 * 60)) == "about 50 minutes"
    assert phrase(_p(80 * 60, 70 * 60, 75 * 60, 95 * 60)) == "more than an hour"
    assert phrase(_p(130 * 60, 100 * 60, 125 * 60, 150 * 60)) == "about 2 hours"
    assert phrase(_p(5 * 3600, 4 * 3600, 5 * 3600, 6 * 3600)) == "more than 3 hours"


@pytest.mark.parametrize("minutes", [0.2, 1.0, 1.01, 4.5, 9.99, 10.5, 29, 31, 59])
def test_rounding_is_to_round_numbers_and_never_below_the_median(minutes: float) -> None:
    rounded = round_minutes(minutes, at_least=minutes)
    assert rounded >= minutes
    assert rounded <= 10 or rounded % 5 == 0
    assert rounded - minutes < (1 if minutes <= 10 else 10)
