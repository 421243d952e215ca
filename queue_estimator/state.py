"""QueueState: one queue's live state, built only from its events.

The live server feeds each queue's recent events (kept in Redis) through this class and the
replay command feeds a recorded log through it, so both see the same snapshots. It keeps
only bounded memory, so rebuilding from the last few hours of events is cheap, and it
serialises to plain JSON-able dicts. Bad input never raises and never counts a call twice:
duplicates and events for unknown or finished calls are ignored (and counted in `ignored`);
an event older than the last one is treated as happening at the last one's time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from . import events as ev
from .adaptive import new_learner
from .experts import EXPERTS, experts
from .learner import Learner, bucket_of
from .snapshot import Snapshot

HISTORY = 200  # answered waits, talk times and finished callers kept
HANGUPS_KEPT = 40
DONE_KEPT = 20000  # finished call ids remembered, so late duplicates are still ignored
PACE_HALF_LIFE_S = 3 * 3600.0  # memory of the agents' measured pace
ANSWER_DELAY_S = 1.0  # an answer this soon after arrival is a free agent, not queue pace
LONG_FORGET = 1.0 - 1.0 / 1000.0  # per finished call or caller: ~1000 of memory
LONG_KEYS = ("long_talk_s", "long_talks", "long_abandons", "long_waited_s")


class QueueState:
    """Waiting callers, calls in service, agents on duty and bounded recent history."""

    def __init__(self) -> None:
        self.last_ts = 0.0
        self.agents = 0
        self.waiting: dict[str, float] = {}  # call_id -> joined; dicts keep queue order
        self.arrival_features: dict[str, list] = {}  # call_id -> [features, bucket]
        self.in_service: dict[str, float] = {}  # call_id -> answered at
        self.done: dict[str, None] = {}  # an ordered set, oldest first
        self.hangups: deque[float] = deque(maxlen=HANGUPS_KEPT)
        self.answered_waits: deque[float] = deque(maxlen=HISTORY)
        self.service_times: deque[float] = deque(maxlen=HISTORY)
        self.finished_waits: deque[float] = deque(maxlen=HISTORY)
        self.finished_abandoned: deque[int] = deque(maxlen=HISTORY)
        self.last_entered_wait: float | None = None
        self.asterisk_average: float | None = None
        self.queue_agent_s = 0.0
        self.queue_answers = 0.0
        self.ignored = 0
        # Long-memory talk time and patience: talk times and patience drift slowly, and
        # in small queues 200 calls of history are noisy (see experts.qlm_long).
        self.long_talk_s = self.long_talks = self.long_abandons = self.long_waited_s = 0.0
        self.learner: Learner = new_learner()

    # -- events ---------------------------------------------------------------------------

    def ingest(self, ts: float, event: str, call_id: str = "", value: str | int = "") -> bool:
        """Apply one event; returns False (and counts it in `ignored`) if it changed nothing."""
        if not isinstance(ts, int | float) or not math.isfinite(ts):
            self.ignored += 1
            return False
        ts = self._advance(float(ts))
        handler = {
            ev.ARRIVE: self._arrive, ev.ANSWER: self._answer, ev.ABANDON: self._abandon,
            ev.HANGUP: self._hangup, ev.AGENTS: self._agents,
        }.get(event)
        applied = handler is not None and handler(ts, str(call_id), value)
        if not applied:
            self.ignored += 1
        return bool(applied)

    def ingest_event(self, event: ev.Event) -> bool:
        return self.ingest(event.ts, event.event, event.call_id, event.value)

    @classmethod
    def from_events(cls, events: Iterable[ev.Event | tuple]) -> QueueState:
        """Rebuild from a window of events (Event objects or (ts, event, call_id, value))."""
        state = cls()
        for item in events:
            if isinstance(item, ev.Event):
                state.ingest_event(item)
            else:
                state.ingest(*item)
        return state

    def _advance(self, ts: float) -> float:
        ts = max(ts, self.last_ts)
        dt = ts - self.last_ts
        if dt > 0:
            decay = 0.5 ** (dt / PACE_HALF_LIFE_S)
            self.queue_agent_s *= decay
            self.queue_answers *= decay
            if self.waiting:
                self.queue_agent_s += self.agents * dt
            self.last_ts = ts
        return ts

    def _seen(self, call_id: str) -> bool:
        return call_id in self.waiting or call_id in self.in_service or call_id in self.done

    def _finish(self, call_id: str) -> None:
        self.done[call_id] = None
        if len(self.done) > DONE_KEPT:
            del self.done[next(iter(self.done))]

    def _arrive(self, ts: float, call_id: str, _value: object) -> bool:
        if not call_id or self._seen(call_id):
            return False
        feats, k = experts(self.snapshot(ts))
        self.waiting[call_id] = ts
        self.arrival_features[call_id] = [feats, bucket_of(k)]
        return True

    def _answer(self, ts: float, call_id: str, _value: object) -> bool:
        if not call_id or call_id in self.in_service or call_id in self.done:
            return False
        joined = self.waiting.pop(call_id, None)
        self.in_service[call_id] = ts
        if joined is None:
            return True  # joined before our window: the agent is busy, the wait unknown
        wait = ts - joined
        if wait > ANSWER_DELAY_S:
            self.queue_answers += 1.0
        self.answered_waits.append(wait)
        self._long_finished(wait, 0.0)
        self.finished_waits.append(wait)
        self.finished_abandoned.append(0)
        self.last_entered_wait = wait
        h = self.asterisk_average
        self.asterisk_average = wait if h is None else (3.0 * h + wait) / 4.0
        learned = self.arrival_features.pop(call_id, None)
        if learned is not None:
            self.learner.learn(tuple(learned[0]), int(learned[1]), wait)
        return True

    def _abandon(self, ts: float, call_id: str, _value: object) -> bool:
        joined = self.waiting.pop(call_id, None)
        if joined is None:
            return False
        self.arrival_features.pop(call_id, None)
        self._long_finished(ts - joined, 1.0)
        self.finished_waits.append(ts - joined)
        self.finished_abandoned.append(1)
        self._finish(call_id)
        return True

    def _hangup(self, ts: float, call_id: str, value: object) -> bool:
        started = self.in_service.pop(call_id, None)
        if started is None:
            # A caller hanging up while still queued has abandoned.
            return self._abandon(ts, call_id, value)
        self.service_times.append(ts - started)
        self.long_talk_s = LONG_FORGET * self.long_talk_s + (ts - started)
        self.long_talks = LONG_FORGET * self.long_talks + 1.0
        self.hangups.append(ts)
        self._finish(call_id)
        return True

    def _long_finished(self, waited: float, abandoned: float) -> None:
        self.long_abandons = LONG_FORGET * self.long_abandons + abandoned
        self.long_waited_s = LONG_FORGET * self.long_waited_s + waited

    def _agents(self, _ts: float, _call_id: str, value: str | int) -> bool:
        try:
            agents = int(value)
        except (TypeError, ValueError):
            return False
        if agents < 0:
            return False
        self.agents = agents
        return True

    # -- reading ----------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        """The queue as of `now` (never earlier than the last event), for the predictors."""
        now = max(float(now), self.last_ts)
        open_s = self.agents * (now - self.last_ts) if self.waiting else 0.0
        return Snapshot(
            now=now,
            agents=self.agents,
            waiting=tuple(self.waiting.items()),
            in_service=tuple(self.in_service.items()),
            recent_hangups=tuple(self.hangups),
            answered_waits=tuple(self.answered_waits),
            service_times=tuple(self.service_times),
            last_entered_wait=self.last_entered_wait,
            asterisk_average=self.asterisk_average,
            finished_waits=tuple(self.finished_waits),
            finished_abandoned=tuple(self.finished_abandoned),
            abandoned=sum(self.finished_abandoned),
            waited_s=sum(self.finished_waits),
            queue_agent_s=self.queue_agent_s + open_s,
            queue_answers=self.queue_answers,
            learned=self.learner.learned() if self.learner.samples else None,
            long_service_s=self.long_talk_s / self.long_talks if self.long_talks else None,
            long_abandon_rate=(self.long_abandons / self.long_waited_s
                               if self.long_waited_s > 0 else 0.0),
        )

    # -- storage ----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Plain JSON-able state; from_dict(to_dict()) continues exactly where this left off."""
        return {
            "version": 1, "last_ts": self.last_ts, "agents": self.agents,
            "waiting": list(self.waiting.items()),
            "arrival_features": {k: [list(f), b] for k, (f, b) in self.arrival_features.items()},
            "in_service": list(self.in_service.items()), "done": list(self.done),
            "hangups": list(self.hangups), "answered_waits": list(self.answered_waits),
            "service_times": list(self.service_times),
            "finished_waits": list(self.finished_waits),
            "finished_abandoned": list(self.finished_abandoned),
            "last_entered_wait": self.last_entered_wait,
            "asterisk_average": self.asterisk_average,
            "queue_agent_s": self.queue_agent_s, "queue_answers": self.queue_answers,
            "ignored": self.ignored, "learner": self.learner.to_dict(),
            **{name: getattr(self, name) for name in LONG_KEYS},
        }

    @classmethod
    def from_dict(cls, data: dict) -> QueueState:
        if data.get("version") != 1:
            raise ValueError(f"unknown QueueState version {data.get('version')!r}")
        state = cls()
        state.last_ts = float(data["last_ts"])
        state.agents = int(data["agents"])
        state.waiting = {str(k): float(v) for k, v in data["waiting"]}
        state.arrival_features = {
            str(k): [tuple(map(float, f)), int(b)] for k, (f, b) in
            data["arrival_features"].items()}
        state.in_service = {str(k): float(v) for k, v in data["in_service"]}
        state.done = dict.fromkeys(map(str, data["done"]))
        for name in ("hangups", "answered_waits", "service_times", "finished_waits"):
            getattr(state, name).extend(map(float, data[name]))
        state.finished_abandoned.extend(map(int, data["finished_abandoned"]))
        for name in ("last_entered_wait", "asterisk_average"):
            setattr(state, name, None if data[name] is None else float(data[name]))
        state.queue_agent_s = float(data["queue_agent_s"])
        state.queue_answers = float(data["queue_answers"])
        state.ignored = int(data["ignored"])
        learner = Learner.from_dict(data["learner"])
        # Saved before the experts changed: start learning afresh rather than mismatch.
        state.learner = learner if len(learner.losses) == len(EXPERTS) else new_learner()
        for name in LONG_KEYS:  # absent in states saved before they existed
            setattr(state, name, float(data.get(name, 0.0)))
        return state
