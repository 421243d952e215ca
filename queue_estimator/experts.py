"""The default predictor's experts: estimates built where the published ones fail.

- After-call work the log does not show makes agents slower than talk times say: the real
  pace is measured as answers per agent-second while callers waited (`measure_pace`), and
  an agent who hung up moments ago may still be busy (`_still_busy`).
- Staffing changes and peaks make history-based estimates lag: the pace is per agent and
  multiplied by the agents on duty now; the queue is read as it is now.
- Non-exponential talk times matter most in small teams: the next release is estimated
  from the elapsed time of the calls in progress and recent talk times (`_first_release`).
- Small queues give few answers, so 200 calls of history make QL-m's rates noisy: `qlm_long`
  uses ~1000 calls (state.LONG_FORGET).
- Waits are learned and judged on answered callers, and long waits get abandoned: the
  estimates can be conditioned on the caller not abandoning, with exponential patience
  (`own`) or with the Kaplan-Meier patience curve of recent callers (`answered_mean`).
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

from .published import abandon_rate, qlm, qlm_formula, service_mean
from .snapshot import Snapshot
from .sums import reciprocal_run

PRIOR_ANSWERS = 3.0  # pseudo-answers at the logged talk-time pace, for a cold start
SMALL_TEAM = 5  # at most this many agents: look at the calls in progress
GRID = 24  # quantile points for the conditional expectation in answered_mean
Z_GRID = tuple(NormalDist().inv_cdf((i + 0.5) / GRID) for i in range(GRID))
EXPERTS = ("qlm", "pace", "pace_own", "pace_answered", "in_progress", "qlm_long")
FALLBACK = ("qlm", "qlm_long")  # the learner's prior favours these (learner.HANDICAP)


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast the agents really go: logged talk time, hidden after-call work, patience."""

    talk: float
    after_call: float
    theta: float  # abandonments per second of waiting

    @property
    def per_agent(self) -> float:
        return 1.0 / (self.talk + self.after_call)


def measure_pace(snap: Snapshot) -> Pace:
    """While anyone waits, every agent is busy (talking or in after-call work), so answers
    per agent-second then is the real pace, after-call work included. The hidden after-call
    work is what that pace adds to the logged talk time, shrunk by its own noise so that a
    queue without any is not charged for chance."""
    talk = service_mean(snap)
    answers = snap.queue_answers + PRIOR_ANSWERS
    handle = (snap.queue_agent_s + PRIOR_ANSWERS * talk) / answers
    gap = handle - talk
    noise2 = handle * handle / answers
    gap = gap * gap * gap / (gap * gap + noise2) if gap > 0 else 0.0
    return Pace(talk, gap, abandon_rate(snap))


def _still_busy(snap: Snapshot, after_call: float) -> list[float]:
    """For each agent who looks free, the chance they are still in after-call work.

    Agents who look free are matched with the latest hangups (agents who finished long ago
    would have taken the next call). After-call work is taken as exponential."""
    free = snap.free_agents
    if free == 0:
        return []
    ages = [snap.now - t for t in snap.recent_hangups[-free:]]
    chances = [math.exp(-age / after_call) if after_call > 0 else 0.0 for age in ages]
    return chances + [0.0] * (free - len(chances))


def _departure_sum(k: int, rate: float, theta: float, ahead: int, own: float = 0.0) -> float:
    """Expected time for k releases at total pace `rate` while those ahead may abandon.

    own = 1 conditions on the caller not abandoning themself (the waits we can learn from
    and score are those of answered callers): each stage's rate grows by theta."""
    # Stage i waits behind max(0, ahead - i) others: j = ahead - i runs down from `ahead`,
    # then any stages past the head have nobody ahead left to abandon.
    runs = min(k, ahead + 1)
    base = rate + own * theta
    rest = (k - runs) / base if k > runs else 0.0
    return reciprocal_run(base, theta, ahead - runs + 1, ahead + 1) + rest


def throughput_parts(snap: Snapshot, pace: Pace, own: float = 0.0) -> tuple[float, int, float]:
    """QL-m at the measured pace, with hidden after-call work: (mean wait if the caller has
    to wait at all, releases needed, chance of having to wait).

    Anyone waiting means no agent is really free, whatever the log says, so the new caller
    needs ahead + 1 releases. With nobody waiting, they wait only if every agent who looks
    free is still in after-call work."""
    agents = max(1, snap.agents)
    if snap.ahead > 0 or snap.free_agents == 0:
        k = snap.ahead + 1
        return _departure_sum(k, agents * pace.per_agent, pace.theta, snap.ahead, own), k, 1.0
    busy = _still_busy(snap, pace.after_call)
    all_busy = math.prod(busy)
    if all_busy <= 0.0:
        return 0.0, 0, 0.0
    rate = len(busy) / pace.after_call + max(0, agents - len(busy)) * pace.per_agent
    return 1.0 / (rate + own * pace.theta), 1, all_busy


def throughput_estimate(snap: Snapshot, pace: Pace, own: float = 0.0) -> tuple[float, int]:
    mean, k, chance = throughput_parts(snap, pace, own)
    if own and 0.0 < chance < 1.0:
        # Condition on not abandoning: the waiting branch loses weight too.
        rate = 1.0 / mean - own * pace.theta
        answered = (1.0 - chance) + chance * rate * mean
        return chance * rate * mean * mean / answered, k
    return chance * mean, k


