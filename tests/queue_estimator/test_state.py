"""QueueState: bad input is ignored, never counted twice; the state survives a round trip."""

from __future__ import annotations

import json

from queue_estimator import Event, QueueState, predict, read_events

from .helpers import small_log


def _state(*rows: tuple) -> QueueState:
    state = QueueState()
    state.ingest(0, "agents", "", 2)
    for row in rows:
        state.ingest(*row)
    return state


def test_duplicate_events_never_count_a_call_twice() -> None:
    state = _state((1, "arrive", "a"), (1, "arrive", "a"), (5, "answer", "a"),
                   (6, "answer", "a"), (7, "arrive", "a"), (50, "hangup", "a"),
                   (51, "hangup", "a"), (52, "answer", "a"))
    snap = state.snapshot(60)
    assert snap.waiting == () and snap.in_service == ()
    assert snap.answered_waits == (4.0,)
    assert snap.service_times == (45.0,)
    assert state.ignored == 5


def test_events_for_unknown_calls_are_ignored_but_an_answer_still_busies_an_agent() -> None:
    state = _state((1, "hangup", "ghost"), (2, "abandon", "ghost"), (3, "answer", "early"))
    snap = state.snapshot(4)
    assert state.ignored == 2
    assert snap.in_service == (("early", 3.0),)  # joined before the window: wait unknown
    assert snap.answered_waits == ()


def test_an_abandoned_caller_cannot_be_answered_later() -> None:
    state = _state((1, "arrive", "a"), (9, "abandon", "a"), (10, "answer", "a"))
    snap = state.snapshot(11)
    assert snap.in_service == () and snap.abandoned == 1 and state.ignored == 1


def test_a_caller_hanging_up_in_the_queue_has_abandoned() -> None:
    snap = _state((1, "arrive", "a"), (31, "hangup", "a")).snapshot(40)
    assert snap.waiting == () and snap.abandoned == 1 and snap.service_times == ()


def test_an_event_from_the_past_is_taken_as_happening_now() -> None:
    state = _state((100, "arrive", "a"), (90, "answer", "a"))
    snap = state.snapshot(80)
    assert snap.now == 100.0
    assert snap.answered_waits == (0.0,)


def test_bad_values_are_ignored_not_raised() -> None:
    state = _state((1, "agents", "", "many"), (2, "agents", "", -3), (3, "teleport", "a"),
                   (float("nan"), "arrive", "b"), (4, "arrive", ""))
    assert state.ignored == 5 and state.agents == 2


def test_waiting_callers_keep_their_order_and_join_times() -> None:
    snap = _state((1, "arrive", "a"), (2, "arrive", "b"), (3, "arrive", "c"),
                  (4, "abandon", "b")).snapshot(10)
    assert snap.waiting == (("a", 1.0), ("c", 3.0))
    assert snap.ahead == 2 and snap.head_wait == 9.0


def test_state_survives_json_round_trip_and_continues_identically(tmp_path) -> None:
    events = [e for _, e in read_events(small_log(tmp_path))]
    half = len(events) // 2
    straight = QueueState.from_events(events)
    resumed = QueueState.from_dict(json.loads(json.dumps(
        QueueState.from_events(events[:half]).to_dict())))
    for event in events[half:]:
        resumed.ingest_event(event)
    now = events[-1].ts + 1
    assert predict(resumed.snapshot(now)) == predict(straight.snapshot(now))
    assert resumed.to_dict() == straight.to_dict()


def test_rebuilding_from_a_recent_window_is_cheap_and_tolerates_a_cut_mid_call(tmp_path) -> None:
    events = [e for _, e in read_events(small_log(tmp_path, hours=3))]
    window = [Event(0.0, "agents", "", "2"), *events[len(events) // 2:]]
    state = QueueState.from_events(window)
    prediction = predict(state.snapshot(events[-1].ts))
    assert 0 <= prediction.p10 <= prediction.predicted_wait_s <= prediction.p90
    assert len(state.to_dict()["answered_waits"]) <= 200


def test_a_call_hung_up_the_moment_it_was_answered_does_not_stop_the_estimates() -> None:
    # Answer and hangup in the same second: the only talk time known is zero.
    state = _state((1, "arrive", "a"), (2, "answer", "a"), (2, "hangup", "a"),
                   (3, "arrive", "b"), (3, "answer", "b"), (4, "arrive", "c"),
                   (4, "arrive", "d"), (5, "arrive", "e"))
    assert list(state.waiting) == ["c", "d", "e"] and state.ignored == 0
    assert predict(state.snapshot(6)).predicted_wait_s > 0
