"""Long queues: QL-m's sum over the callers ahead in constant time, to the last digits."""

from __future__ import annotations

import math
import random

import pytest

from queue_estimator import QueueState, predict
from queue_estimator.sums import DIRECT_TERMS, reciprocal_run


def _term_by_term(a: float, theta: float, lo: int, hi: int) -> float:
    return math.fsum(1.0 / (a + j * theta) for j in range(lo, hi))


@pytest.mark.parametrize("theta", [0.0, 1e-9, 1e-5, 0.003, 0.5, 40.0])
@pytest.mark.parametrize("terms", [0, 1, DIRECT_TERMS, DIRECT_TERMS + 1, 500, 20000])
def test_a_run_of_reciprocals_matches_adding_them_one_by_one(theta: float, terms: int) -> None:
    for a in (1e-4, 0.011, 1.0, 7.5):
        for lo in (0, 3, 250):
            exact = _term_by_term(a, theta, lo, lo + terms)
            assert reciprocal_run(a, theta, lo, lo + terms) == pytest.approx(exact, rel=1e-13)


def test_random_runs_stay_within_a_few_ulps() -> None:
    rng = random.Random(8)
    for _ in range(500):
        a, theta = 10 ** rng.uniform(-5, 1), 10 ** rng.uniform(-10, 1)
        lo = rng.randint(0, 100)
        hi = lo + rng.randint(0, 3000)
        exact = _term_by_term(a, theta, lo, hi)
        assert reciprocal_run(a, theta, lo, hi) == pytest.approx(exact, rel=1e-13, abs=0)


def test_a_caller_behind_a_thousand_others_hears_the_textbook_ql_m_wait() -> None:
    # 20 agents; every call talked for 300 s; one caller in ten gave up after 60 s.
    state = QueueState()
    state.ingest(0, "agents", "", 20)
    t = 0.0
    for i in range(200):
        state.ingest(t, "arrive", f"s{i}")
        if i % 10 == 0:
            state.ingest(t + 60, "abandon", f"s{i}")
        else:
            state.ingest(t, "answer", f"s{i}")
            state.ingest(t + 300, "hangup", f"s{i}")
        t += 301
    for i in range(1000):
        state.ingest(t, "arrive", f"w{i}")
    snap = state.snapshot(t)
    theta = snap.abandoned / snap.waited_s  # 20 gave up in 20 * 60 s of waiting
    releases = 1000 + 1 - 20  # 20 agents free now take the first 20
    expected = _term_by_term(20 / 300, theta, 0, releases)
    assert predict(snap, "qlm").predicted_wait_s == pytest.approx(expected, rel=1e-12)
