"""The published wait predictors, as the literature and the products define them.

They are the baselines the default predictor must beat, and its raw material. Each returns
the expected wait in seconds of a caller joining now (Ibrahim & Whitt's QL, QL-m, HOL, LES;
Asterisk's announced running average). Rates are estimated causally from the snapshot's
recent history; with no history yet, PRIOR_SERVICE_S stands in.
"""

from __future__ import annotations

from .snapshot import Snapshot
from .sums import reciprocal_run

PRIOR_SERVICE_S = 180.0  # mean talk time assumed before any call has finished
MIN_SERVICE_S = 1.0  # calls hung up the moment they were answered say nothing of the pace


def service_mean(snap: Snapshot) -> float:
    """Mean talk time (answer to hangup) of recent calls: 1 / mu."""
    times = snap.service_times
    return max(sum(times) / len(times), MIN_SERVICE_S) if times else PRIOR_SERVICE_S


def abandon_rate(snap: Snapshot) -> float:
    """theta: abandonments per second of waiting (the exponential-patience MLE)."""
    return snap.abandoned / snap.waited_s if snap.waited_s > 0 else 0.0


def departures_needed(snap: Snapshot) -> int:
    """Agent releases the new caller needs: callers ahead + 1, minus agents free now."""
    return max(0, snap.ahead + 1 - snap.free_agents)


def _agents(snap: Snapshot) -> int:
    # With nobody on duty the formulas divide by zero; assume one agent will come.
    return max(1, snap.agents)


def ql(snap: Snapshot) -> float:
    """QL: (n + 1) / (s mu): every agent busy, exponential service, nobody abandons."""
    k = departures_needed(snap)
    return k * service_mean(snap) / _agents(snap)


def qlm(snap: Snapshot) -> float:
    """QL-m: sum over i = 0..n of 1 / (s mu + i theta): callers ahead may abandon."""
    return qlm_formula(snap, service_mean(snap), abandon_rate(snap))


def qlm_formula(snap: Snapshot, service_s: float, theta: float) -> float:
    rate = _agents(snap) / max(service_s, MIN_SERVICE_S)
    return reciprocal_run(rate, theta, 0, departures_needed(snap))


def hol(snap: Snapshot) -> float:
    """HOL: how long the caller at the head of the line has waited so far."""
    return snap.head_wait


def les(snap: Snapshot) -> float:
    """LES: the wait of the last caller to reach an agent."""
    return snap.last_entered_wait or 0.0


def asterisk(snap: Snapshot) -> float:
    """Asterisk's announced hold time: h <- (3h + w) / 4 over answered waits, not scaled by
    position (the caller has waited 0 s so far, so nothing is subtracted)."""
    return snap.asterisk_average or 0.0


PUBLISHED = {"ql": ql, "qlm": qlm, "hol": hol, "les": les, "asterisk": asterisk}
