"""Live estimates equal a replay of the queue's whole log, though the server only catches
its saved predictor state up with the events since the last request."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr_server.queue_state import QueueState
from ivr_server.redis_conn import connect
from ivr_server.wait_estimates import WaitEstimates
from queue_estimator.state import QueueState as EstimatorState


@pytest.fixture
def queues(redis_url: str, redis_prefix: str) -> Iterator[QueueState]:
    client = connect(redis_url)
    yield QueueState(client, redis_prefix)
    client.close()


def history(queues: QueueState, start: int, count: int, queue: str = "support") -> None:
    for i in range(start, start + count):
        t = i * 60.0
        queues.arrive(queue, f"CA{i:04d}", t)
        queues.answer(queue, f"CA{i:04d}", t + 100 + (i % 7) * 20)
        queues.hangup(queue, f"CA{i:04d}", t + 400)


def full_replay(queues: QueueState, queue: str = "support") -> dict:
    rows = [(e.ts, e.event, e.call_id, e.value) for e in queues.events(queue)]
    return EstimatorState.from_events(rows).to_dict()


def test_the_cached_state_is_what_a_full_replay_gives(queues: QueueState) -> None:
    queues.set_agents("support", 2, 0)
    history(queues, 0, 40)
    estimates = WaitEstimates(queues, save_every=10)
    estimates.state("support")  # saves the state
    history(queues, 40, 10)  # more calls since
    queues.arrive("support", "CAnew", 3000)
    assert estimates.state("support").to_dict() == full_replay(queues)
    assert queues.load_estimator("support")["next_index"] == 1 + 50 * 3 + 1
    live = estimates.remaining("support", "CAnew", 3010)
    assert live is not None and live.p10 <= live.seconds <= live.p90 and live.phrase


def test_a_log_trimmed_past_the_saved_state_is_rebuilt_with_the_agents_on_duty(
        redis_url: str, redis_prefix: str) -> None:
    small = QueueState(connect(redis_url), redis_prefix, max_events=30)
    small.set_agents("support", 1, 0)
    history(small, 0, 5)
    estimates = WaitEstimates(small)
    estimates.state("support")
    history(small, 5, 20)  # 60 more events: the window moved past the saved state
    small.arrive("support", "CAnew", 2000)
    assert estimates.state("support").snapshot(2000).agents == 1
    live = estimates.remaining("support", "CAnew", 2000)
    assert live is not None and live.seconds >= 0


def test_nobody_on_duty_gives_no_number(queues: QueueState) -> None:
    queues.arrive("support", "CA1", 0)
    assert WaitEstimates(queues).remaining("support", "CA1", 10) is None


def test_two_processes_give_the_same_state_as_a_full_replay_and_share_it_every_few_events(
        queues: QueueState) -> None:
    queues.set_agents("support", 2, 0)
    history(queues, 0, 10)
    first, second = WaitEstimates(queues, save_every=20), WaitEstimates(queues, save_every=20)
    first.state("support")
    second.state("support")
    history(queues, 10, 5)  # 15 events: each process catches up in memory, not yet saved
    assert first.state("support").to_dict() == full_replay(queues)
    assert queues.load_estimator("support")["next_index"] == 1 + 10 * 3
    history(queues, 15, 5)  # 30 unseen events in all for `second`: it saves on catching up
    assert second.state("support").to_dict() == full_replay(queues)
    assert queues.load_estimator("support")["next_index"] == 1 + 20 * 3
    assert WaitEstimates(queues).state("support").to_dict() == full_replay(queues)


def test_a_queue_log_cleared_under_a_running_process_is_rebuilt_from_what_is_left(
        redis_url: str, redis_prefix: str, queues: QueueState) -> None:
    queues.set_agents("support", 2, 0)
    history(queues, 0, 10)
    estimates = WaitEstimates(queues)
    estimates.state("support")
    client = connect(redis_url)
    client.delete(*client.keys(f"{redis_prefix}q:support:*"))  # an operator's reset
    client.close()
    queues.set_agents("support", 3, 5000)
    queues.arrive("support", "CAafter", 5000)
    assert estimates.state("support").to_dict() == full_replay(queues)
    assert estimates.state("support").snapshot(5000).agents == 3
