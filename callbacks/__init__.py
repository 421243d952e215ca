"""Callbacks: pure rules for calling a caller back, with no I/O and no clock of its own.

Who may be called back (numbers), when (window: the callee's hours in every zone the number
may be in, the business's hours and holidays), how often (retry), the states a callback
moves through (states) and how its time is said (phrasing). The server stores callbacks,
dials and passes the time in.
"""

from .errors import CallbackError, InvalidTransition, NotCallable, WindowError
from .numbers import callable_number, time_zones
from .phrasing import when_phrase
from .retry import Outcome, RetryPolicy, next_delay
from .states import ACTIVE, FINAL, TRANSITIONS, State, check_transition
from .window import (
    CallingPolicy,
    DailyHours,
    WeeklyHours,
    closes_at,
    is_open,
    next_opening,
)

__all__ = [
    "ACTIVE", "FINAL", "TRANSITIONS", "CallbackError", "CallingPolicy", "DailyHours",
    "InvalidTransition", "NotCallable", "Outcome", "RetryPolicy", "State", "WeeklyHours",
    "WindowError", "callable_number", "check_transition", "closes_at", "is_open",
    "next_delay", "next_opening", "time_zones", "when_phrase",
]
