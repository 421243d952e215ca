"""Online learning from callers whose real wait became known (the default predictor's memory).

When a caller reaches an agent we know what each expert said at their arrival and what
actually happened. We keep (1) each expert's recent squared error, with exponential
forgetting, and weight the experts by exp(-ETA * excess error / recent mean squared wait)
(the exponentially weighted average forecaster: it follows whichever estimates work for
this queue, and averaging close experts cancels part of their noise), starting from prior
weights that favour the fallback experts (QL-m: in a small, noisy queue another expert
must earn its weight over many callers, not win it by chance), and (2) recent errors
of the combination per queue-depth bucket, whose quantiles give a calibrated p10..p90.
Everything is causal: an error is measured with the weights as they were before that
caller was learned. Plain floats and lists, so it serialises.
"""

from __future__ import annotations

import math
from collections import deque

from .snapshot import Learned

ETA = 0.35  # learning rate of the weights (tuned on the benchmark's tuning seeds)
FORGET = 1.0 - 1.0 / 2000.0  # per learned caller: ~2000 callers of memory (errors are noisy)
ERRORS_KEPT = 200  # per bucket
MIN_ERRORS = 25  # below this a bucket borrows the pooled errors
OFFSET_S = 10.0  # errors are log((actual + OFFSET) / (predicted + OFFSET))
BUCKETS = 4  # releases needed: 0, 1, 2-4, 5+
HANDICAP = 6.0  # callers' worth of squared wait a non-fallback expert must first win back


def bucket_of(releases: int) -> int:
    """Queue-depth bucket: relative errors shrink as more releases are needed."""
    if releases <= 0:
        return 0
    if releases == 1:
        return 1
    return 2 if releases <= 4 else 3


def _quantile(ordered: list[float], q: float) -> float:
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class Learner:
    """Expert weights and error quantiles, updated one answered caller at a time."""

    def __init__(self, experts: int, fallback: tuple[int, ...] = (0,)) -> None:
        self.fallback = tuple(fallback)
        # Prior weights: the fallback experts (QL-m) start ahead, so an expert that is only
        # better by chance in a noisy queue does not take over from them.
        self.prior = tuple(1.0 if i in self.fallback else math.exp(-ETA * HANDICAP)
                           for i in range(experts))
        self.losses = [0.0] * experts
        self.squared_waits = 0.0
        self.count = 0.0  # discounted number of callers learned
        self.weights = tuple(p / sum(self.prior) for p in self.prior)
        self.samples = 0
        self.errors: list[deque[float]] = [deque(maxlen=ERRORS_KEPT) for _ in range(BUCKETS)]
        self._learned: Learned | None = None

    def predict(self, estimates: tuple[float, ...]) -> float:
        return max(0.0, sum(w * e for w, e in zip(self.weights, estimates, strict=True)))

    def learn(self, estimates: tuple[float, ...], bucket: int, actual: float) -> None:
        """A caller reached an agent after `actual` seconds; estimates are from arrival."""
        error = math.log((actual + OFFSET_S) / (self.predict(estimates) + OFFSET_S))
        self.errors[min(max(bucket, 0), BUCKETS - 1)].append(error)
        self.losses = [FORGET * loss + (e - actual) ** 2
                       for loss, e in zip(self.losses, estimates, strict=True)]
        self.squared_waits = FORGET * self.squared_waits + actual * actual
        self.count = FORGET * self.count + 1.0
        scale = max(self.squared_waits / self.count, 1.0)
        best = min(self.losses)
        raw = [p * math.exp(-ETA * (loss - best) / scale)
               for p, loss in zip(self.prior, self.losses, strict=True)]
        total = sum(raw)
        self.weights = tuple(r / total for r in raw)
        self.samples += 1
        self._learned = None

    def learned(self) -> Learned:
        """Weights and per-bucket error quantiles (q10, q50, q80, q90), cached."""
        if self._learned is None:
            pooled = sorted(e for errs in self.errors for e in errs)
            quantiles = []
            for errs in self.errors:
                ordered = sorted(errs) if len(errs) >= MIN_ERRORS else pooled
                if len(ordered) < MIN_ERRORS:
                    quantiles.append(None)
                else:
                    quantiles.append(tuple(_quantile(ordered, q) for q in (.1, .5, .8, .9)))
            self._learned = Learned(self.weights, tuple(quantiles), self.samples)
        return self._learned

    def to_dict(self) -> dict:
        return {"losses": self.losses[:], "fallback": list(self.fallback),
                "squared_waits": self.squared_waits,
                "count": self.count, "weights": list(self.weights), "samples": self.samples,
                "errors": [list(e) for e in self.errors]}

    @classmethod
    def from_dict(cls, data: dict) -> Learner:
        self = cls(len(data["losses"]), tuple(int(i) for i in data.get("fallback", [0])))
        self.losses = [float(x) for x in data["losses"]]
        self.squared_waits = float(data["squared_waits"])
        self.count = float(data["count"])
        self.weights = tuple(float(x) for x in data["weights"])
        self.samples = int(data["samples"])
        for target, saved in zip(self.errors, data["errors"], strict=True):
            target.extend(float(x) for x in saved)
        return self
