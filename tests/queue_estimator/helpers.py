"""Small event logs for the queue_estimator tests."""

from __future__ import annotations

from pathlib import Path

from bench.queue_sim import Dist, Scenario, simulate, write_csv

# A short day with unlogged after-call work: the case QL gets wrong by construction.
SMALL_ACW = Scenario(
    "test_acw", "6 agents, 60 s after-call work not in the log", hours=6, rate_per_hour=85,
    staffing=((0, 6), (3 * 3600, 5)), service=Dist("exp", 180), patience=Dist("exp", 600),
    acw=Dist("uniform", 40, 80))


def small_log(tmp_path: Path, seed: int = 7, hours: float = 1.5) -> Path:
    """A simulated log (CSV) of a few hundred rows."""
    scenario = Scenario("test_small", "3 agents", hours=hours, rate_per_hour=40,
                        staffing=((0, 3), (hours * 1800, 2)), service=Dist("lognormal", 200, 1.0),
                        patience=Dist("exp", 400), acw=Dist("uniform", 10, 30))
    path = tmp_path / "events.csv"
    write_csv(simulate(scenario, seed).rows, str(path))
    return path