def _first_release(snap: Snapshot, after_call: float, theta: float) -> float:
    """Expected time until some agent can answer: from the chance that every agent is still
    busy at t, using the empirical talk times (not memoryless) and the calls' elapsed time,
    conditioned on the caller not abandoning meanwhile (theta)."""
    times = sorted(snap.service_times)
    count = len(times)
    lives: list[tuple[list[float], int]] = []  # (residual ends, n alive)
    for _, started in snap.in_service:
        elapsed = snap.now - started
        cut = bisect.bisect_right(times, elapsed)
        if cut == count:
            continue  # longer than any recent call: no idea, leave it out
        lives.append(([t - elapsed for t in times[cut:]], count - cut))
    prob_hidden = math.prod(_still_busy(snap, after_call)) if snap.free_agents else 1.0
    if not lives or prob_hidden <= 0.0:
        return 0.0
    points = sorted({after_call + r for ends, _ in lives for r in ends})
    num, den, prev = 0.0, 1.0, 0.0  # E[T e^-thT] and E[e^-thT] via the survival function
    for t in [after_call, *points]:
        if t <= prev:
            continue
        mid = (prev + t) / 2
        survive = prob_hidden
        for ends, alive in lives:
            if mid > after_call:
                survive *= (alive - bisect.bisect_right(ends, mid - after_call)) / alive
        weight = math.exp(-theta * mid) * (t - prev)
        num += survive * (1.0 - theta * mid) * weight
        den -= theta * survive * weight
        if survive <= 0.0:
            break
        prev = t
    return num / den if den > 1e-9 else num


Curve = tuple[tuple[float, ...], tuple[float, ...]]  # (times, chance still waiting after)


def patience_survival(snap: Snapshot) -> Curve:
    """Kaplan-Meier chance that a caller is still willing to wait after t seconds, from
    recent callers (an answered caller's patience is only known to exceed their wait)."""
    return _patience(snap.finished_waits, snap.finished_abandoned)


@functools.lru_cache(maxsize=8)
def _patience(waits: tuple[float, ...], gave_up: tuple[int, ...]) -> Curve:
    """Cached: the curve changes only when a caller leaves the queue, and every arrival
    and wait poll in between asks for it."""
    pairs = sorted(zip(waits, gave_up, strict=True))
    at_risk = len(pairs)
    times, survival, alive = [], [], 1.0
    for wait, abandoned in pairs:
        if abandoned:
            alive *= 1.0 - 1.0 / at_risk
            times.append(wait)
            survival.append(alive)
        at_risk -= 1
    return tuple(times), tuple(survival)


def _survive(curve: Curve, t: float) -> float:
    times, survival = curve
    i = bisect.bisect_right(times, t)
    return survival[i - 1] if i else 1.0


def answered_mean(mean: float, shape: int, chance: float,
                  curve: Curve) -> float:
    """E[wait | the caller does not abandon], when the wait is 0 with chance 1 - chance and
    otherwise Gamma(shape) with this mean: the answered callers are the ones we learn from
    and are scored on, and long waits are the ones that get abandoned."""
    if mean <= 0 or chance <= 0:
        return 0.0
    if not curve[0]:
        return mean
    c = 1.0 / (9.0 * shape)
    num = den = 0.0
    for z in Z_GRID:
        w = mean * max(0.0, 1.0 - c + z * math.sqrt(c)) ** 3
        stay = _survive(curve, w)
        num += w * stay
        den += stay
    num *= chance / GRID
    den = (1.0 - chance) + den * chance / GRID
    return num / den if den > 1e-9 else mean


def residual_estimate(snap: Snapshot, pace: Pace, base: float, k: int, own: float) -> float:
    """Small teams: time to the next release from the elapsed time of calls in progress
    (talk times are not memoryless), then the measured pace for the remaining releases."""
    if k <= 0 or snap.agents > SMALL_TEAM or not snap.in_service or len(snap.service_times) < 20:
        return base
    first = _first_release(snap, pace.after_call, own * pace.theta)
    rest = _departure_sum(k - 1, max(1, snap.agents) * pace.per_agent, pace.theta,
                          snap.ahead - 1, own)
    return first + rest


def qlm_long(snap: Snapshot) -> float:
    """QL-m with talk time and patience over ~1000 calls instead of 200: in small queues the
    short history is noise (the estimate moves while the queue does not), and when they
    drift the learner moves weight back to the short-memory experts."""
    if snap.long_service_s is None:
        return qlm(snap)  # no call finished yet: QL-m's prior talk time
    return qlm_formula(snap, snap.long_service_s, snap.long_abandon_rate)


def experts(snap: Snapshot) -> tuple[tuple[float, ...], int]:
    """Every expert's estimate (in EXPERTS order) and the releases the caller likely needs
    (0 when an agent is probably free)."""
    pace = measure_pace(snap)
    plain, k = throughput_estimate(snap, pace)
    own, _ = throughput_estimate(snap, pace, 1.0)
    mean, _, chance = throughput_parts(snap, pace)
    answered = answered_mean(mean, max(1, k), chance, patience_survival(snap))
    estimates = (qlm(snap), plain, own, answered, residual_estimate(snap, pace, own, k, 1.0),
                 qlm_long(snap))
    return estimates, (k if chance >= 0.5 else 0)
