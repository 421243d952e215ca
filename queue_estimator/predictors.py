"""Predictors by name, each turning a Snapshot into a Prediction with an interval."""

from __future__ import annotations

from collections.abc import Callable

from .adaptive import adaptive, gamma_interval
from .published import PUBLISHED, departures_needed
from .snapshot import Prediction, Snapshot

DEFAULT = "adaptive"


def _published(name: str, formula: Callable[[Snapshot], float]) -> Callable[..., Prediction]:
    def predict(snap: Snapshot) -> Prediction:
        # The published methods give a mean only; their interval is the one their own
        # model implies: the wait as a sum of exponential agent releases.
        point = max(0.0, formula(snap))
        p10, p50, p90 = gamma_interval(point, max(1, departures_needed(snap)))
        return Prediction(point, min(p10, point), p50, max(p90, point), name,
                          snap.ahead, snap.agents)

    predict.__doc__ = formula.__doc__
    return predict


PREDICTORS: dict[str, Callable[[Snapshot], Prediction]] = {
    DEFAULT: adaptive,
    **{name: _published(name, formula) for name, formula in PUBLISHED.items()},
}


def predict(snap: Snapshot, predictor: str = DEFAULT) -> Prediction:
    """The named predictor's estimate for a caller joining the queue now."""
    chosen = PREDICTORS.get(predictor)
    if chosen is None:
        raise ValueError(f"unknown predictor {predictor!r} (choose from {', '.join(PREDICTORS)})")
    return chosen(snap)
