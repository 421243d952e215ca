"""What a predictor sees: an immutable picture of one queue at one moment.

Predictors are pure functions of a Snapshot, so the same snapshot always gives the same
estimate, whether it was built live from Redis or by the replay command.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Learned:
    """What the adaptive predictor has learned from callers whose real wait became known.

    `weights` combine the experts (experts.EXPERTS). `error_quantiles[b]` holds
    recent (q10, q50, q80, q90) of log((actual + c) / (predicted + c)) for queue-depth bucket
    b, or None while too few callers have been seen.
    """

    weights: tuple[float, ...]
    error_quantiles: tuple[tuple[float, float, float, float] | None, ...]
    samples: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One queue at time `now`. Times are seconds on the event log's clock.

    waiting: (call_id, joined_at) in queue order, head first.
    in_service: (call_id, answered_at) of calls an agent is talking to.
    recent_hangups: times of the latest hangups (an agent may still be busy after them).
    answered_waits / service_times: bounded recent history, oldest first.
    """

    now: float
    agents: int
    waiting: tuple[tuple[str, float], ...]
    in_service: tuple[tuple[str, float], ...]
    recent_hangups: tuple[float, ...]
    answered_waits: tuple[float, ...]
    service_times: tuple[float, ...]
    last_entered_wait: float | None  # wait of the last caller to reach an agent
    asterisk_average: float | None  # Asterisk's h <- (3h + w) / 4 over answered waits
    finished_waits: tuple[float, ...]  # recent callers who left the queue, oldest first
    finished_abandoned: tuple[int, ...]  # 1 if that caller abandoned, 0 if answered
    abandoned: int  # how many of those abandoned
    waited_s: float  # total time those callers waited (exposure for the abandon rate)
    queue_agent_s: float  # decayed agent-seconds during which callers were waiting
    queue_answers: float  # decayed answers of callers who had to wait, in that time
    learned: Learned | None
    long_service_s: float | None = None  # mean talk time over ~1000 calls (None: no calls)
    long_abandon_rate: float = 0.0  # abandonments per second waited, over ~1000 callers

    @property
    def ahead(self) -> int:
        """Callers a new caller would have in front of them."""
        return len(self.waiting)

    @property
    def head_wait(self) -> float:
        """Elapsed wait of the caller at the head of the line (0 if nobody waits)."""
        return self.now - self.waiting[0][1] if self.waiting else 0.0

    @property
    def free_agents(self) -> int:
        """Agents the log says are on duty and not talking (some may be in after-call work)."""
        return max(0, self.agents - len(self.in_service))


@dataclass(frozen=True, slots=True)
class Prediction:
    """A wait estimate in seconds for a caller joining now: the expected wait, its median
    and an 80 % interval (p10 <= predicted <= p90), plus what it was based on."""

    predicted_wait_s: float
    p10: float
    p50: float
    p90: float
    predictor: str
    ahead: int
    agents: int
