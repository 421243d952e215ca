"""What each queue looks like right now, read from the live state in Redis.

A queue is listed when it is configured ([queues.agents]), named by an enqueue node of a
live flow, or has any state in Redis (agents signed in to a queue nobody configured), so a
supervisor sees an empty queue with agents as well as a busy one. Reading never changes
the queue: callers whose end was never reported (older than QueueState.stale_after) are
left out of the figures here instead of being expired, which is the wait webhook's job.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from typing import Any

import redis

from flows.events import WaitEstimate

from .metrics import format_seconds

log = logging.getLogger("ivr_server.admin.live_queues")
MAX_QUEUES = 200  # a bound on what a Redis scan may add, should keys ever run wild
_SUFFIXES = ("waiting", "service", "events", "agents", "on_duty", "count", "briefed",
             "estimator")


@dataclass(frozen=True)
class QueueSnapshot:
    name: str
    waiting: int
    longest_seconds: float | None  # the oldest waiting caller's wait so far
    agents: int | None  # on duty; None when nobody set or signed in any
    on_duty: list[str]  # names of agents signed in (empty when only a count is set)
    in_service: int
    estimate: dict[str, Any] | None  # seconds, p10, p90, phrase: what a new caller hears
    error: str | None = None

    @property
    def longest(self) -> str:
        return format_seconds(self.longest_seconds) if self.waiting else "—"

    @property
    def estimate_text(self) -> str:
        return estimate_text(self.estimate)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "longest": self.longest, "estimate_text": self.estimate_text}


def estimate_text(estimate: dict[str, Any] | None) -> str:
    if not estimate:
        return "no estimate yet"
    text = format_seconds(estimate["seconds"])
    low, high = format_seconds(estimate["p10"]), format_seconds(estimate["p90"])
    return text if low == high == text else f"{text} ({low}–{high})"


def flow_queues(ivr: Any) -> set[str]:
    """Queues named by enqueue nodes of the live flows."""
    names: set[str] = set()
    for flow in ivr.registry.live().values():
        for node in flow.model.nodes.values():
            if getattr(node, "type", None) == "enqueue" and getattr(node, "queue", None):
                names.add(node.queue)
    return names


def redis_queues(client: redis.Redis, prefix: str) -> set[str]:
    """Queues with any live state under the key prefix (scanned, bounded by MAX_QUEUES)."""
    pattern = _glob_escape(f"{prefix}q:") + "*"
    names: set[str] = set()
    for key in client.scan_iter(match=pattern, count=500):
        text = key.decode() if isinstance(key, bytes) else key
        name, _, suffix = text[len(prefix) + 2:].rpartition(":")
        if name and suffix in _SUFFIXES:
            names.add(name)
            if len(names) >= MAX_QUEUES:
                break
    return names


def queue_names(ivr: Any) -> list[str]:
    """Every queue worth showing: configured first, then the others, by name."""
    configured = list(ivr.config.queues.agents)
    others: set[str] = set()
    try:
        others |= flow_queues(ivr)
    except Exception as exc:  # noqa: BLE001 - a broken flow directory must not hide queues
        log.warning("could not read the live flows' queues: %s", exc)
    others |= redis_queues(ivr.redis, ivr.config.redis.key_prefix)
    return configured + sorted(others - set(configured))


def snapshot(ivr: Any, queue: str, now: dt.datetime) -> QueueSnapshot:
    """One queue now; a Redis failure is the row's error, not the whole page's."""
    ts = now.timestamp()
    try:
        cutoff = ts - ivr.queues.stale_after
        joined = [j for _, j in ivr.queues.waiting(queue) if j >= cutoff]
        agents = ivr.queues.agents(queue)
        on_duty = ivr.queues.on_duty(queue)
        in_service = len(ivr.queues.in_service(queue))
    except redis.RedisError as exc:
        log.warning("queue %s: could not read its live state: %s", queue, exc)
        return QueueSnapshot(queue, 0, None, None, [], 0, None,
                             error=f"unavailable ({type(exc).__name__})")
    return QueueSnapshot(
        name=queue, waiting=len(joined),
        longest_seconds=max(0.0, ts - min(joined)) if joined else None,
        agents=agents, on_duty=on_duty, in_service=in_service,
        estimate=_estimate_dict(_new_caller_estimate(ivr, queue, ts)))


def _new_caller_estimate(ivr: Any, queue: str, ts: float) -> WaitEstimate | None:
    """What a caller joining now would be told: behind everyone already waiting."""
    try:
        return ivr.estimates.remaining_from_place(queue, ts + 1e-3, ts)
    except redis.RedisError as exc:
        log.warning("queue %s: no estimate: %s", queue, exc)
        return None


def _estimate_dict(estimate: WaitEstimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    return {"seconds": round(estimate.seconds), "p10": round(estimate.p10),
            "p90": round(estimate.p90), "phrase": estimate.phrase}


def all_queues(ivr: Any, now: dt.datetime) -> list[QueueSnapshot]:
    return [snapshot(ivr, name, now) for name in queue_names(ivr)]


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
