"""The published predictors on hand-computed queues."""

from __future__ import annotations

import pytest

from queue_estimator import QueueState, predict
from queue_estimator.published import PRIOR_SERVICE_S, abandon_rate, service_mean


def _busy_queue() -> QueueState:
    """2 agents; two finished calls (100 s and 300 s of talk), one caller who gave up after
    50 s, two calls in progress and three callers waiting."""
    state = QueueState()
    rows = [
        (0, "agents", "", "2"),
        (0, "arrive", "a"), (0, "answer", "a"), (0, "arrive", "b"), (0, "answer", "b"),
        (10, "arrive", "x"), (60, "abandon", "x"),
        (100, "hangup", "a"), (100, "arrive", "c"), (100, "answer", "c"),
        (300, "hangup", "b"), (300, "arrive", "d"), (300, "answer", "d"),
        (310, "arrive", "e"), (320, "arrive", "f"), (330, "arrive", "g"),
    ]
    for row in rows:
        state.ingest(*row)
    return state


def test_ql_is_callers_ahead_plus_one_over_total_service_rate() -> None:
    snap = _busy_queue().snapshot(400)
    assert service_mean(snap) == 200.0  # (100 + 300) / 2
    # n = 3 ahead, s = 2, 1/mu = 200 s: (3 + 1) * 200 / 2
    assert predict(snap, "ql").predicted_wait_s == pytest.approx(400.0)


def test_qlm_sums_release_times_while_callers_ahead_abandon() -> None:
    snap = _busy_queue().snapshot(400)
    # Waits of finished callers: a 0, b 0, x 50 (abandoned), c 0, d 0 -> theta = 1/50.
    theta = abandon_rate(snap)
    assert theta == pytest.approx(1 / 50)
    s_mu = 2 / 200
    expected = sum(1 / (s_mu + i * theta) for i in range(4))  # i = 0..n, n = 3
    assert predict(snap, "qlm").predicted_wait_s == pytest.approx(expected)
    assert predict(snap, "qlm").predicted_wait_s < predict(snap, "ql").predicted_wait_s


def test_hol_is_the_head_callers_elapsed_wait() -> None:
    assert predict(_busy_queue().snapshot(400), "hol").predicted_wait_s == pytest.approx(90)


def test_les_is_the_wait_of_the_last_caller_to_reach_an_agent() -> None:
    state = _busy_queue()
    state.ingest(450, "hangup", "c")
    state.ingest(450, "answer", "e")  # e joined at 310
    assert predict(state.snapshot(460), "les").predicted_wait_s == pytest.approx(140)


def test_asterisk_is_a_three_quarters_moving_average_of_answered_waits() -> None:
    state = QueueState()
    state.ingest(0, "agents", "", 1)
    waits = [(0, 40), (100, 100), (300, 0)]
    for i, (start, wait) in enumerate(waits):
        state.ingest(start, "arrive", f"c{i}")
        state.ingest(start + wait, "answer", f"c{i}")
        state.ingest(start + wait + 1, "hangup", f"c{i}")
    h = 40.0
    for w in (100.0, 0.0):
        h = (3 * h + w) / 4
    assert predict(state.snapshot(400), "asterisk").predicted_wait_s == pytest.approx(h)


def test_a_free_agent_means_no_wait_and_no_agents_still_gives_a_finite_estimate() -> None:
    state = QueueState()
    state.ingest(0, "agents", "", 3)
    assert predict(state.snapshot(5), "ql").predicted_wait_s == 0.0
    state.ingest(10, "agents", "", 0)
    state.ingest(11, "arrive", "a")
    wait = predict(state.snapshot(12), "ql").predicted_wait_s
    assert wait == pytest.approx(2 * PRIOR_SERVICE_S)  # n = 1, treated as one agent


@pytest.mark.parametrize("name", ["adaptive", "ql", "qlm", "hol", "les", "asterisk"])
def test_every_predictor_gives_an_ordered_interval(name: str) -> None:
    p = predict(_busy_queue().snapshot(400), name)
    assert 0 <= p.p10 <= p.predicted_wait_s <= p.p90
    assert p.predictor == name and p.ahead == 3 and p.agents == 2


def test_unknown_predictor_names_the_choices() -> None:
    with pytest.raises(ValueError, match="adaptive"):
        predict(_busy_queue().snapshot(400), "magic")
