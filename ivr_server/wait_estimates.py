"""A waiting caller's estimate, from the live queue state through the same predictor code the
replay command runs (queue_estimator), so the replay is an honest picture of what callers
hear.

The queue's event log (Redis) is fed through queue_estimator.QueueState, whose state is
kept in Redis and caught up with new events on each request (queue_estimator.resume). For a
caller already waiting, the snapshot keeps only the callers ahead of them, which makes
them the "caller joining now" every predictor is written for: their remaining wait.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from flows.events import WaitEstimate
from queue_estimator.phrasing import phrase
from queue_estimator.predictors import DEFAULT, PREDICTORS, predict
from queue_estimator.resume import resume
from queue_estimator.state import QueueState as EstimatorState

from .queue_state import QueueState

log = logging.getLogger("ivr_server.wait_estimates")


class WaitEstimates:
    def __init__(self, queues: QueueState, predictor: str = DEFAULT):
        if predictor not in PREDICTORS:
            raise ValueError(f"queues.predictor {predictor!r} is not one of "
                             f"{', '.join(sorted(PREDICTORS))}")
        self.queues, self.predictor = queues, predictor

    def state(self, queue: str) -> EstimatorState:
        """The predictor's state after every logged event: the saved state caught up with
        the events since (about a millisecond), rebuilt from the log when there is none."""
        saved = self.queues.load_estimator(queue)
        index = saved.get("next_index", 0) if isinstance(saved, dict) else 0
        # From where the saved state stopped; resume() rebuilds if that was trimmed away.
        events, first = self.queues.events_since(queue, index if isinstance(index, int) else 0)
        rows = [(e.ts, e.event, e.call_id, e.value) for e in events]
        if first > 0 and first != index and rows:
            # Rebuilding from a trimmed log: its opening "agents" event may be gone, so
            # start from the count on duty now (later agents events in the log correct it).
            rows.insert(0, (rows[0][0], "agents", "", str(self.queues.agents(queue) or 0)))
            first -= 1
        state, new_saved = resume(saved, rows, first)
        if rows or saved is None:
            self.queues.save_estimator(queue, new_saved)
        return state

    def remaining(self, queue: str, call_sid: str, now: float) -> WaitEstimate | None:
        """The caller's remaining wait, or None when the queue has too little history or the
        predictor fails (the caller then hears their place only)."""
        return self._estimate(queue, now, lambda waiting: next(
            (i for i, (sid, _) in enumerate(waiting) if sid == call_sid), len(waiting)))

    def remaining_from_place(self, queue: str, place: float, now: float) -> WaitEstimate | None:
        """The wait of someone holding a virtual place (a callback): behind everyone who
        joined before `place`, ahead of everyone after."""
        return self._estimate(queue, now, lambda waiting: sum(
            1 for _, joined in waiting if joined < place))

    def _estimate(self, queue: str, now: float, ahead_of: Any) -> WaitEstimate | None:
        try:
            snapshot = self.state(queue).snapshot(now)
            ahead = ahead_of(snapshot.waiting)
            snapshot = dataclasses.replace(snapshot, waiting=snapshot.waiting[:ahead])
            if snapshot.agents <= 0:
                return None  # nobody on duty: no honest number to give
            prediction = predict(snapshot, self.predictor)
        except (ValueError, ArithmeticError) as exc:
            log.warning("queue %s: no wait estimate: %s", queue, exc)
            return None
        return WaitEstimate(prediction.predicted_wait_s, prediction.p10, prediction.p90,
                            phrase(prediction))
