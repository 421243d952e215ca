"""The default predictor against the published ones, on a simulated queue."""

from __future__ import annotations

from bench.queue_sim import simulate
from queue_estimator import Event
from queue_estimator.replay import predict_arrivals

from .helpers import SMALL_ACW


def _scores(seed: int) -> dict[str, tuple[float, float]]:
    """(MSE, coverage of p10..p90) per predictor over answered callers."""
    sim = simulate(SMALL_ACW, seed)
    names = ("adaptive", "ql", "qlm")
    errors = {n: [] for n in names}
    inside = {n: 0 for n in names}
    for call_id, preds in predict_arrivals((Event(*r) for r in sim.rows), names):
        wait = sim.true_wait.get(call_id)
        if wait is None:
            continue
        for n, p in preds.items():
            errors[n].append((p.predicted_wait_s - wait) ** 2)
            inside[n] += p.p10 <= wait <= p.p90
    return {n: (sum(e) / len(e), inside[n] / len(e)) for n, e in errors.items()}


def test_default_beats_ql_and_qlm_when_agents_do_unlogged_after_call_work() -> None:
    for seed in (11, 12):
        scores = _scores(seed)
        assert scores["adaptive"][0] < 0.85 * scores["ql"][0], scores
        assert scores["adaptive"][0] < 0.85 * scores["qlm"][0], scores


def test_default_interval_holds_about_eighty_percent_of_real_waits() -> None:
    coverage = _scores(13)["adaptive"][1]
    assert 0.65 <= coverage <= 0.92
