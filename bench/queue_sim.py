"""A discrete-event call-centre simulator that writes the event logs queue_estimator replays.

Why our own: the wait predictors must be judged where their textbook assumptions break
(peaks, staffing changes, lognormal service, impatient callers, after-call work the log
never shows, teams of one or two), and the true wait of every caller must be known.

One FIFO queue. Callers arrive as a (possibly time-varying) Poisson process, wait, and are
answered by the first free agent or abandon when their patience runs out. After a call the
agent may do after-call work (ACW) that is NOT logged: the log shows `hangup`, but the agent
stays unavailable. When staffing drops, idle agents sign out at once and busy ones as soon as
they finish (the log shows the new target at once). Output: rows `(ts, event, call_id, value)`.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

Row = tuple[float, str, str, str]


@dataclass(frozen=True)
class Dist:
    """A positive random duration: `exp`, `lognormal` (mean, cv), `weibull` (mean, shape),
    `uniform` (lo, hi) or `none` (always zero)."""

    kind: str
    a: float = 0.0
    b: float = 0.0

    @property
    def mean(self) -> float:
        return (self.a + self.b) / 2 if self.kind == "uniform" else self.a

    def draw(self, rng: random.Random) -> float:
        if self.kind == "none":
            return 0.0
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.a)
        if self.kind == "lognormal":
            sigma2 = math.log(1.0 + self.b * self.b)
            return rng.lognormvariate(math.log(self.a) - sigma2 / 2, math.sqrt(sigma2))
        if self.kind == "weibull":
            scale = self.a / math.gamma(1.0 + 1.0 / self.b)
            return rng.weibullvariate(scale, self.b)
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        raise ValueError(f"unknown distribution {self.kind!r}")


@dataclass(frozen=True)
class Scenario:
    """One named call-centre day; `staffing` is [(t_seconds, agents)] starting at t=0."""

    name: str
    what: str
    hours: float
    rate_per_hour: float
    staffing: tuple[tuple[float, int], ...]
    service: Dist
    patience: Dist | None = None
    acw: Dist = Dist("none")
    peak_at_h: float = 0.0  # a Gaussian bump in the arrival rate (0: no peak)
    peak_width_h: float = 1.0
    peak_factor: float = 1.0  # rate multiplier at the top of the peak
    days: int = 1  # the day's pattern repeats, back to back, on one continuous queue

    def rate(self, t: float) -> float:
        """Arrivals per second at time t."""
        base = self.rate_per_hour / 3600.0
        if self.peak_factor == 1.0:
            return base
        z = ((t / 3600.0) % self.hours - self.peak_at_h) / self.peak_width_h
        return base * (1.0 + (self.peak_factor - 1.0) * math.exp(-0.5 * z * z))

    def max_rate(self) -> float:
        return self.rate_per_hour / 3600.0 * max(1.0, self.peak_factor)


@dataclass
class SimResult:
    """The event log plus the truth the log does not say."""

    rows: list[Row]
    true_wait: dict[str, float]  # answered callers only
    abandoned: set[str] = field(default_factory=set)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "steady_large", "24 agents, Poisson, exponential service and patience (M/M/s+M)",
            hours=8, rate_per_hour=285, staffing=((0, 24),),
            service=Dist("exp", 300), patience=Dist("exp", 600),
        ),
        Scenario(
            "morning_peak", "20 agents, mid-morning peak x1.6 (overloaded), lognormal service",
            hours=8, rate_per_hour=230, staffing=((0, 20),),
            service=Dist("lognormal", 240, 1.0), patience=Dist("exp", 480),
            peak_at_h=2.5, peak_width_h=0.8, peak_factor=1.6,
        ),
        Scenario(
            "shift_changes", "9 agents, signing out and in (9-6-11-7-9)",
            hours=8, rate_per_hour=150,
            staffing=((0, 9), (2 * 3600, 6), (3.5 * 3600, 11), (5 * 3600, 7), (6.5 * 3600, 9)),
            service=Dist("exp", 200), patience=Dist("exp", 600),
        ),
        Scenario(
            "after_call_work", "12 agents, 40-80 s after-call work not in the log",
            hours=8, rate_per_hour=176, staffing=((0, 12),),
            service=Dist("lognormal", 180, 0.8), patience=Dist("exp", 600),
            acw=Dist("uniform", 40, 80),
        ),
        Scenario(
            "small_team", "2 agents, lognormal service (cv 1.5), Weibull patience (shape 2)",
            hours=8, days=6, rate_per_hour=27, staffing=((0, 2),),
            service=Dist("lognormal", 240, 1.5), patience=Dist("weibull", 500, 2.0),
        ),
        Scenario(
            "solo_agent", "1 agent with unlogged after-call work, impatient callers",
            hours=8, days=10, rate_per_hour=14, staffing=((0, 1),),
            service=Dist("exp", 180), patience=Dist("weibull", 600, 0.7),
            acw=Dist("exp", 45),
        ),
        Scenario(
            "small_team_mixed", "3-2-3 agents, peak, lognormal, after-call work, Weibull patience",
            hours=8, days=5, rate_per_hour=30,
            staffing=((0, 3), (4 * 3600, 2), (6 * 3600, 3)),
            service=Dist("lognormal", 240, 1.2), patience=Dist("weibull", 700, 1.5),
            acw=Dist("uniform", 20, 60), peak_at_h=3.0, peak_width_h=1.0, peak_factor=1.5,
        ),
        Scenario(
            "large_mixed", "30-24-32 agents, peak, lognormal, after-call work",
            hours=8, rate_per_hour=330,
            staffing=((0, 30), (3 * 3600, 24), (4.5 * 3600, 32)),
            service=Dist("lognormal", 270, 0.9), patience=Dist("exp", 540),
            acw=Dist("exp", 30), peak_at_h=2.0, peak_width_h=1.0, peak_factor=1.35,
        ),
    )
}


def simulate(scenario: Scenario, seed: int) -> SimResult:
    """Run one day; deterministic for a given (scenario, seed)."""
    rng = random.Random(f"{scenario.name}:{seed}")
    day = scenario.hours * 3600.0
    end = day * scenario.days
    rows: list[Row] = []
    heap: list[tuple[float, int, str, str]] = []  # (t, seq, kind, payload)
    seq = 0

    def push(t: float, kind: str, payload: str = "") -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, (t, seq, kind, payload))

    for d in range(scenario.days):
        for t, agents in scenario.staffing:
            if d == 0 or t > 0 or agents != scenario.staffing[-1][1]:
                push(d * day + float(t), "staff", str(agents))
    lam_max = scenario.max_rate()
    push(rng.expovariate(lam_max), "arrive_try")

    queue: list[str] = []  # FIFO of waiting call ids
    waiting_since: dict[str, float] = {}
    idle = 0  # agents free to answer
    on_duty = 0  # agents working (idle + talking + in ACW), may exceed target briefly
    target = 0
    true_wait: dict[str, float] = {}
    abandoned: set[str] = set()
    next_id = 0

    def log(t: float, event: str, call_id: str = "", value: str = "") -> None:
        rows.append((round(t, 3), event, call_id, value))

    def dispatch(t: float) -> None:
        nonlocal idle
        while idle > 0 and queue:
            call = queue.pop(0)
            idle -= 1
            true_wait[call] = round(t, 3) - round(waiting_since.pop(call), 3)
            log(t, "answer", call)
            push(t + scenario.service.draw(rng), "hangup", call)

    while heap:
        t, _, kind, payload = heapq.heappop(heap)
        if kind == "arrive_try":
            if t >= end:
                continue
            push(t + rng.expovariate(lam_max), "arrive_try")
            if rng.random() * lam_max > scenario.rate(t):
                continue  # thinning: not an arrival at this moment of the day
            next_id += 1
            call = f"c{next_id:05d}"
            log(t, "arrive", call)
            queue.append(call)
            waiting_since[call] = t
            if scenario.patience is not None:
                push(t + scenario.patience.draw(rng), "patience", call)
            dispatch(t)
        elif kind == "patience":
            if payload in waiting_since:
                queue.remove(payload)
                del waiting_since[payload]
                abandoned.add(payload)
                log(t, "abandon", payload)
        elif kind == "hangup":
            log(t, "hangup", payload)
            push(t + scenario.acw.draw(rng), "free")
        elif kind == "free":
            if on_duty > target:
                on_duty -= 1  # this agent was waiting to sign out
            else:
                idle += 1
                dispatch(t)
        elif kind == "staff":
            target = int(payload)
            log(t, "agents", "", payload)
            if target > on_duty:
                idle += target - on_duty
                on_duty = target
                dispatch(t)
            else:
                leaving = min(idle, on_duty - target)
                idle -= leaving
                on_duty -= leaving
    return SimResult(rows=rows, true_wait=true_wait, abandoned=abandoned)


def write_csv(rows: list[Row], path: str) -> None:
    """Write rows in the replay format (header `ts,event,call_id,value`)."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("ts,event,call_id,value\n")
        for ts, event, call_id, value in rows:
            out.write(f"{ts:.3f},{event},{call_id},{value}\n")
