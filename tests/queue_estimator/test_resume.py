"""resume(): a saved state caught up with new events is the state rebuilt from all of them."""

from __future__ import annotations

import json

from queue_estimator import QueueState, predict, read_events, resume
from queue_estimator.learner import Learner

from .helpers import small_log


def test_catching_up_a_saved_state_equals_ingesting_everything(tmp_path) -> None:
    events = [e for _, e in read_events(small_log(tmp_path))]
    _, saved = resume(None, events[:100])
    assert saved["next_index"] == 100
    saved = json.loads(json.dumps(saved))
    state, again = resume(saved, events)
    whole = QueueState.from_events(events)
    assert state.to_dict() == whole.to_dict() and again["next_index"] == len(events)
    now = events[-1].ts + 5
    assert predict(state.snapshot(now)) == predict(whole.snapshot(now))


def test_a_trimmed_window_continues_from_the_saved_index(tmp_path) -> None:
    events = [e for _, e in read_events(small_log(tmp_path))]
    _, saved = resume(None, events[:100])
    state, again = resume(saved, events[60:], first_index=60)  # the list lost 60 old events
    assert state.to_dict() == QueueState.from_events(events).to_dict()
    assert again["next_index"] == len(events)


def test_a_gap_or_a_bad_saved_state_rebuilds_from_the_window(tmp_path) -> None:
    events = [e for _, e in read_events(small_log(tmp_path))]
    window = events[120:]
    rebuilt = QueueState.from_events(window).to_dict()
    _, saved = resume(None, events[:100])
    for bad in (saved, None, {"version": 99}, {"version": 1, "next_index": "x", "state": {}}):
        state, _ = resume(bad, window, first_index=120)
        assert state.to_dict() == rebuilt


def test_a_learner_saved_with_other_experts_is_started_afresh(tmp_path) -> None:
    events = [e for _, e in read_events(small_log(tmp_path))]
    data = QueueState.from_events(events).to_dict()
    data["learner"] = Learner(3).to_dict()
    state = QueueState.from_dict(data)
    assert len(state.learner.losses) == len(QueueState().learner.losses)


def test_a_state_saved_before_the_long_memory_fields_still_loads(tmp_path) -> None:
    events = [e for _, e in read_events(small_log(tmp_path))]
    data = QueueState.from_events(events).to_dict()
    for name in ("long_talk_s", "long_talks", "long_abandons", "long_waited_s"):
        del data[name]
    snap = QueueState.from_dict(data).snapshot(events[-1].ts)
    assert snap.long_service_s is None and snap.long_abandon_rate == 0.0


def test_a_new_learner_starts_from_the_fallback_experts() -> None:
    weights = QueueState().learner.weights
    assert weights[0] == max(weights) > 0.3 and abs(sum(weights) - 1.0) < 1e-12
