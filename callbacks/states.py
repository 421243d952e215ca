"""A callback's lifecycle: the states it goes through and the moves between them.

Kept as data so the server, the worker and the supervisor pages agree on one set of rules,
and a late or duplicated status webhook cannot walk a finished callback back to life.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import InvalidTransition


class State(StrEnum):
    REQUESTED = "requested"  # the caller asked; no time chosen yet
    SCHEDULED = "scheduled"  # a time is chosen (first try, a retry or a reschedule)
    DIALING = "dialing"  # the outbound call is placed
    CONNECTED = "connected"  # the callee answered
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE: frozenset[State] = frozenset(
    {State.REQUESTED, State.SCHEDULED, State.DIALING, State.CONNECTED})
FINAL: frozenset[State] = frozenset({State.COMPLETED, State.FAILED, State.CANCELLED})

TRANSITIONS: dict[State, frozenset[State]] = {
    State.REQUESTED: frozenset({State.SCHEDULED, State.CANCELLED, State.FAILED}),
    # scheduled -> scheduled: moved to another time (by ops, or the window closed)
    State.SCHEDULED: frozenset({State.SCHEDULED, State.DIALING, State.CANCELLED, State.FAILED}),
    # dialing -> scheduled: busy or no answer, retry later; -> completed: a message was left
    # on a machine and the policy says stop there
    State.DIALING: frozenset({State.CONNECTED, State.SCHEDULED, State.FAILED, State.COMPLETED,
                              State.CANCELLED}),
    # connected -> scheduled: the callee hung up before reaching anyone, try again
    State.CONNECTED: frozenset({State.COMPLETED, State.SCHEDULED, State.FAILED}),
    State.COMPLETED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}


def _state(value: State | str, what: str) -> State:
    try:
        return State(value)
    except ValueError:
        raise InvalidTransition(f"{what}: unknown state {str(value)!r}") from None


def check_transition(old: State | str, new: State | str, *, what: str = "callback") -> State:
    """The new State when `old -> new` is allowed, else InvalidTransition naming `what`
    (e.g. "callback 12: dialing -> requested is not allowed")."""
    before, after = _state(old, what), _state(new, what)
    if after not in TRANSITIONS[before]:
        raise InvalidTransition(f"{what}: {before} -> {after} is not allowed")
    return after
