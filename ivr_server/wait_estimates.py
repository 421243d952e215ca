"""A waiting caller's estimate, from the live queue state through the same predictor code the
replay command runs (queue_estimator), so the replay is an honest picture of what callers
hear.

The queue's event log (Redis) is fed through queue_estimator.QueueState, whose state is
kept in Redis and caught up with new events on each request (queue_estimator.resume). For a
caller already waiting, the snapshot keeps only the callers ahead of them, which makes
them the "caller joining now" every predictor is written for: their remaining wait.

Each process also keeps the state it last built in memory and only ingests the events logged
since (by any process), so a wait poll costs a short LRANGE, not a JSON load and save of the
whole state; the shared copy in Redis is written every `save_every` new events, for the
other processes and the next start. Either way the state equals a replay of every event.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from flows.events import WaitEstimate
from queue_estimator.phrasing import phrase
from queue_estimator.predictors import DEFAULT, PREDICTORS, predict
from queue_estimator.resume import resume, save
from queue_estimator.state import QueueState as EstimatorState

from .queue_state import QueueState

log = logging.getLogger("ivr_server.wait_estimates")


class WaitEstimates:
    def __init__(self, queues: QueueState, predictor: str = DEFAULT, save_every: int = 500):
        if predictor not in PREDICTORS:
            raise ValueError(f"queues.predictor {predictor!r} is not one of "
                             f"{', '.join(sorted(PREDICTORS))}")
        self.queues, self.predictor, self.save_every = queues, predictor, save_every
        # queue -> [state, absolute index of the next event it has not seen, unsaved events]
        self._live: dict[str, list[Any]] = {}
        self._lock = threading.RLock()  # gthread workers: one request at a time mutates it

    def state(self, queue: str) -> EstimatorState:
        """The predictor's state after every logged event: this process's copy caught up
        with the events since, else the saved state caught up (about a millisecond), else
        rebuilt from the log. Read it under `_lock` if other threads may ask too."""
        with self._lock:
            live = self._live.get(queue)
            if live is not None:
                state, index, unsaved = live
                events, first = self.queues.events_since(queue, index)
                if first == index:  # nothing trimmed unseen, no reset log: just catch up
                    for e in events:
                        state.ingest(e.ts, e.event, e.call_id, e.value)
                    index, unsaved = index + len(events), unsaved + len(events)
                    if unsaved >= self.save_every:
                        self.queues.save_estimator(queue, save(state, index))
                        unsaved = 0
                    self._live[queue] = [state, index, unsaved]
                    return state
            state, index = self._resumed(queue)
            self._live[queue] = [state, index, 0]
            return state

    def _resumed(self, queue: str) -> tuple[EstimatorState, int]:
        """The shared saved state caught up with the log (saved back), and its next index."""
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
        return state, int(new_saved["next_index"])

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
            with self._lock:
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
