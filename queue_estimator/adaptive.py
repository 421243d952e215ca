"""The default predictor, `adaptive`: learn from where the published ones fail, then combine.

The experts (experts.py) fix the published predictors' known failures: after-call work the
log does not show, staffing changes, non-exponential talk times in small teams, and the
abandonment that shortens the waits of the callers who stay. QL-m is kept as an expert, with
short and long memory, and is the fallback the learner starts from: it is the best estimate
when its model holds, and in a one-agent queue the others' gains drown in noise. The learner
(learner.py) weights the experts by their recent squared errors on callers whose real wait
became known, and the interval comes from the recent errors of the combination itself, per
queue depth, so p10..p90 holds about 80 % of real waits in this queue rather than in a
textbook one.
"""

from __future__ import annotations

import math

from .experts import EXPERTS, FALLBACK, experts
from .learner import OFFSET_S, Learner, bucket_of
from .snapshot import Prediction, Snapshot

Z10 = -1.2815515655446004  # standard normal 10 % point


def new_learner() -> Learner:
    return Learner(len(EXPERTS), tuple(EXPERTS.index(name) for name in FALLBACK))


def adaptive(snap: Snapshot) -> Prediction:
    """Default predictor: weighted experts with a calibrated interval."""
    estimates, k = experts(snap)
    learned = snap.learned
    weights = learned.weights if learned is not None else new_learner().weights
    point = sum(w * e for w, e in zip(weights, estimates, strict=True))
    quantiles = learned.error_quantiles[bucket_of(k)] if learned is not None else None
    point = max(0.0, point)
    if quantiles is None:
        p10, p50, p90 = gamma_interval(point, max(k, 1))
    else:
        p10, p50, p90 = _from_errors(point, quantiles)
    return Prediction(point, min(p10, point), p50, max(p90, point), "adaptive",
                      snap.ahead, snap.agents)


def _from_errors(point: float, q: tuple[float, float, float, float]) -> tuple[float, ...]:
    base = point + OFFSET_S
    p10, p50, p80, p90 = (max(0.0, base * math.exp(e) - OFFSET_S) for e in q)
    # Waits cannot be negative: when the low end is 0 the interval [0, p80] already holds
    # 80 % of the waits, and [0, p90] would hold 90 %.
    return (0.0, p50, p80) if p10 <= 0.0 else (p10, p50, p90)


def gamma_interval(mean: float, shape: int) -> tuple[float, float, float]:
    """p10, p50, p90 of a Gamma(shape) wait with this mean (Wilson-Hilferty), as for a sum
    of `shape` exponential agent releases; also the published predictors' interval."""
    if mean <= 0:
        return 0.0, 0.0, 0.0
    c = 1.0 / (9.0 * shape)
    p10, p50, p90 = (mean * max(0.0, 1.0 - c + z * math.sqrt(c)) ** 3 for z in (Z10, 0.0, -Z10))
    return p10, p50, p90
