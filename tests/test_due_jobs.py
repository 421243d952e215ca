"""Retries and callbacks due later wait in RQ's ScheduledJobRegistry, and every `ivr worker`
puts the due ones in line each second (there is no RQ scheduler process). Each due job must
reach its queue exactly once, whichever workers move it and whenever one dies."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry

from ivr_server import callback_reconcile
from ivr_server.callback_reconcile import move_due_once
from ivr_server.redis_conn import connect


@pytest.fixture
def queue(redis_url: str, redis_prefix: str) -> Iterator[Queue]:
    client = connect(redis_url, decode=False)
    yield Queue(f"{redis_prefix}due", connection=client)
    for key in client.scan_iter(match=f"rq:*{redis_prefix}due*".encode(), count=500):
        client.delete(key)
    client.close()


def _schedule(queue: Queue, n: int, when: dt.datetime) -> list[str]:
    return [queue.enqueue_at(when, "builtins.print", i).id for i in range(n)]


def test_each_due_job_reaches_its_queue_once_however_many_workers_move_them(queue):
    due = _schedule(queue, 300, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    later = _schedule(queue, 3, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    moved: list[int] = []
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        for _ in range(20):
            moved.append(move_due_once(queue))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(queue.job_ids) == sorted(due)  # each once, none twice
    assert sum(moved) == 300
    assert sorted(ScheduledJobRegistry(queue=queue).get_job_ids()) == sorted(later)


def test_a_worker_killed_while_moving_holds_the_others_back_only_until_its_lock_lapses(
        queue, monkeypatch):
    monkeypatch.setattr(callback_reconcile, "MOVER_LOCK", 1)
    due = _schedule(queue, 2, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    registry = ScheduledJobRegistry(queue=queue)
    dead = queue.connection.lock(f"{registry.key}:mover", timeout=1)  # its holder SIGKILLed
    assert dead.acquire(blocking=False)

    assert move_due_once(queue) == 0
    assert queue.job_ids == []  # nothing moved half-way
    threading.Event().wait(1.2)
    assert move_due_once(queue) == 2
    assert sorted(queue.job_ids) == sorted(due)


def test_a_due_job_whose_data_is_gone_is_dropped_from_the_schedule(queue):
    [gone] = _schedule(queue, 1, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    queue.connection.delete(f"rq:job:{gone}")  # expired, or deleted by hand

    assert move_due_once(queue) == 0
    assert queue.job_ids == []
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []


def test_a_worker_dying_midway_through_a_move_loses_no_job(queue, monkeypatch):
    due = _schedule(queue, 3, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    real_enqueue = Queue.enqueue_job
    calls = 0

    def dies_on_the_second(self, job, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        nonlocal calls
        calls += 1
        if calls == 2:
            raise SystemExit("killed")  # as far as Redis can tell, the worker is gone
        return real_enqueue(self, job, *args, **kwargs)

    monkeypatch.setattr(Queue, "enqueue_job", dies_on_the_second)
    with pytest.raises(SystemExit):
        move_due_once(queue)
    monkeypatch.setattr(Queue, "enqueue_job", real_enqueue)
    queue.connection.delete(f"{ScheduledJobRegistry(queue=queue).key}:mover")  # lapsed

    assert move_due_once(queue) == 3
    assert sorted(queue.job_ids) == sorted(due)
