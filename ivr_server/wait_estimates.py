"""A waiting caller's estimate, from the live queue state through the same predictor code the
replay command runs (queue_estimator), so the replay is an honest picture of what callers
hear.

The queue's recent event log (Redis) is fed through queue_estimator.QueueState. For a
caller already waiting, the snapshot keeps only the callers ahead of them, which makes
them the "caller joining now" every predictor is written for: their remaining wait.
"""

from __future__ import annotations

import dataclasses
import logging

from flows.events import WaitEstimate
from queue_estimator.phrasing import phrase
from queue_estimator.predictors import DEFAULT, PREDICTORS, predict
from queue_estimator.state import QueueState as EstimatorState

from .queue_state import QueueState

log = logging.getLogger("ivr_server.wait_estimates")


class WaitEstimates:
    def __init__(self, queues: QueueState, predictor: str = DEFAULT):
        if predictor not in PREDICTORS:
            raise ValueError(f"queues.predictor {predictor!r} is not one of "
                             f"{', '.join(sorted(PREDICTORS))}")
        self.queues, self.predictor = queues, predictor

    def remaining(self, queue: str, call_sid: str, now: float) -> WaitEstimate | None:
        """The caller's remaining wait, or None when the queue has too little history or the
        predictor fails (the caller then hears their place only)."""
        try:
            events = [(e.ts, e.event, e.call_id, e.value) for e in self.queues.events(queue)]
            snapshot = EstimatorState.from_events(events).snapshot(now)
            ahead = next((i for i, (sid, _) in enumerate(snapshot.waiting) if sid == call_sid),
                         len(snapshot.waiting))
            snapshot = dataclasses.replace(snapshot, waiting=snapshot.waiting[:ahead])
            if snapshot.agents <= 0:
                return None  # nobody on duty: no honest number to give
            prediction = predict(snapshot, self.predictor)
        except (ValueError, ArithmeticError) as exc:
            log.warning("queue %s: no wait estimate: %s", queue, exc)
            return None
        return WaitEstimate(prediction.predicted_wait_s, prediction.p10, prediction.p90,
                            phrase(prediction))
